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

extension Metainfo {
    /// The torrent of a magnet link once its info dictionary arrived from peers (BEP 9): `info` is
    /// those bytes exactly (so the info-hash is theirs); the link's trackers become the tiers, one
    /// tracker each as libtorrent orders them, and its web seeds the `url-list`. Throws what reading a
    /// .torrent would for the same info dictionary, and for bytes that are not exactly one dictionary.
    public init(infoDictionary bytes: [UInt8], magnetLink: MagnetLink) throws(MetainfoError) {
        var document = Array("d4:info".utf8)
        document.reserveCapacity(bytes.count + 8)
        document += bytes
        document.append(UInt8(ascii: "e"))
        self = try Metainfo(parsing: document)
        guard infoBytes.count == bytes.count else {
            throw MetainfoError(.invalid("the info dictionary has bytes after its end"), field: "info", offset: 7)
        }
        trackers = magnetLink.trackers.filter { !$0.isEmpty }.map { [$0] }
        webSeeds = magnetLink.webSeeds
    }
}
