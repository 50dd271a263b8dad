import ShoalBencode

/// A .torrent file (BEP 3): the info dictionary and what surrounds it (trackers of BEP 12,
/// web seeds of BEP 19, and descriptive fields).
///
/// The info-hash is computed over the info dictionary's exact bytes as they are in the file,
/// whatever their key order, and writing a torrent that was read keeps those bytes verbatim.
public struct Metainfo: Sendable {
    public let info: InfoDictionary
    /// The info dictionary exactly as encoded: what the info-hashes cover and what BEP 9 serves.
    public let infoBytes: [UInt8]
    /// SHA-1 of the info dictionary, when the torrent is v1 or hybrid.
    public let infoHashV1: Digest20?
    /// SHA-256 of the info dictionary, when the torrent is v2 or hybrid (BEP 52).
    public let infoHashV2: Digest32?

    /// Tracker tiers (BEP 12). A torrent with only `announce` has one tier of one tracker.
    public var trackers: [[String]]
    /// Web seeds (BEP 19 `url-list`).
    public var webSeeds: [String]
    public var comment: String?
    public var createdBy: String?
    /// Seconds since 1970.
    public var creationDate: Int64?
    /// BEP 52 `piece layers`: for each file larger than a piece, its pieces root and the
    /// concatenated SHA-256 of its pieces.
    public var pieceLayers: [Digest32: [UInt8]]
    /// What was odd but accepted (keys out of order, names not in UTF-8, ignored fields).
    public private(set) var warnings: [String]

    /// A torrent for new content.
    public init(
        info: InfoDictionary, trackers: [[String]] = [], webSeeds: [String] = [], comment: String? = nil,
        createdBy: String? = nil, creationDate: Int64? = nil
    ) {
        self.info = info
        self.infoBytes = info.bencodeValue.encoded
        self.infoHashV1 = info.hasV1 ? Self.sha1(infoBytes[...]) : nil
        self.infoHashV2 = nil
        self.trackers = trackers.filter { !$0.isEmpty }
        self.webSeeds = webSeeds
        self.comment = comment
        self.createdBy = createdBy
        self.creationDate = creationDate
        self.pieceLayers = [:]
        self.warnings = []
    }

    /// Reads a .torrent file. Throws for anything that could not be downloaded safely:
    /// bad bencode, missing or mistyped info fields, unsafe paths, sizes that disagree.
    /// Malformed optional fields outside the info dictionary are ignored with a warning.
    public init(parsing bytes: [UInt8], limits: BencodeLimits = BencodeLimits()) throws(MetainfoError) {
        let document: BencodeDocument
        do {
            document = try BencodeDocument(decoding: bytes, limits: limits)
        } catch {
            throw MetainfoError(.bencode(error), field: "", offset: error.offset)
        }
        let root = try MetainfoField(document.root, path: "").dictionary()
        let infoField = try root.required("info").dictionary()
        var warnings: [String] = []
        if let first = document.unsortedKeyOffsets.first {
            warnings.append(
                "\(document.unsortedKeyOffsets.count) dictionary keys out of order (first at byte \(first))")
        }
        info = try InfoDictionary(parsing: infoField, warnings: &warnings)
        infoBytes = Array(infoField.node.encodedBytes)
        infoHashV1 = info.hasV1 ? Self.sha1(infoBytes[...]) : nil
        if info.hasV2, case .v2(let digest) = InfoHash.v2(ofInfo: infoBytes[...]) {
            infoHashV2 = digest
        } else {
            infoHashV2 = nil
        }

        trackers = Self.readTrackers(root, warnings: &warnings)
        webSeeds = Self.optional(root, "url-list", warnings: &warnings) { field in
            if field.node.kind == .string { return [try field.text()].filter { !$0.isEmpty } }
            return try field.list().compactMap { $0.node.string }.filter { !$0.isEmpty }
        } ?? []
        comment = Self.optional(root, "comment.utf-8", warnings: &warnings) { try $0.text() }
            ?? Self.optional(root, "comment", warnings: &warnings) { try $0.text() }
        createdBy = Self.optional(root, "created by", warnings: &warnings) { try $0.text() }
        creationDate = Self.optional(root, "creation date", warnings: &warnings) { try $0.integer() }
        pieceLayers = Self.optional(root, "piece layers", warnings: &warnings) { field in
            var layers: [Digest32: [UInt8]] = [:]
            for (key, value) in try field.entries() {
                guard let root = key.bytes.flatMap(Digest32.init(bytes:)) else {
                    throw value.error(.invalid("piece layers key is not 32 bytes"))
                }
                layers[root] = Array(try value.bytes())
            }
            return layers
        } ?? [:]
        self.warnings = warnings
    }

    /// The identity to use on the wire: the v1 info-hash, or the truncated v2 one for v2-only torrents.
    public var infoHash: InfoHash {
        if let infoHashV1 { return .v1(infoHashV1) }
        return .v2(infoHashV2!)
    }

    /// The .torrent file's bytes, keys in canonical order, the info dictionary byte for byte as read.
    public func encoded() -> [UInt8] {
        var fields: [(key: String, value: [UInt8])] = [("info", infoBytes)]
        func add(_ key: String, _ value: BencodeValue?) {
            if let value { fields.append((key, value.encoded)) }
        }
        add("announce", trackers.first?.first.map { .text($0) })
        if trackers.count > 1 || (trackers.first?.count ?? 0) > 1 {
            add("announce-list", .list(trackers.map { .list($0.map { .text($0) }) }))
        }
        add("comment", comment.map { .text($0) })
        add("created by", createdBy.map { .text($0) })
        add("creation date", creationDate.map { .integer($0) })
        if !webSeeds.isEmpty {
            add("url-list", webSeeds.count == 1 ? .text(webSeeds[0]) : .list(webSeeds.map { .text($0) }))
        }
        if !pieceLayers.isEmpty {
            var layers: [[UInt8]: BencodeValue] = [:]
            for (root, hashes) in pieceLayers { layers[root.bytes] = .string(hashes) }
            add("piece layers", .dictionary(layers))
        }
        fields.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        var output: [UInt8] = [UInt8(ascii: "d")]
        for field in fields {
            BencodeEncoder.appendString(field.key.utf8, to: &output)
            output.append(contentsOf: field.value)
        }
        output.append(UInt8(ascii: "e"))
        return output
    }

    private static func sha1(_ bytes: ArraySlice<UInt8>) -> Digest20 {
        guard case .v1(let digest) = InfoHash.v1(ofInfo: bytes) else { fatalError("unreachable") }
        return digest
    }

    /// BEP 12 `announce-list` when present and usable, else `announce`.
    private static func readTrackers(_ root: MetainfoField, warnings: inout [String]) -> [[String]] {
        let tiers = optional(root, "announce-list", warnings: &warnings) { field in
            try field.list().map { tier in
                try tier.list().compactMap { $0.node.string }.filter { !$0.isEmpty }
            }.filter { !$0.isEmpty }
        } ?? []
        if !tiers.isEmpty { return tiers }
        if let announce = optional(root, "announce", warnings: &warnings, { try $0.text() }), !announce.isEmpty {
            return [[announce]]
        }
        return []
    }

    /// Reads an optional field outside the info dictionary; a malformed one is dropped with a warning.
    private static func optional<T>(
        _ root: MetainfoField, _ key: String, warnings: inout [String],
        _ read: (MetainfoField) throws -> T
    ) -> T? {
        guard let field = root.child(key) else { return nil }
        do {
            return try read(field)
        } catch {
            warnings.append("ignored \(key): \(error)")
            return nil
        }
    }
}
