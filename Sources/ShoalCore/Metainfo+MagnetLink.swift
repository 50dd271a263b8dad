extension Metainfo {
    /// The magnet link for this torrent (BEP 9; BEP 52 adds `urn:btmh` for v2): its info-hashes,
    /// name, trackers in tier order and web seeds.
    public var magnetLink: MagnetLink {
        var hashes: [InfoHash] = []
        if let infoHashV1 { hashes.append(.v1(infoHashV1)) }
        if let infoHashV2 { hashes.append(.v2(infoHashV2)) }
        return MagnetLink(
            infoHashes: hashes, displayName: info.name, trackers: trackers.flatMap { $0 }, webSeeds: webSeeds)
    }
}
