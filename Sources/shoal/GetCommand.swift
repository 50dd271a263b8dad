import ArgumentParser
import ShoalCore
import ShoalStorage

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Download a torrent from its peers, verify it, and exit when complete.")

    @Argument(help: "The .torrent file.")
    var torrent: String

    @Option(name: .shortAndLong, help: "The download directory (default: the current one).")
    var output: String = "."

    @Option(name: .customLong("peer"), help: "A peer to connect to, HOST:PORT ([::1]:6881 for IPv6); repeat for more.")
    var peers: [String] = []

    @Option(help: "The port to listen on (0: any free port).")
    var port: Int = 6881

    @Flag(help: "Keep seeding after the download completes, until interrupted.")
    var seed = false

    func run() async throws {
        let run = try SwarmRun.load(torrent: torrent, directory: output, port: port, peers: peers)
        let layout = FileLayout(run.metainfo.info)
        let have = try run.check(layout: layout)
        try await run.run(have: have, layout: layout, keepSeeding: seed)
    }
}

struct SeedCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "seed",
        abstract: "Serve a complete download to peers, until interrupted.")

    @Argument(help: "The .torrent file.")
    var torrent: String

    @Option(help: "The directory that holds the torrent's data.")
    var data: String

    @Option(name: .customLong("peer"), help: "A peer to connect to, HOST:PORT; repeat for more.")
    var peers: [String] = []

    @Option(help: "The port to listen on (0: any free port).")
    var port: Int = 6881

    func run() async throws {
        let run = try SwarmRun.load(torrent: torrent, directory: data, port: port, peers: peers)
        let layout = FileLayout(run.metainfo.info)
        let have = try run.check(layout: layout)
        guard have.isComplete else {
            throw Terminal.fail("\(data) holds \(have.setCount) of \(have.count) pieces of this torrent; seeding needs them all")
        }
        try await run.run(have: have, layout: layout, keepSeeding: true)
    }
}

extension SwarmRun {
    static func load(torrent: String, directory: String, port: Int, peers: [String]) throws -> SwarmRun {
        guard (0...65535).contains(port) else { throw Terminal.fail("--port must be between 0 and 65535") }
        var addresses: [PeerAddress] = []
        for text in peers {
            guard let address = PeerAddress(text) else { throw Terminal.fail("--peer \(text): not HOST:PORT") }
            addresses.append(address)
        }
        return SwarmRun(
            metainfo: try TorrentFileLoader.load(torrent), directory: directory, port: port, peers: addresses)
    }
}
