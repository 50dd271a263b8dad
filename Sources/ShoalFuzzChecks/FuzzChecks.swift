import ShoalBencode
import ShoalCore

/// The properties every decoder must keep on any input, shared by the libFuzzer targets
/// (`Fuzz/`, run by `scripts/fuzz`) and the ordinary tests that replay the checked-in corpus.
///
/// A check returns normally when the input was refused with a typed error or was accepted and
/// round-trips; it stops the process (a finding for the fuzzer, a crash for a test) when a
/// property breaks.
public enum FuzzChecks {
    /// Bencode: a decoded value re-encodes to a document that decodes to the same value, and an
    /// input whose keys were in order re-encodes to exactly the same bytes (anacrolix's round-trip fuzz).
    public static func bencode(_ bytes: [UInt8]) {
        guard let document = try? BencodeDocument(decoding: bytes) else { return }
        let value = document.root.value
        let encoded = value.encoded
        guard let again = try? BencodeDocument(decoding: encoded) else {
            fatalError("re-encoded bencode does not decode")
        }
        precondition(again.root.value == value, "bencode value changed across a round trip")
        if document.unsortedKeyOffsets.isEmpty {
            precondition(encoded == bytes, "canonical bencode did not re-encode byte for byte")
        }
    }

    /// Metainfo: an accepted torrent, written and read again, has the same info and info-hashes,
    /// and none of its paths can escape (each was validated).
    public static func metainfo(_ bytes: [UInt8]) {
        guard let metainfo = try? Metainfo(parsing: bytes) else { return }
        guard let again = try? Metainfo(parsing: metainfo.encoded()) else {
            fatalError("a written torrent cannot be read back")
        }
        precondition(again.info == metainfo.info, "info changed across a round trip")
        precondition(again.infoHashV1 == metainfo.infoHashV1, "v1 info-hash changed across a round trip")
        precondition(again.infoHashV2 == metainfo.infoHashV2, "v2 info-hash changed across a round trip")
        for file in metainfo.info.files {
            precondition(!file.path.components.contains(".."), "a path with .. was accepted")
        }
    }

    /// Magnet links: an accepted link prints a URI that parses to the same link.
    public static func magnet(_ bytes: [UInt8]) {
        guard let text = String(validating: bytes, as: UTF8.self),
            let link = try? MagnetLink(parsing: text)
        else { return }
        guard let again = try? MagnetLink(parsing: link.uri) else {
            fatalError("a printed magnet link does not parse: \(link.uri)")
        }
        precondition(again == link, "magnet link changed across a round trip")
    }

    /// Peer wire: see ``wireCheck`` (set by the wire module's check, in FuzzChecks+Wire.swift).
    public static func wire(_ bytes: [UInt8]) {
        wireMessages(bytes)
    }

    /// KRPC (DHT) datagrams: see ``krpcMessages`` (FuzzChecks+KRPC.swift).
    public static func krpc(_ bytes: [UInt8]) {
        krpcMessages(bytes)
    }
    /// HTTP tracker answers, queries and URLs: see ``trackerHTTPCheck``.
    public static func trackerHTTP(_ bytes: [UInt8]) { trackerHTTPCheck(bytes) }
    /// BEP 15 packets and the UDP server: see ``trackerUDPCheck``.
    public static func trackerUDP(_ bytes: [UInt8]) { trackerUDPCheck(bytes) }
    /// Tracker state files: see ``trackerStateCheck``.
    public static func trackerState(_ bytes: [UInt8]) { trackerStateCheck(bytes) }

    /// The check for a target name, as used by `scripts/fuzz` and the corpus tests.
    public static func check(named name: String) -> (([UInt8]) -> Void)? {
        switch name {
        case "bencode": bencode
        case "metainfo": metainfo
        case "magnet": magnet
        case "wire": wire
        case "krpc": krpc
        case "tracker-http": trackerHTTP
        case "tracker-udp": trackerUDP
        case "tracker-state": trackerState
        case "extensions": extensions
        case "lsd": localDiscovery
        default: nil
        }
    }
}
