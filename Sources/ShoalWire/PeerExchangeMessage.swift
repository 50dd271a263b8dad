import NIOCore
import ShoalBencode
import ShoalCore

/// A BEP 11 `ut_pex` message: peers the sender connected to (`added`, `added6`, with a flags byte
/// each in `added.f`, `added6.f`) and peers it disconnected from (`dropped`, `dropped6`), in the
/// compact form (4 or 16 address bytes and a 2-byte port, BEP 23 and BEP 7).
///
/// Decoding refuses a payload that is not a dictionary, a known field of the wrong type, a compact
/// string whose length is not a whole number of entries, and more than ``maxEntries`` entries in
/// one list (BEP 11: "Clients may disconnect peers that egregiously violate these constraints").
/// A flags string whose length does not match its list is ignored (the peers are kept, without
/// flags, as libtorrent does); entries with port 0 are skipped (nobody listens there). Unknown keys
/// are ignored. Decoded `added` lists IPv4 peers first, then IPv6; encoding writes the two families
/// to their own keys, so a decoded message encodes to bytes that decode to the same message.
public struct PeerExchangeMessage: Hashable, Sendable, CustomStringConvertible {
    /// The flags of an added peer (BEP 11 "Flags").
    public struct Flags: OptionSet, Hashable, Sendable {
        public let rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// 0x01: prefers encryption (`e` in its extension handshake).
        public static let prefersEncryption = Flags(rawValue: 0x01)
        /// 0x02: a seed or upload-only peer.
        public static let seed = Flags(rawValue: 0x02)
        /// 0x04: supports uTP.
        public static let supportsUTP = Flags(rawValue: 0x04)
        /// 0x08: supports `ut_holepunch`.
        public static let supportsHolepunch = Flags(rawValue: 0x08)
        /// 0x10: the sender's connection to it was outgoing: the peer is reachable at this address.
        public static let reachable = Flags(rawValue: 0x10)
    }

    /// A peer in an `added` list, with its flags.
    public struct Entry: Hashable, Sendable, CustomStringConvertible {
        public var address: PeerAddress
        public var flags: Flags

        public init(_ address: PeerAddress, flags: Flags = []) {
            self.address = address
            self.flags = flags
        }

        public var description: String { flags.isEmpty ? "\(address)" : "\(address) (flags 0x\(String(flags.rawValue, radix: 16)))" }
    }

    /// What was wrong with a `ut_pex` payload.
    public enum Fault: Hashable, Sendable, CustomStringConvertible {
        /// The payload is not one bencoded dictionary.
        case notADictionary(BencodeError?)
        /// A known field (named) is not a byte string.
        case notAString(String)
        /// A compact field (named) whose length is not a multiple of its entry size.
        case badCompactLength(String, length: Int)
        /// A field (named) with more entries than ``PeerExchangeMessage/maxEntries``.
        case tooManyEntries(String, count: Int)

        public var description: String {
            switch self {
            case .notADictionary(let error): "not a bencoded dictionary" + (error.map { " (\($0))" } ?? "")
            case .notAString(let field): "\(field) is not a string"
            case .badCompactLength(let field, let length): "\(field) has \(length) bytes, not whole entries"
            case .tooManyEntries(let field, let count): "\(field) has \(count) entries (at most \(PeerExchangeMessage.maxEntries))"
            }
        }
    }

    /// The name in the extension handshake's `m` (BEP 11).
    public static let extensionName = "ut_pex"
    /// The most entries accepted in one list of a received message. BEP 11 asks for at most 50 added
    /// and 50 dropped after the first message; the first may list every connection of the sender
    /// (libtorrent sends at most 100 at a time): 500 leaves room and bounds the work.
    public static let maxEntries = 500
    /// The most added, and the most dropped, peers Shoal puts in one message (BEP 11: "should not
    /// exceed 50 entries").
    public static let maxPeersPerMessage = 50

    /// Bounds on the dictionary (the wire already caps the payload at 1 MiB; entry counts are checked per field).
    static let limits = BencodeLimits(maxDepth: 4, maxItems: 64, maxStringLength: 64 << 10, maxIntegerDigits: 19)

