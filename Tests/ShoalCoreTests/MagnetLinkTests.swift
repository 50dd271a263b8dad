import Foundation
import ShoalTestSupport
import Testing

import ShoalCore

@Suite struct MagnetLinkTests {
    /// The BEP 52 hybrid test torrent (`bittorrent-v1-v2-hybrid-test`).
    static let hybridV1 = Digest20(hex: "631a31dd0a46257d5078c0dee4e66e26f73e42ac")!
    static let hybridV2 = Digest32(hex: "d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb")!
    static let hex = "08ada5a7a6183aae1e09d831df6748d566095a10"
    static let digest = Digest20(hex: hex)!

    static func parse(_ text: String) throws(MagnetLinkError) -> MagnetLink {
        try MagnetLink(parsing: text)
    }

    static func expectError(
        _ code: MagnetLinkError.Code, _ text: String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(throws: MagnetLinkError(code), sourceLocation: sourceLocation) { try MagnetLink(parsing: text) }
    }

    // MARK: Real-world links

    @Test func parsesWebTorrentSintelLink() throws {
        let link = try Self.parse(
            "magnet:?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10&dn=Sintel"
                + "&tr=udp%3A%2F%2Fexplodie.org%3A6969&tr=udp%3A%2F%2Ftracker.opentrackr.org%3A1337"
                + "&tr=wss%3A%2F%2Ftracker.openwebtorrent.com&ws=https%3A%2F%2Fwebtorrent.io%2Ftorrents%2F"
                + "&xs=https%3A%2F%2Fwebtorrent.io%2Ftorrents%2Fsintel.torrent")
        #expect(link.infoHashes == [.v1(Self.digest)])
        #expect(link.displayName == "Sintel")
        #expect(
            link.trackers == [
                "udp://explodie.org:6969", "udp://tracker.opentrackr.org:1337", "wss://tracker.openwebtorrent.com",
            ])
        #expect(link.webSeeds == ["https://webtorrent.io/torrents/"])
        #expect(link.peers == [])
        #expect(link.selectOnly == [])
        #expect(
            link.otherParameters == [
                MagnetLink.Parameter(key: "xs", value: "https://webtorrent.io/torrents/sintel.torrent")
            ])
    }

    @Test func parsesLowercaseEscapesAndUnescapedTrackers() throws {
        // qBittorrent and Transmission differ in escape case and in whether ':' and '/' are escaped.
        let link = try Self.parse(
            "magnet:?xt=urn:btih:3B245504CF5F11BBDBE1201CEA6A6BF45AEE1BC0"
                + "&dn=ubuntu-22.04.3-desktop-amd64.iso&tr=https%3a%2f%2ftorrent.ubuntu.com%2fannounce"
                + "&tr=udp://tracker.opentrackr.org:1337/announce")
        #expect(link.v1InfoHash == Digest20(hex: "3b245504cf5f11bbdbe1201cea6a6bf45aee1bc0"))
        #expect(link.displayName == "ubuntu-22.04.3-desktop-amd64.iso")
        #expect(
            link.trackers == ["https://torrent.ubuntu.com/announce", "udp://tracker.opentrackr.org:1337/announce"])
    }

    @Test func parsesLibtorrentHybridLink() throws {
        let link = try Self.parse(
            "magnet:?xt=urn:btih:631a31dd0a46257d5078c0dee4e66e26f73e42ac"
                + "&xt=urn:btmh:1220d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb"
                + "&dn=bittorrent-v1-v2-hybrid-test")
        #expect(link.infoHashes == [.v1(Self.hybridV1), .v2(Self.hybridV2)])
        #expect(link.v1InfoHash == Self.hybridV1)
        #expect(link.v2InfoHash == Self.hybridV2)
        #expect(link.displayName == "bittorrent-v1-v2-hybrid-test")
    }

    @Test func parsesV2OnlyLink() throws {
        let link = try Self.parse(
            "magnet:?xt=urn:btmh:1220D8DD32AC93357C368556AF3AC1D95C9D76BD0DFF6FA9833ECDAC3D53134EFABB")
        #expect(link.infoHashes == [.v2(Self.hybridV2)])
        #expect(link.v1InfoHash == nil)
        #expect(link.v2InfoHash == Self.hybridV2)
    }

    // MARK: Info-hashes

    @Test func hexAndBase32InfoHashesAgree() throws {
        let base32 = Base32.encode(Self.digest.bytes)
        #expect(base32 == "BCW2LJ5GDA5K4HQJ3AY56Z2I2VTASWQQ")
        let fromHex = try Self.parse("magnet:?xt=urn:btih:\(Self.hex)")
        let fromUpperHex = try Self.parse("magnet:?xt=urn:btih:\(Self.hex.uppercased())")
        let fromBase32 = try Self.parse("magnet:?xt=urn:btih:\(base32)")
        let fromLowerBase32 = try Self.parse("magnet:?xt=urn:btih:\(base32.lowercased())")
        #expect(fromHex.infoHashes == [.v1(Self.digest)])
        #expect(fromUpperHex == fromHex)
        #expect(fromBase32 == fromHex)
        #expect(fromLowerBase32 == fromHex)
        // Printing always uses lowercase hex.
        #expect(fromBase32.uri == "magnet:?xt=urn:btih:\(Self.hex)")
    }

    @Test func repeatedInfoHashesAreKeptOnce() throws {
        let base32 = Base32.encode(Self.digest.bytes)
        let link = try Self.parse(
            "magnet:?xt=urn:btih:\(Self.hex)&xt=urn:btih:\(base32)&xt.1=urn:btih:\(Self.hex.uppercased())")
        #expect(link.infoHashes == [.v1(Self.digest)])
    }

    @Test func numberedExactTopicsAreReadInOrder() throws {
        let link = try Self.parse(
            "magnet:?xt.1=urn:btmh:1220\(Self.hybridV2.hex)&xt.2=urn:btih:\(Self.hybridV1.hex)"
                + "&xt=urn:btih:\(Self.hex)")
        #expect(link.infoHashes == [.v2(Self.hybridV2), .v1(Self.hybridV1), .v1(Self.digest)])
        #expect(link.v1InfoHash == Self.hybridV1)
    }

    @Test func urnPrefixIsCaseInsensitive() throws {
        let link = try Self.parse("magnet:?xt=URN:BTIH:\(Self.hex)&xt=Urn:BtMh:1220\(Self.hybridV2.hex)")
        #expect(link.infoHashes == [.v1(Self.digest), .v2(Self.hybridV2)])
    }

    @Test func otherExactTopicsAreKept() throws {
        let link = try Self.parse(
            "magnet:?xt=urn:sha1:PDAQRAOQQRYS76MRZJ33LK4MMVZBDSCL&xt.1=urn:btih:\(Self.hex)"
                + "&xt.2=urn:ed2k:354B15E68FB8F36D7CD88FF94116CDC1")
        #expect(link.infoHashes == [.v1(Self.digest)])
        #expect(
            link.otherParameters == [
                .init(key: "xt", value: "urn:sha1:PDAQRAOQQRYS76MRZJ33LK4MMVZBDSCL"),
                .init(key: "xt.2", value: "urn:ed2k:354B15E68FB8F36D7CD88FF94116CDC1"),
            ])
        #expect(try Self.parse(link.uri) == link)
    }

    @Test(arguments: [
        "urn:btih:",
        "urn:btih:08ada5a7a6183aae1e09d831df6748d566095a1",  // 39 hex digits
        "urn:btih:08ada5a7a6183aae1e09d831df6748d566095a100",  // 41
        "urn:btih:08ada5a7a6183aae1e09d831df6748d566095a1g",  // not hex
        "urn:btih:BCW2LJ5GDA5K4HQJ3AY56Z2I2VTASWQ1",  // 32 characters, '1' is not base32
        "urn:btih:BCW2LJ5GDA5K4HQJ3AY56Z2I2VTASWQ",  // 31
        "urn:btih:BCW2LJ5GDA5K4HQJ3AY56Z2I2VTASW==",  // padded, 19 bytes
        "urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10 ",
        "urn:btih:\u{FF10}8ada5a7a6183aae1e09d831df6748d566095a1",  // a fullwidth digit
        "urn:btmh:",
        "urn:btmh:d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb",  // no multihash tag
        "urn:btmh:1220d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efab",  // 63 digits
        "urn:btmh:1220d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb00",
        "urn:btmh:1114631a31dd0a46257d5078c0dee4e66e26f73e42ac",  // SHA-1 multihash
        "urn:btmh:1320d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb",  // SHA-512 code
        "urn:btmh:1221d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb",  // wrong length byte
        "urn:btmh:1220zzdd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb",
    ])
    func rejectsBadInfoHash(_ topic: String) {
        Self.expectError(.badInfoHash(topic), "magnet:?xt=\(topic)&dn=x")
        // A bad info-hash is an error even next to a good one.
        Self.expectError(.badInfoHash(topic), "magnet:?xt=urn:btih:\(Self.hex)&xt.1=\(topic)&dn=x")
    }

    @Test(arguments: [
        "magnet:?",
        "magnet:?dn=name&tr=udp://t.example:1",
        "magnet:?xt=urn:btih",  // no colon: not a BitTorrent topic
        "magnet:?xt=urn:sha1:PDAQRAOQQRYS76MRZJ33LK4MMVZBDSCL",
        "magnet:?XT=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10",  // keys are case-sensitive
        "magnet:?xt.x=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10",
        "magnet:?dn=a#&xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10",  // in the fragment
        String(repeating: "&", count: 60_000).withMagnetPrefix,
    ])
    func rejectsMissingInfoHash(_ text: String) {
        Self.expectError(.missingInfoHash, text)
    }

    // MARK: Other parameters

    @Test func readsEveryParameter() throws {
        let link = try Self.parse(
            "magnet:?xt=urn:btih:\(Self.hex)&dn=Big%20Buck%20Bunny&tr=udp://a.example:6969/announce"
                + "&tr.1=http%3A%2F%2Fb.example%2Fannounce%3Fkey%3D1%26x%3D2&tr.2=wss://c.example"
                + "&ws=https://seed.example/files/&ws.1=https://seed2.example/"
                + "&x.pe=198.51.100.7:6881&x.pe=[2001:db8::1]:51413&x.pe.1=%5B::1%5D:6881&x.pe=peer.example:1"
                + "&so=0,2,4-6&as=https://cache.example/x.torrent&kt=big+buck&dn=second")
        #expect(link.infoHashes == [.v1(Self.digest)])
        #expect(link.displayName == "Big Buck Bunny")
        #expect(
            link.trackers == [
                "udp://a.example:6969/announce", "http://b.example/announce?key=1&x=2", "wss://c.example",
            ])
        #expect(link.webSeeds == ["https://seed.example/files/", "https://seed2.example/"])
        #expect(link.peers == ["198.51.100.7:6881", "[2001:db8::1]:51413", "[::1]:6881", "peer.example:1"])
        #expect(link.selectOnly == [0...0, 2...2, 4...6])
        #expect(
            link.otherParameters == [
                .init(key: "as", value: "https://cache.example/x.torrent"), .init(key: "kt", value: "big+buck"),
            ])
        #expect(try Self.parse(link.uri) == link)
    }

    @Test func onlyTheFirstDisplayNameIsKept() throws {
        let link = try Self.parse("magnet:?dn=first&xt=urn:btih:\(Self.hex)&dn.1=second&dn=third")
        #expect(link.displayName == "first")
        #expect(link.otherParameters == [])
    }

    @Test func numberedFormsNeedDigits() throws {
        let link = try Self.parse("magnet:?xt=urn:btih:\(Self.hex)&tr.=a&tr.x=b&tr.1=c&tr1=d&x.pex=e&so.1=1")
        #expect(link.trackers == ["c"])
        #expect(link.peers == [])
        #expect(link.selectOnly == [])
        #expect(
            link.otherParameters.map(\.key) == ["tr.", "tr.x", "tr1", "x.pex", "so.1"])
    }

    @Test func emptyPairsAreSkippedAndBareKeysHaveEmptyValues() throws {
        let link = try Self.parse("magnet:?&&xt=urn:btih:\(Self.hex)&&flag&dn=&=v&tr=&")
        #expect(link.displayName == "")
        #expect(link.trackers == [""])
        #expect(link.otherParameters == [.init(key: "flag", value: ""), .init(key: "", value: "v")])
        #expect(link.uri == "magnet:?xt=urn:btih:\(Self.hex)&dn=&tr=&flag=&=v")
        #expect(try Self.parse(link.uri) == link)
    }

    @Test func valueMayContainEqualsSigns() throws {
        let link = try Self.parse("magnet:?xt=urn:btih:\(Self.hex)&tr=http://t.example/a?k=v=w")
        #expect(link.trackers == ["http://t.example/a?k=v=w"])
    }

    @Test func keysArePercentDecodedToo() throws {
        let link = try Self.parse("magnet:?%78t=urn:btih:\(Self.hex)&%64n=name&k%26y=v")
        #expect(link.displayName == "name")
        #expect(link.otherParameters == [.init(key: "k&y", value: "v")])
        #expect(link.uri == "magnet:?xt=urn:btih:\(Self.hex)&dn=name&k%26y=v")
    }

    @Test func schemeIsCaseInsensitiveAndSurroundingWhitespaceIgnored() throws {
        let expected = MagnetLink(infoHashes: [.v1(Self.digest)], displayName: "a")
        #expect(try Self.parse("MAGNET:?xt=urn:btih:\(Self.hex)&dn=a") == expected)
        #expect(try Self.parse("Magnet:?xt=urn:btih:\(Self.hex)&dn=a") == expected)
        #expect(try Self.parse(" \t\r\nmagnet:?xt=urn:btih:\(Self.hex)&dn=a\r\n ") == expected)
    }

    @Test func fragmentIsIgnored() throws {
        let link = try Self.parse("magnet:?xt=urn:btih:\(Self.hex)&dn=a#b&tr=udp://t.example:1&%zz")
        #expect(link.displayName == "a")
        #expect(link.trackers == [])
        #expect(link.otherParameters == [])
    }

    // MARK: Select-only (BEP 53)

    @Test func readsSelectOnly() throws {
        let link = try Self.parse("magnet:?xt=urn:btih:\(Self.hex)&so=0,2,4,6-8&so=3-3,1&so=2147483647")
        #expect(link.selectOnly == [0...0, 2...2, 4...4, 6...8, 3...3, 1...1, 2_147_483_647...2_147_483_647])
        // An escaped comma is a comma once decoded.
        #expect(try Self.parse("magnet:?xt=urn:btih:\(Self.hex)&so=1%2C2").selectOnly == [1...1, 2...2])
        #expect(link.uri == "magnet:?xt=urn:btih:\(Self.hex)&so=0,2,4,6-8,3,1,2147483647")
        #expect(try Self.parse(link.uri) == link)
    }

    @Test(arguments: [
        "", ",", "1,", ",1", "1,,2", "6-4", "-1", "1-", "-", "1-2-3", "a", "1a", "+1", " 1", "1 ", "0x1",
        "2147483648", "0-2147483648", "99999999999999999999999999", "１", "1%2C2",
    ])
    func rejectsBadSelectOnly(_ value: String) {
        // Everything but digits, ',' and '-' is escaped, so the list reaches the `so` parser as written.
        var escaped = ""
        for byte in value.utf8 {
            if byte == UInt8(ascii: ",") || byte == UInt8(ascii: "-") || (48...57).contains(byte) {
                escaped.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                escaped += "%" + String(byte >> 4, radix: 16) + String(byte & 0x0F, radix: 16)
            }
        }
        Self.expectError(.badSelectOnly(value), "magnet:?xt=urn:btih:\(Self.hex)&so=\(escaped)")
    }

    // MARK: Percent-encoding

    @Test func decodesNonASCIINames() throws {
        let link = try Self.parse(
            "magnet:?xt=urn:btih:\(Self.hex)&dn=%E6%97%A5%E6%9C%AC%E8%AA%9E%20Caf%C3%A9%20%F0%9F%A6%88")
        #expect(link.displayName == "日本語 Café 🦈")
        #expect(
            link.uri
                == "magnet:?xt=urn:btih:\(Self.hex)&dn=%E6%97%A5%E6%9C%AC%E8%AA%9E%20Caf%C3%A9%20%F0%9F%A6%88")
    }

    @Test func acceptsRawNonASCIIAndSpaces() throws {
        let link = try Self.parse("magnet:?xt=urn:btih:\(Self.hex)&dn=Café au lait 日本&x.pe=[::1]:6881")
        #expect(link.displayName == "Café au lait 日本")
        #expect(link.peers == ["[::1]:6881"])
        #expect(try Self.parse(link.uri) == link)
    }

    @Test func plusStaysPlus() throws {
        let link = try Self.parse("magnet:?xt=urn:btih:\(Self.hex)&dn=C++%2B+Primer")
        #expect(link.displayName == "C++++Primer")
        #expect(link.uri == "magnet:?xt=urn:btih:\(Self.hex)&dn=C%2B%2B%2B%2BPrimer")
    }

    @Test func printsEscapesForReservedCharacters() throws {
        let link = MagnetLink(
            infoHashes: [.v1(Self.digest)],
            displayName: "a&b=c#d%e f+g;h[i]j'k\"l<m>n\\o^p`q{r}s|t\u{0}\u{7F}é",
            trackers: ["udp://t.example:6969/announce?k=1&x=a%20b"],
            webSeeds: ["https://user@seed.example/~dir/file-name_1.iso"],
            peers: ["[2001:db8::1]:6881"],
            selectOnly: [0...0, 2...2, 4...6],
            otherParameters: [.init(key: "x.k=&", value: "v")]
        )
        #expect(
            link.uri
                == "magnet:?xt=urn:btih:\(Self.hex)"
                + "&dn=a%26b%3Dc%23d%25e%20f%2Bg%3Bh%5Bi%5Dj%27k%22l%3Cm%3En%5Co%5Ep%60q%7Br%7Ds%7Ct%00%7F%C3%A9"
                + "&tr=udp://t.example:6969/announce?k%3D1%26x%3Da%2520b"
                + "&ws=https://user@seed.example/~dir/file-name_1.iso"
                + "&x.pe=%5B2001:db8::1%5D:6881"
                + "&so=0,2,4-6"
                + "&x.k%3D%26=v")
        #expect(try Self.parse(link.uri) == link)
    }

    @Test func printedLinksUseOnlySafeASCII() throws {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<200 {
            let uri = Self.randomLink(using: &generator).uri
            let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:/?@,%&=".utf8)
            #expect(uri.utf8.allSatisfy(allowed.contains), "\(uri)")
        }
    }

    @Test(arguments: [
        ("dn=%zz", 64),
        ("dn=%", 64),
        ("dn=%4", 64),
        ("dn=%4g", 64),
        ("dn=%g4", 64),
        ("dn=ab%", 66),
        ("dn=%41%", 67),
        ("dn=%%41", 64),
        ("d%n=x", 62),
        ("dn=%-1", 64),
        ("dn=%+1", 64),
        ("dn=% 1", 64),
        ("tr=%4&dn=x", 64),  // an escape cannot reach over '&'
        ("tr=%4=1", 64),  // nor over '='
    ])
    func rejectsBadPercentEncoding(_ tail: String, _ offset: Int) {
        Self.expectError(.badPercentEncoding(at: offset), "magnet:?xt=urn:btih:\(Self.hex)&\(tail)")
    }

    @Test func percentOffsetsCountFromTheTrimmedText() {
        Self.expectError(.badPercentEncoding(at: 11), "  \n magnet:?dn=%zz&xt=urn:btih:\(Self.hex)")
    }

    @Test(arguments: [
        "dn=%FF",  // never valid in UTF-8
        "dn=%C3",  // a truncated sequence
        "dn=%C3%28",
        "dn=%C0%AF",  // overlong '/'
        "dn=%ED%A0%80",  // a UTF-16 surrogate
        "dn=%F4%90%80%80",  // past U+10FFFF
        "k%FF=v",  // in a key
    ])
    func rejectsDecodedBytesThatAreNotUTF8(_ tail: String) {
        Self.expectError(.badUTF8(at: 61), "magnet:?xt=urn:btih:\(Self.hex)&\(tail)")
    }

    @Test func escapesAreDecodedOnlyOnce() throws {
        let link = try Self.parse("magnet:?xt=urn:btih:\(Self.hex)&dn=%2541%25zz")
        #expect(link.displayName == "%41%zz")
        #expect(try Self.parse(link.uri) == link)
    }

    // MARK: Errors and limits

    @Test(arguments: [
        "",
        "   ",
        "magnet",
        "magnet:",
        "magnet:xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10",
        "magnet://?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10",
        "http://example.com/?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10",
        "urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10",
        "08ada5a7a6183aae1e09d831df6748d566095a10",
        "magnet%3A?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10",
        "mägnet:?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10",
    ])
    func rejectsWhatIsNotAMagnetLink(_ text: String) {
        Self.expectError(.notAMagnetLink, text)
    }

    @Test(arguments: [
        ("magnet:?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10&dn=a\nb", 65),
        ("magnet:?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10&dn=a\u{0}", 65),
        ("magnet:?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10&dn=\u{7F}", 64),
        ("magnet:?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10\tdn=a", 60),
        ("\u{1B}magnet:?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10", 0),
        ("magnet:?xt=urn:btih:08ada5a7a6183aae1e09d831df6748d566095a10#\r\n\u{0}x", 61),
    ])
    func rejectsControlCharacters(_ text: String, _ offset: Int) {
        Self.expectError(.badCharacter(at: offset), text)
    }

    @Test func rejectsTooLongInput() throws {
        let prefix = "magnet:?xt=urn:btih:\(Self.hex)&dn="
        let longest = prefix + String(repeating: "a", count: MagnetLink.maxLength - prefix.utf8.count)
        #expect(try Self.parse(longest).displayName?.utf8.count == MagnetLink.maxLength - prefix.utf8.count)
        Self.expectError(.tooLong(MagnetLink.maxLength + 1), longest + "a")
        // Length is counted in UTF-8 bytes, before whitespace is trimmed.
        Self.expectError(.tooLong(MagnetLink.maxLength + 2), longest + "é")
        Self.expectError(.tooLong(MagnetLink.maxLength + 1), longest + " ")
        let huge = String(repeating: "%", count: 4 * MagnetLink.maxLength)
        Self.expectError(.tooLong(4 * MagnetLink.maxLength), huge)
    }

    @Test func rejectsTooManyParameters() throws {
        let base = "magnet:?xt=urn:btih:\(Self.hex)"
        let most = base + String(repeating: "&k=v", count: MagnetLink.maxParameterCount - 1)
        #expect(try Self.parse(most).otherParameters.count == MagnetLink.maxParameterCount - 1)
        Self.expectError(.tooManyParameters, most + "&k=v")
        Self.expectError(.tooManyParameters, most + "&k")
        // Empty pairs do not count.
        #expect(try Self.parse(most + "&&&&&").otherParameters.count == MagnetLink.maxParameterCount - 1)
    }

    @Test func errorsDescribeTheProblem() {
        let codes: [MagnetLinkError.Code] = [
            .notAMagnetLink, .tooLong(70_000), .tooManyParameters, .badCharacter(at: 3),
            .badPercentEncoding(at: 4), .badUTF8(at: 5), .missingInfoHash, .badInfoHash("urn:btih:xyz"),
            .badSelectOnly("6-4"),
        ]
        let descriptions = codes.map { MagnetLinkError($0).description }
        #expect(Set(descriptions).count == codes.count)
        #expect(descriptions[0].contains("magnet:?"))
        #expect(descriptions[1].contains("70000"))
        #expect(descriptions[4].contains("byte 4"))
        #expect(descriptions[7].contains("urn:btih:xyz"))
        #expect(descriptions[8].contains("6-4"))
        let long = MagnetLinkError(.badInfoHash("urn:btih:" + String(repeating: "z", count: 10_000)))
        #expect(long.description.count < 300)
    }

    // MARK: Building and round trips

    @Test func buildsALinkForACreatedTorrent() {
        let link = MagnetLink(
            infoHashes: [.v1(Self.hybridV1), .v2(Self.hybridV2)],
            displayName: "bittorrent-v1-v2-hybrid-test",
            trackers: ["udp://tracker.example:6969/announce"]
        )
        #expect(
            link.uri
                == "magnet:?xt=urn:btih:631a31dd0a46257d5078c0dee4e66e26f73e42ac"
                + "&xt=urn:btmh:1220d8dd32ac93357c368556af3ac1d95c9d76bd0dff6fa9833ecdac3d53134efabb"
                + "&dn=bittorrent-v1-v2-hybrid-test&tr=udp://tracker.example:6969/announce")
        #expect(link.description == link.uri)
    }

    @Test func generatedLinksRoundTrip() throws {
        var generator = SeededGenerator(seed: 0x4D41_474E_4554)
        for _ in 0..<2_000 {
            let link = Self.randomLink(using: &generator)
            let uri = link.uri
            let parsed = try Self.parse(uri)
            #expect(parsed == link, "\(uri)")
            #expect(parsed.uri == uri)
        }
    }

    /// Random text, parsed or not: nothing traps, and whatever parses prints a link that parses
    /// back to the same value and prints the same text again.
    @Test func randomTextNeverTrapsAndWhatParsesRoundTrips() throws {
        let pieces = [
            "magnet:?", "magnet:?", "xt=", "urn:btih:", "urn:btmh:1220", Self.hex, Self.hybridV2.hex,
            Base32.encode(Self.digest.bytes), "&", "&", "=", "%", "%2", "%zz", "%41", "%ff", "%C3%A9", "%F0%9F",
            "dn", "tr", "tr.1", "ws", "x.pe", "xt.2", "so=", "0", "12", "-", ",", "#", " ", "\n", "é", "+", "[::1]",
            ":6881", "2147483648", "k",
        ]
        var generator = SeededGenerator(seed: 99)
        var parsedCount = 0
        for _ in 0..<20_000 {
            let starts = [
                "", "magnet:?", "magnet:?xt=urn:btih:\(Self.hex)&", "MAGNET:?xt=urn:btmh:1220\(Self.hybridV2.hex)",
            ]
            var text = starts[Int.random(in: 0..<starts.count, using: &generator)]
            for _ in 0..<Int.random(in: 0...24, using: &generator) {
                text += pieces[Int.random(in: 0..<pieces.count, using: &generator)]
            }
            do {
                let link = try Self.parse(text)
                parsedCount += 1
                let again = try Self.parse(link.uri)
                #expect(again == link, "\(text)")
                #expect(again.uri == link.uri)
            } catch {
                #expect(!error.description.isEmpty)
            }
        }
        #expect(parsedCount > 1_000)
    }

    /// The seeds of the magnet fuzzer (`Tests/Fuzz/Corpus/magnet`), replayed: each parses and
    /// round-trips, or fails with an error.
    @Test func fuzzCorpusReplays() throws {
        let directory = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/Corpus/magnet")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(names.count >= 8)
        var parsedCount = 0
        for name in names {
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            let text = String(decoding: data, as: UTF8.self)
            do {
                let link = try Self.parse(text)
                parsedCount += 1
                #expect(try Self.parse(link.uri) == link, "\(name)")
            } catch {
                #expect(!error.description.isEmpty, "\(name)")
            }
        }
        #expect(parsedCount >= names.count - 1)
    }

    /// A random link that meets the round-trip conditions of `MagnetLink`.
    private static func randomLink(using generator: inout SeededGenerator) -> MagnetLink {
        func count(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }
        func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) } }
        func text() -> String {
            let pieces: [String] =
                "abcXYZ019 -._~:/?@,&=#%+;[]'\"<>\\^`{}|!$()*".map(String.init) + [
                    "\u{0}", "\t", "\n", "\u{7F}", "é", "e\u{301}", "日本", "🦈", "\u{FEFF}", "\u{10FFFF}", "ß",
                ]
            var result = ""
            for _ in 0..<count(0...12) {
                result += pieces[Int.random(in: 0..<pieces.count, using: &generator)]
            }
            return result
        }
        var infoHashes: [InfoHash] = []
        for _ in 0..<count(1...3) {
            let hash: InfoHash =
                count(0...1) == 0 ? .v1(Digest20(bytes: bytes(20))!) : .v2(Digest32(bytes: bytes(32))!)
            if !infoHashes.contains(hash) { infoHashes.append(hash) }
        }
        let selectOnly: [ClosedRange<Int>] = (0..<count(0...4)).map { _ in
            let lower = count(0...1) == 0 ? count(0...20) : count(0...MagnetLink.maxFileIndex)
            let upper = count(0...2) == 0 ? lower : count(lower...MagnetLink.maxFileIndex)
            return lower...upper
        }
        var otherParameters: [MagnetLink.Parameter] = (0..<count(0...3)).map { _ in
            // A leading 'k' keeps these keys from being recognised ones.
            .init(key: "k" + text(), value: text())
        }
        if count(0...3) == 0 {
            otherParameters.append(.init(key: "xt", value: "urn:sha1:" + text()))
        }
        return MagnetLink(
            infoHashes: infoHashes,
            displayName: count(0...3) == 0 ? nil : text(),
            trackers: (0..<count(0...3)).map { _ in "udp://" + text() },
            webSeeds: (0..<count(0...2)).map { _ in text() },
            peers: (0..<count(0...2)).map { _ in
                count(0...1) == 0 ? "[::\(count(0...65535))]:\(count(0...65535))" : text()
            },
            selectOnly: selectOnly,
            otherParameters: otherParameters
        )
    }
}

extension String {
    fileprivate var withMagnetPrefix: String { "magnet:?" + self }
}

