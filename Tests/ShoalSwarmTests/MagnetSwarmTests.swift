import NIOCore
import ShoalCore
import ShoalTestSupport
import ShoalWire
import Testing

@testable import ShoalSwarm

/// Magnet links (BEP 9) and peer exchange (BEP 11) with whole torrents in memory.
@Suite("Magnet links and peer exchange in a swarm")
struct MagnetSwarmTests {
    /// 5000 pieces of 512 bytes: 100,000 bytes of piece hashes, seven 16 KiB pieces of metadata.
    static let content = MagnetContent(totalLength: 5000 * 512, pieceLength: 512, seed: 21)

    @Test func aMagnetLeecherGetsTheMetadataFromTwoSeedsAndCompletes() throws {
        var swarm = MagnetSwarm(content: Self.content)
        let seeds = [swarm.addTorrentNode(complete: true), swarm.addTorrentNode(complete: true)]
        let leecher = swarm.addMagnetNode()
        for seed in seeds { swarm.introduce(leecher, to: seed) }
        try swarm.run(until: { $0.node(leecher).isComplete })
        let node = swarm.node(leecher)
        #expect(node.fetchedInfo == Self.content.metainfo.infoBytes)
        #expect(node.data == Self.content.bytes, "the download differs from the content")
        #expect(Set(node.carried) == Set(seeds.map { swarm.node($0).address }), "both seeds carried over")
        // The seven pieces of metadata came from both seeds.
        let served = seeds.map { swarm.node($0).torrent!.metadataPiecesServed }
        #expect(served.allSatisfy { $0 > 0 } && served.reduce(0, +) == 7, "\(served)")
        #expect(Self.content.metainfo.info.pieceCount == 5000)
    }

    @Test func aSeedServingBadMetadataIsBannedAndTheLeecherCompletes() throws {
        var swarm = MagnetSwarm(content: Self.content)
        let liar = swarm.addTorrentNode(complete: true, corruptMetadata: true)
        let honest = swarm.addTorrentNode(complete: true)
        let leecher = swarm.addMagnetNode()
        swarm.introduce(leecher, to: liar)
        swarm.introduce(leecher, to: honest)
        try swarm.run(until: { $0.node(leecher).isComplete })
        #expect(swarm.node(leecher).fetchedInfo == Self.content.metainfo.infoBytes)
        #expect(swarm.node(leecher).data == Self.content.bytes)
        #expect(swarm.node(leecher).banned == [swarm.node(liar).address])
    }

    @Test func magnetLeechersRejectEachOtherAndBothComplete() throws {
        var swarm = MagnetSwarm(content: Self.content)
        let seed = swarm.addTorrentNode(complete: true)
        let first = swarm.addMagnetNode()
        let second = swarm.addMagnetNode()
        // The two magnet nodes meet before either has the metadata; the second finds the seed only
        // through the first (PEX, or the first's torrent once it has one).
        swarm.introduce(first, to: second)
        swarm.introduce(first, to: seed)
        try swarm.run(until: { $0.node(first).isComplete && $0.node(second).isComplete })
        #expect(swarm.node(second).fetchedInfo == Self.content.metainfo.infoBytes)
        #expect(swarm.node(second).data == Self.content.bytes)
    }

    /// A seed and three leechers that know only the seed; a newcomer knows only one leecher. PEX tells
    /// it of the seed and the others: it dials them all.
    @Test func peerExchangeLetsAPeerThatKnewOneFindTheOthers() throws {
        let content = MagnetContent(totalLength: 400 * 16384, pieceLength: 16384, seed: 22)
        var swarm = MagnetSwarm(content: content)
        let seed = swarm.addTorrentNode(complete: true)
        let leechers = (0..<3).map { _ in swarm.addTorrentNode(complete: false) }
        for leecher in leechers { swarm.introduce(leecher, to: seed) }
        // Slow, so that it is still a leecher when PEX speaks (a seed does not dial seeds it learns of).
        let newcomer = swarm.addTorrentNode(complete: false) { $0.downloadRateLimit = 200_000 }
        swarm.introduce(newcomer, to: leechers[0])
        let others = Set([seed, leechers[1], leechers[2]].map { swarm.node($0).address })
        try swarm.run(until: { others.isSubset(of: $0.node(newcomer).dialled) })
        try swarm.run(until: { $0.node(newcomer).isComplete })
        #expect(swarm.node(newcomer).data == content.bytes)
        // Nobody dialled an address twice in a row for nothing: each was learnt once.
        #expect(Set(swarm.node(newcomer).dialled).count == swarm.node(newcomer).dialled.count)
    }

    @Test func withoutPeerExchangeTheNewcomerFindsNobodyElse() throws {
        let content = MagnetContent(totalLength: 40 * 16384, pieceLength: 16384, seed: 23)
        var swarm = MagnetSwarm(content: content)
        swarm.configure = { $0.peerExchange = false }
        let seed = swarm.addTorrentNode(complete: true)
        let leecher = swarm.addTorrentNode(complete: false)
        swarm.introduce(leecher, to: seed)
        let newcomer = swarm.addTorrentNode(complete: false)
        swarm.introduce(newcomer, to: leecher)
        try swarm.run(until: { $0.node(newcomer).isComplete })
        // Five minutes more: PEX would have spoken several times.
        let end = swarm.now + .seconds(300)
        try swarm.run(until: { $0.now >= end })
        #expect(swarm.node(newcomer).dialled == [swarm.node(leecher).address])
    }

    @Test func aPrivateTorrentNeitherExchangesPeersNorServesItsMetadata() throws {
        let content = MagnetContent(totalLength: 40 * 16384, pieceLength: 16384, seed: 24, isPrivate: true)
        var swarm = MagnetSwarm(content: content)
        let seed = swarm.addTorrentNode(complete: true)
        let leecher = swarm.addTorrentNode(complete: false)
        swarm.introduce(leecher, to: seed)
        let newcomer = swarm.addTorrentNode(complete: false)
        swarm.introduce(newcomer, to: leecher)
        let magnet = swarm.addMagnetNode()
        swarm.introduce(magnet, to: seed)
        try swarm.run(until: { $0.node(newcomer).isComplete })
        let end = swarm.now + .seconds(300)
        try swarm.run(until: { $0.now >= end })
        #expect(swarm.node(newcomer).dialled == [swarm.node(leecher).address], "no PEX in a private torrent")
        #expect(swarm.node(magnet).fetchedInfo == nil, "a private torrent's metadata is not served")
        #expect(swarm.node(seed).torrent!.metadataPiecesServed == 0)
    }
}
