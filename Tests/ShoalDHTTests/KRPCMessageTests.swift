import ShoalBencode
import ShoalCore
import Testing

@testable import ShoalDHT

@Suite("KRPC messages")
struct KRPCMessageTests {
    static let abc = NodeID(bytes: Array("abcdefghij0123456789".utf8))!
    static let mno = NodeID(bytes: Array("mnopqrstuvwxyz123456".utf8))!

    /// BEP 5's example packets, byte for byte, both ways.
    @Test(arguments: [
        ("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe", KRPCMessage.Body.query(KRPCQuery(id: abc, method: .ping))),
        ("d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re", .response(KRPCResponse(id: mno))),
        ("d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
         .error(KRPCErrorReply(code: 201, message: "A Generic Error Ocurred"))),
        ("d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
         .query(KRPCQuery(id: abc, method: .findNode(target: mno, want: [])))),
        ("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
         .query(KRPCQuery(id: abc, method: .getPeers(infoHash: mno, want: [])))),
        ("d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
         .response(KRPCResponse(
            id: abc, values: [NodeAddress(compact: Array("axje.u".utf8))!, NodeAddress(compact: Array("idhtnm".utf8))!],
            token: Array("aoeusnth".utf8)))),
        ("d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
         .query(KRPCQuery(id: abc, method: .announcePeer(infoHash: mno, port: 6881, token: Array("aoeusnth".utf8), impliedPort: true)))),
    ])
    func bep5Examples(text: String, body: KRPCMessage.Body) throws {
        let bytes = Array(text.utf8)
        let message = try KRPCMessage(decoding: bytes)
        #expect(message.transactionID == Array("aa".utf8))
        #expect(message.body == body)
        #expect(message.encoded == bytes)
    }

    @Test func extensionFieldsRoundTrip() throws {
        var random = SplitMix64(seed: 9)
        let nodes = (0..<8).map { index in
            NodeInfo(id: .random(using: &random), address: NodeAddress("10.0.0.\(index + 1):\(6881 + index)")!)
        }
        let nodes6 = (0..<3).map { index in
            NodeInfo(id: .random(using: &random), address: NodeAddress("[2001:db8::\(index + 1)]:6881")!)
        }
        let response = KRPCMessage(
            transactionID: [1, 2, 3, 4], version: Array("SH\u{0}\u{1}".utf8),
            requesterAddress: NodeAddress("203.0.113.7:51413"), readOnly: false,
            body: .response(KRPCResponse(
                id: .random(using: &random), nodes: nodes, nodes6: nodes6,
                values: [NodeAddress("1.2.3.4:5")!, NodeAddress("[::1]:6")!], token: [9, 9])))
        let bytes = response.encoded
        #expect(bytes.count <= 1024)
        #expect(try KRPCMessage(decoding: bytes) == response)

        let query = KRPCMessage(
            transactionID: [7], readOnly: true,
            body: .query(KRPCQuery(id: .random(using: &random), method: .findNode(target: .max, want: [.ipv4, .ipv6]))))
        let text = String(decoding: query.encoded, as: UTF8.self)
        #expect(text.contains("4:wantl2:n42:n6e"))
        #expect(text.contains("2:roi1e"))
        #expect(try KRPCMessage(decoding: query.encoded) == query)
    }

    @Test func wantIgnoresUnknownStrings() throws {
        let text = "d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:wantl2:xx2:n6ee1:q9:get_peers1:t2:aa1:y1:qe"
        let message = try KRPCMessage(decoding: Array(text.utf8))
        #expect(message.body == .query(KRPCQuery(id: Self.abc, method: .getPeers(infoHash: Self.mno, want: .ipv6))))
    }

    @Test func unknownMethodKeepsItsName() throws {
        let text = "d1:ad2:id20:abcdefghij0123456789e1:q9:sample_xx1:t2:zz1:y1:qe"
        let message = try KRPCMessage(decoding: Array(text.utf8))
        #expect(message.body == .query(KRPCQuery(id: Self.abc, method: .unknown(name: Array("sample_xx".utf8)))))
    }

