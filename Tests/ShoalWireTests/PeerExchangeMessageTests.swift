import NIOCore
import ShoalBencode
import ShoalCore
import ShoalTestSupport
import Testing

@testable import ShoalWire

@Suite("ut_pex messages (BEP 11)")
struct PeerExchangeMessageTests {
    private func decode(_ bytes: [UInt8]) throws(WireError) -> PeerExchangeMessage {
        try PeerExchangeMessage(decoding: ByteBuffer(bytes: bytes))
    }

    private func fault(_ bytes: [UInt8]) -> PeerExchangeMessage.Fault? {
        do {
            _ = try decode(bytes)
            return nil
        } catch {
            guard case .invalidPeerExchange(let fault) = error.code else {
                Issue.record("unexpected error \(error)")
                return nil
            }
            #expect(error.disposition == .close)
            return fault
        }
    }

    private static let v4a = PeerAddress("10.0.0.1:6881")!
    private static let v4b = PeerAddress("192.168.1.2:6882")!
    private static let v6 = PeerAddress("[2001:db8::1]:51413")!

    private static func text(_ value: String) -> [UInt8] { Array(value.utf8) }

    @Test func encodesEachFamilyUnderItsOwnKeysWithFlags() {
        let message = PeerExchangeMessage(
            added: [.init(Self.v4a, flags: [.seed, .reachable]), .init(Self.v6, flags: .reachable), .init(Self.v4b)],
            dropped: [PeerAddress("1.2.3.4:80")!])
        let v4 = [10, 0, 0, 1, 0x1A, 0xE1, 192, 168, 1, 2, 0x1A, 0xE2] as [UInt8]
        let v6 = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1, 0xC8, 0xD5] as [UInt8]
        let expected =
            Self.text("d5:added12:") + v4 + Self.text("7:added.f2:") + [0x12, 0x00] + Self.text("6:added618:") + v6
            + Self.text("8:added6.f1:") + [0x10] + Self.text("7:dropped6:") + [1, 2, 3, 4, 0, 80] + Self.text("e")
        #expect(message.encoded == expected)
        // Decoded, IPv4 peers come first.
        let decoded = try? decode(expected)
        #expect(decoded?.added == [.init(Self.v4a, flags: [.seed, .reachable]), .init(Self.v4b), .init(Self.v6, flags: .reachable)])
        #expect(decoded?.dropped == [PeerAddress("1.2.3.4:80")!])
        #expect(PeerExchangeMessage().encoded == Self.text("de"))
    }

    @Test func readsLibtorrentsMessageWithEveryKeyEvenEmpty() throws {
        let bytes = Self.text("d5:added6:") + [127, 0, 0, 1, 0x1F, 0x90] + Self.text("7:added.f1:") + [0x10]
            + Self.text("6:added60:8:added6.f0:7:dropped0:8:dropped60:e")
        let message = try decode(bytes)
        #expect(message.added == [.init(PeerAddress("127.0.0.1:8080")!, flags: .reachable)])
        #expect(message.dropped.isEmpty)
    }

    @Test func keepsPeersWhoseFlagsDoNotMatchAndSkipsPortZero() throws {
        let bytes = Self.text("d5:added12:") + [10, 0, 0, 1, 0, 0, 10, 0, 0, 2, 0, 1] + Self.text("7:added.f1:")
            + [0x02] + Self.text("7:dropped6:") + [9, 9, 9, 9, 0, 0] + Self.text("1:x1:ye")
        let message = try decode(bytes)
        #expect(message.added == [.init(PeerAddress("10.0.0.2:1")!)], "flags of the wrong length are ignored")
        #expect(message.dropped.isEmpty)
    }

    @Test func refusesBrokenFieldsWithTheirFault() {
        #expect(fault(Self.text("li1ee")) == .notADictionary(nil))
        guard case .notADictionary(let error) = fault(Self.text("d5:added")) else {
            Issue.record("a truncated dictionary was accepted")
            return
        }
        #expect(error != nil)
        #expect(fault(Self.text("d5:addedi5ee")) == .notAString("added"))
        #expect(fault(Self.text("d5:added5:abcdee")) == .badCompactLength("added", length: 5))
        #expect(fault(Self.text("d6:added66:abcdefe")) == .badCompactLength("added6", length: 6))
        #expect(fault(Self.text("d7:dropped7:abcdefge")) == .badCompactLength("dropped", length: 7))
        #expect(fault(Self.text("d8:dropped64:abcde")) == .badCompactLength("dropped6", length: 4))
        #expect(fault(Self.text("d5:added6:abcdef7:added.fi1ee")) == .notAString("added.f"))
    }

    @Test func boundsTheEntriesOfEachList() throws {
        func message(_ key: String, count: Int, size: Int) -> [UInt8] {
            var peers: [UInt8] = []
            for index in 0..<count {
                var entry = [UInt8](repeating: 0, count: size)
                entry[0] = 10
                entry[size - 3] = UInt8(index >> 8)
                entry[size - 2] = UInt8(index & 0xFF)
                entry[size - 1] = 1
                peers += entry
            }
            return BencodeValue.dictionary([key: .string(peers)]).encoded
        }
        let most = PeerExchangeMessage.maxEntries
        #expect(try decode(message("added", count: most, size: 6)).added.count == most)
        #expect(try decode(message("dropped6", count: most, size: 18)).dropped.count == most)
        #expect(fault(message("added", count: most + 1, size: 6)) == .tooManyEntries("added", count: most + 1))
        #expect(fault(message("added6", count: most + 1, size: 18)) == .tooManyEntries("added6", count: most + 1))
        #expect(fault(message("dropped", count: most + 1, size: 6)) == .tooManyEntries("dropped", count: most + 1))
    }

    @Test func everyTruncationIsRefused() throws {
        let message = PeerExchangeMessage(
            added: [.init(Self.v4a, flags: .seed), .init(Self.v6)], dropped: [Self.v4b])
        let bytes = message.encoded
        #expect(try decode(bytes) == message)
        for cut in 0..<bytes.count {
            #expect(throws: WireError.self, "cut at \(cut)") { try decode(Array(bytes[..<cut])) }
        }
    }

    @Test func garbageGivesTypedErrorsNeverATrap() {
        var random = SeededGenerator(seed: 11)
        let prefixes = [Self.text("d5:added"), Self.text("d7:dropped"), Self.text("d6:added6"), []]
        for round in 0..<3000 {
            let length = Int(random.next() % 60)
            let bytes = prefixes[round % prefixes.count] + (0..<length).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            do {
                let message = try decode(bytes)
                #expect(try decode(message.encoded) == message)
            } catch {
                #expect({ if case .invalidPeerExchange = error.code { true } else { false } }())
            }
        }
    }

    @Test func travelsInAnExtendedMessageByteAtATime() throws {
        let message = PeerExchangeMessage(added: [.init(Self.v6, flags: .reachable)], dropped: [Self.v4a])
        let bytes = WireFixtures.bytes(message.message(id: 5).encoded)
        var decoder = PeerMessageDecoder(pieceCount: 10)
        var buffer = ByteBuffer()
        var payload: ByteBuffer?
        for byte in bytes {
            buffer.writeInteger(byte)
            if case .extended(5, let received)? = try decoder.next(from: &buffer) { payload = received }
        }
        #expect(try PeerExchangeMessage(decoding: try #require(payload)) == message)
    }
}