    /// Peers the sender is now connected to.
    public var added: [Entry]
    /// Peers the sender is no longer connected to.
    public var dropped: [PeerAddress]

    public init(added: [Entry] = [], dropped: [PeerAddress] = []) {
        self.added = added
        self.dropped = dropped
    }

    /// Nothing added and nothing dropped (BEP 11: such a message is not sent).
    public var isEmpty: Bool { added.isEmpty && dropped.isEmpty }

    /// Decodes a `ut_pex` payload (the bytes after the extended message id).
    public init(decoding payload: ByteBuffer) throws(WireError) {
        func fault(_ fault: Fault) -> WireError {
            WireError(.invalidPeerExchange(fault), messageID: PeerMessageID.extended.rawValue)
        }
        let document: BencodeDocument
        do {
            document = try BencodeDocument(decoding: Array(payload.readableBytesView), limits: Self.limits)
        } catch {
            throw fault(.notADictionary(error))
        }
        let root = document.root
        guard root.kind == .dictionary else { throw fault(.notADictionary(nil)) }
        /// The compact entries of `field` (entries of `size` bytes), checked before anything is built.
        func compact(_ field: String, size: Int) throws(WireError) -> ArraySlice<UInt8> {
            guard let node = root[field] else { return [] }
            guard let bytes = node.bytes else { throw fault(.notAString(field)) }
            guard bytes.count % size == 0 else { throw fault(.badCompactLength(field, length: bytes.count)) }
            guard bytes.count / size <= Self.maxEntries else {
                throw fault(.tooManyEntries(field, count: bytes.count / size))
            }
            return bytes
        }
        func flags(_ field: String, count: Int) throws(WireError) -> ArraySlice<UInt8>? {
            guard let node = root[field] else { return nil }
            guard let bytes = node.bytes else { throw fault(.notAString(field)) }
            return bytes.count == count ? bytes : nil
        }
        func addresses(_ bytes: ArraySlice<UInt8>, size: Int) -> [PeerAddress?] {
            stride(from: bytes.startIndex, to: bytes.endIndex, by: size).map { start in
                PeerAddress(compact: bytes[start..<(start + size)]).flatMap { $0.port == 0 ? nil : $0 }
            }
        }
        var added: [Entry] = []
        var dropped: [PeerAddress] = []
        for (field, size) in [("added", 6), ("added6", 18)] {
            let peers = addresses(try compact(field, size: size), size: size)
            let flagBytes = try flags(field + ".f", count: peers.count)
            for (index, peer) in peers.enumerated() {
                guard let peer else { continue }
                let flag = flagBytes.map { $0[$0.startIndex + index] } ?? 0
                added.append(Entry(peer, flags: Flags(rawValue: flag)))
            }
        }
        for (field, size) in [("dropped", 6), ("dropped6", 18)] {
            dropped += addresses(try compact(field, size: size), size: size).compactMap { $0 }
        }
        self.init(added: added, dropped: dropped)
    }

    /// The canonical bencoded dictionary: each family's peers under its own key, flags for every added
    /// peer, empty lists left out.
    public var encoded: [UInt8] {
        var dictionary: [String: BencodeValue] = [:]
        for (key, ipv6) in [("added", false), ("added6", true)] {
            let entries = added.filter { $0.address.isIPv6 == ipv6 }
            guard !entries.isEmpty else { continue }
            dictionary[key] = .string(entries.flatMap(\.address.compact))
            dictionary[key + ".f"] = .string(entries.map(\.flags.rawValue))
        }
        for (key, ipv6) in [("dropped", false), ("dropped6", true)] {
            let peers = dropped.filter { $0.isIPv6 == ipv6 }
            guard !peers.isEmpty else { continue }
            dictionary[key] = .string(peers.flatMap(\.compact))
        }
        return BencodeValue.dictionary(dictionary).encoded
    }

    /// The `extended` peer message that carries this one under `id` (the receiver's id for `ut_pex`).
    public func message(id: UInt8) -> PeerMessage { .extended(id: id, payload: ByteBuffer(bytes: encoded)) }

    public var description: String {
        "pex: added \(added.map(\.description).joined(separator: ", ")); dropped \(dropped.map(\.description).joined(separator: ", "))"
    }
}
