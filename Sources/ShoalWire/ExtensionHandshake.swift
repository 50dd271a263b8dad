import NIOCore
import ShoalBencode
import ShoalCore

/// The BEP 10 extension handshake: the bencoded dictionary carried by `extended` message id 0.
///
/// BEP 10 ("handshake message"): every item is optional and unknown names are ignored. Decoding is
/// tolerant in the same spirit: a field of the wrong type or out of range is dropped as if absent,
/// and only a payload that is not a bencoded dictionary is refused. Encoding is canonical (sorted
/// keys, via ``BencodeValue``) and writes only the fields that are set, plus `m` always.
public struct ExtensionHandshake: Hashable, Sendable {
    /// `m`: extension name → the extended message id the sender wants to receive it under.
    /// BEP 10: id 0 means the extension is disabled (later handshakes may disable one this way).
    public var messages: [String: UInt8]
    /// `v`: client name and version.
    public var client: String?
    /// `p`: the sender's TCP listen port.
    public var listenPort: UInt16?
    /// `reqq`: how many outstanding requests the sender accepts without dropping (libtorrent: 250).
    public var requestQueueLength: Int?
    /// `yourip`: the receiver's address as the sender sees it, 4 (IPv4) or 16 (IPv6) bytes.
    public var yourIP: [UInt8]?
    /// `ipv4`: the sender's IPv4 address, 4 bytes.
    public var ipv4: [UInt8]?
    /// `ipv6`: the sender's IPv6 address, 16 bytes.
    public var ipv6: [UInt8]?
    /// `metadata_size` (BEP 9): the info dictionary's size in bytes.
    public var metadataSize: Int?
    /// `upload_only` (libtorrent, BEP 21): the sender only uploads (a seed or a partial seed).
    public var uploadOnly: Bool?

    /// The most `m` entries kept (there are 255 usable ids).
    public static let maxMessages = 255
    /// The longest `m` name and `v` string kept, in bytes.
    public static let maxNameLength = 256
    /// The largest `reqq` kept.
    public static let maxRequestQueueLength = 100_000
    /// The largest `metadata_size` kept (BEP 9 metadata above this is not worth fetching: 64 MiB).
    public static let maxMetadataSize = 64 << 20

    public init(
        messages: [String: UInt8] = [:],
        client: String? = nil,
        listenPort: UInt16? = nil,
        requestQueueLength: Int? = nil,
        yourIP: [UInt8]? = nil,
        ipv4: [UInt8]? = nil,
        ipv6: [UInt8]? = nil,
        metadataSize: Int? = nil,
        uploadOnly: Bool? = nil
    ) {
        self.messages = messages
        self.client = client
        self.listenPort = listenPort
        self.requestQueueLength = requestQueueLength
        self.yourIP = yourIP
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.metadataSize = metadataSize
        self.uploadOnly = uploadOnly
    }

    /// The id under which Shoal receives `ut_metadata` messages (BEP 9): its handshake's `m` entry.
    public static let metadataMessageID: UInt8 = 1
    /// The id under which Shoal receives `ut_pex` messages (BEP 11).
    public static let peerExchangeMessageID: UInt8 = 2

    /// Shoal's handshake: `ut_metadata` (BEP 9) with `metadata_size` once the info dictionary is known
    /// (a torrent started from a magnet link advertises the extension without it, and rejects
    /// requests), `ut_pex` (BEP 11) when peer exchange is on, the client name when given (BEP 10 `v`)
    /// and, when known, the port we listen on (BEP 10 `p`: how a peer that we dialled can pass our
    /// address on).
    public static func shoal(
        metadata: Bool = true, metadataSize: Int? = nil, peerExchange: Bool, listenPort: UInt16? = nil,
        client: String? = nil
    ) -> ExtensionHandshake {
        var messages: [String: UInt8] = [:]
        if metadata { messages[MetadataMessage.extensionName] = metadataMessageID }
        if peerExchange { messages[PeerExchangeMessage.extensionName] = peerExchangeMessageID }
        return ExtensionHandshake(
            messages: messages, client: client, listenPort: listenPort == 0 ? nil : listenPort,
            metadataSize: metadata ? metadataSize : nil)
    }

    /// The client name Shoal gives in `v`.
    public static let shoalClientName = "Shoal \(ShoalVersion.string)"

