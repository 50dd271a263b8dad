import ShoalBencode
import Testing

@testable import ShoalCore

@Suite("Metainfo from a magnet link and fetched metadata")
struct MetainfoFromMagnetTests {
    private static let pieces = String(repeating: "A", count: 40)
    /// An info dictionary with its keys out of order: it must be kept byte for byte.
    private static let info = Array("d4:name8:file.bin6:lengthi40000e12:piece lengthi32768e6:pieces40:\(pieces)e".utf8)

    @Test func keepsTheInfoBytesAndTakesTheLinksTrackersAndWebSeeds() throws {
        let hash = InfoHash.v1(ofInfo: Self.info[...])
        let link = try MagnetLink(
            parsing: "magnet:?xt=urn:btih:\(hash.hex)&dn=x&tr=http://a/announce&tr=udp://b:80&ws=http://w/file.bin")
        let metainfo = try Metainfo(infoDictionary: Self.info, magnetLink: link)
        #expect(metainfo.infoBytes == Self.info)
        #expect(metainfo.infoHash == hash)
        #expect(metainfo.info.name == "file.bin")
        #expect(metainfo.trackers == [["http://a/announce"], ["udp://b:80"]])
        #expect(metainfo.webSeeds == ["http://w/file.bin"])
        // Written and read back as a .torrent: the same torrent.
        let again = try Metainfo(parsing: metainfo.encoded())
        #expect(again.infoBytes == Self.info && again.trackers == metainfo.trackers)
    }

    @Test func refusesWhatIsNotExactlyOneValidInfoDictionary() {
        let link = MagnetLink(infoHashes: [InfoHash.v1(ofInfo: Self.info[...])])
        #expect(throws: MetainfoError.self) { try Metainfo(infoDictionary: Self.info + Array("i1e".utf8), magnetLink: link) }
        #expect(throws: MetainfoError.self) { try Metainfo(infoDictionary: Array(Self.info.dropLast()), magnetLink: link) }
        #expect(throws: MetainfoError.self) { try Metainfo(infoDictionary: Array("de".utf8), magnetLink: link) }
        #expect(throws: MetainfoError.self) { try Metainfo(infoDictionary: Array("i5e".utf8), magnetLink: link) }
        #expect(throws: MetainfoError.self) { try Metainfo(infoDictionary: [], magnetLink: link) }
    }
}