    /// What is wrong, and where, for each kind of bad datagram.
    @Test(arguments: [
        ("", DHTError.Code.bencode(.empty), ""),
        ("le", .wrongType(expected: .dictionary), ""),
        ("d1:t2:aae", .missingField, "y"),
        ("d1:y1:qe", .missingField, "t"),
        ("d1:t2:aa1:y1:xe", .unknownMessageType, "y"),
        ("d1:t2:aa1:y1:qe", .missingField, "q"),
        ("d1:q4:ping1:t2:aa1:y1:qe", .missingField, "a"),
        ("d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe", .wrongLength(expected: 20, actual: 19), "a.id"),
        ("d1:ad2:idi5ee1:q4:ping1:t2:aa1:y1:qe", .wrongType(expected: .string), "a.id"),
        ("d1:ad2:id20:abcdefghij0123456789e1:q9:find_node1:t2:aa1:y1:qe", .missingField, "a.target"),
        ("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234564:porti70000e5:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
         .outOfRange, "a.port"),
        ("d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz1234565:token1:xe1:q13:announce_peer1:t2:aa1:y1:qe",
         .missingField, "a.port"),
        ("d1:rd2:id20:mnopqrstuvwxyz1234565:nodes3:abce1:t2:aa1:y1:re", .notMultiple(of: 26, actual: 3), "r.nodes"),
        ("d1:rd2:id20:mnopqrstuvwxyz1234566:nodes626:abcdefghijklmnopqrstuvwxyze1:t2:aa1:y1:re",
         .notMultiple(of: 38, actual: 26), "r.nodes6"),
        ("d1:rd2:id20:mnopqrstuvwxyz1234566:valuesl5:abcdeee1:t2:aa1:y1:re", .wrongLength(expected: 6, actual: 5), "r.values"),
        ("d1:rd2:id20:mnopqrstuvwxyz1234566:values6:abcdefe1:t2:aa1:y1:re", .wrongType(expected: .list), "r.values"),
        ("d2:ip5:abcde1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re", .wrongLength(expected: 6, actual: 5), "ip"),
        ("d1:rd2:id20:mnopqrstuvwxyz123456e2:ro1:x1:t2:aa1:y1:re", .wrongType(expected: .integer), "ro"),
        ("d1:t17:aaaaaaaaaaaaaaaaa1:y1:re", .tooLong(limit: 16), "t"),
        ("d1:ei5e1:t2:aa1:y1:ee", .wrongType(expected: .list), "e"),
        ("d1:ele1:t2:aa1:y1:ee", .missingField, "e"),
    ])
    func refusedWithTheField(text: String, code: DHTError.Code, field: String) {
        #expect {
            try KRPCMessage(decoding: Array(text.utf8))
        } throws: { error in
            guard let error = error as? DHTError else { return false }
            return error.code == code && error.field == field
        }
    }

    @Test func malformedQueriesCarryTheirTransactionForError203() throws {
        let text = "d1:ad2:id3:abce1:q4:ping1:t2:zz1:y1:qe"
        do {
            _ = try KRPCMessage(decoding: Array(text.utf8))
            Issue.record("accepted a short id")
        } catch {
            #expect(error.replyTransactionID == Array("zz".utf8))
            #expect(error.offset == 9)
            #expect(error.description.contains("a.id"))
        }
        // A malformed response is never answered.
        do {
            _ = try KRPCMessage(decoding: Array("d1:rd2:id3:abce1:t2:zz1:y1:re".utf8))
        } catch {
            #expect(error.replyTransactionID == nil)
        }
    }

    @Test func limitsHold() throws {
        let big = [UInt8](repeating: UInt8(ascii: "x"), count: 1501)
        #expect(throws: DHTError.self) { try KRPCMessage(decoding: big) }
        var values = "d1:rd2:id20:mnopqrstuvwxyz1234566:valuesl"
        for _ in 0..<257 { values += "6:abcdef" }
        values += "ee1:t2:aa1:y1:re"
        var limits = KRPCLimits(maxDatagramLength: 4096)
        limits.maxValues = 256
        #expect {
            try KRPCMessage(decoding: Array(values.utf8), limits: limits)
        } throws: { ($0 as? DHTError)?.code == .tooMany(limit: 256) }
        // Nesting deeper than a KRPC message ever needs.
        let deep = "d1:ad2:id20:abcdefghij01234567891:x" + String(repeating: "l", count: 20) + String(repeating: "e", count: 20)
            + "e1:q4:ping1:t2:aa1:y1:qe"
        #expect(throws: DHTError.self) { try KRPCMessage(decoding: Array(deep.utf8)) }
    }

    /// Every truncation of valid datagrams is refused (a datagram is all or nothing), without trapping, and
    /// so is every single-byte corruption that breaks it; nothing traps.
    @Test func truncatedAndCorruptedDatagrams() throws {
        let corpus = [
            "d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
            "d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
        ]
        var random = SplitMix64(seed: 5)
        for text in corpus {
            let bytes = Array(text.utf8)
            for length in 0..<bytes.count {
                #expect(throws: DHTError.self) { try KRPCMessage(decoding: Array(bytes.prefix(length))) }
            }
            for _ in 0..<2000 {
                var corrupted = bytes
                corrupted[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
                if let message = try? KRPCMessage(decoding: corrupted) {
                    #expect(try KRPCMessage(decoding: message.encoded) == message)
                }
            }
        }
    }
}