    /// Decodes the payload of `extended` message 0 (the bytes after the extended id).
    public init(decoding payload: ByteBuffer) throws(WireError) {
        let document: BencodeDocument
        do {
            document = try BencodeDocument(decoding: Array(payload.readableBytesView), limits: .message)
        } catch {
            throw WireError(.invalidExtensionHandshake(error), messageID: PeerMessageID.extended.rawValue)
        }
        let root = document.root
        guard root.kind == .dictionary else {
            throw WireError(.invalidExtensionHandshake(nil), messageID: PeerMessageID.extended.rawValue)
        }
        self.init()
        for entry in root["m"]?.entries ?? [] {
            guard messages.count < Self.maxMessages,
                let name = entry.key.string, name.utf8.count <= Self.maxNameLength,
                let id = entry.value.integer, (0...255).contains(id)
            else { continue }
            messages[name] = UInt8(id)
        }
        if let bytes = root["v"]?.bytes, bytes.count <= Self.maxNameLength {
            client = String(decoding: bytes, as: UTF8.self)
        }
        if let port = root["p"]?.integer, (1...65535).contains(port) { listenPort = UInt16(port) }
        if let reqq = root["reqq"]?.integer, (1...Int64(Self.maxRequestQueueLength)).contains(reqq) {
            requestQueueLength = Int(reqq)
        }
        if let bytes = root["yourip"]?.bytes, bytes.count == 4 || bytes.count == 16 { yourIP = Array(bytes) }
        if let bytes = root["ipv4"]?.bytes, bytes.count == 4 { ipv4 = Array(bytes) }
        if let bytes = root["ipv6"]?.bytes, bytes.count == 16 { ipv6 = Array(bytes) }
        if let size = root["metadata_size"]?.integer, (1...Int64(Self.maxMetadataSize)).contains(size) {
            metadataSize = Int(size)
        }
        if let flag = root["upload_only"]?.integer { uploadOnly = flag != 0 }
    }

    /// The dictionary, as ``BencodeValue`` (canonical when encoded).
    public var bencodeValue: BencodeValue {
        var m: [String: BencodeValue] = [:]
        for (name, id) in messages { m[name] = .integer(Int64(id)) }
        var dictionary: [String: BencodeValue] = ["m": .dictionary(m)]
        if let client { dictionary["v"] = .text(client) }
        if let listenPort { dictionary["p"] = .integer(Int64(listenPort)) }
        if let requestQueueLength { dictionary["reqq"] = .integer(Int64(requestQueueLength)) }
        if let yourIP { dictionary["yourip"] = .string(yourIP) }
        if let ipv4 { dictionary["ipv4"] = .string(ipv4) }
        if let ipv6 { dictionary["ipv6"] = .string(ipv6) }
        if let metadataSize { dictionary["metadata_size"] = .integer(Int64(metadataSize)) }
        if let uploadOnly { dictionary["upload_only"] = .integer(uploadOnly ? 1 : 0) }
        return .dictionary(dictionary)
    }

    /// The canonical bencoding.
    public var encoded: [UInt8] { bencodeValue.encoded }

    /// The `extended` message (id 0) that carries this handshake.
    public var message: PeerMessage { .extended(id: 0, payload: ByteBuffer(bytes: encoded)) }

    /// The id under which the sender wants extension `name`; nil when absent or disabled (0).
    public func id(for name: String) -> UInt8? {
        guard let id = messages[name], id != 0 else { return nil }
        return id
    }

    /// This handshake updated by a later one from the same peer. BEP 10: `m` is additive (a later
    /// `m` holds only changes, 0 disables); other fields present in `later` replace these.
    public func merging(_ later: ExtensionHandshake) -> ExtensionHandshake {
        var result = self
        for (name, id) in later.messages
        where result.messages[name] != nil || result.messages.count < Self.maxMessages {
            result.messages[name] = id
        }
        result.client = later.client ?? client
        result.listenPort = later.listenPort ?? listenPort
        result.requestQueueLength = later.requestQueueLength ?? requestQueueLength
        result.yourIP = later.yourIP ?? yourIP
        result.ipv4 = later.ipv4 ?? ipv4
        result.ipv6 = later.ipv6 ?? ipv6
        result.metadataSize = later.metadataSize ?? metadataSize
        result.uploadOnly = later.uploadOnly ?? uploadOnly
        return result
    }
}
