import ArgumentParser
import AsyncHTTPClient
import NIOCore
import NIOPosix
import ShoalCore
import ShoalTracker
import ShoalTrackerNIO

struct ScrapeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scrape",
        abstract: "Ask trackers how many seeders, leechers and completed downloads a torrent has.",
        discussion: """
            SOURCE is a .torrent file or a magnet link (its trackers are asked about its info-hash), or a \
            tracker URL (asked about each --info-hash; over HTTP, none asks for every swarm it lists).
            """)

    @Argument(help: "A .torrent file, a magnet link, or a tracker URL.")
    var source: String

    @Option(name: .customLong("info-hash"), help: "An info-hash (40 hexadecimal digits) to ask about; repeat for more.")
    var infoHashes: [String] = []

    @Option(name: .customLong("tracker"), help: "Ask this tracker too; repeat for more.")
    var trackers: [String] = []

    @Option(help: "Seconds to wait for each tracker.")
    var timeout: Int = 15

    func validate() throws {
        for hash in infoHashes where Digest20(hex: hash) == nil {
            throw ValidationError("--info-hash \(hash): not 40 hexadecimal digits")
        }
        guard (1...600).contains(timeout) else { throw ValidationError("--timeout must be 1 to 600 seconds") }
    }

    func run() async throws {
        var urls: [String] = []
        var hashes = infoHashes.compactMap { Digest20(hex: $0).map(Bytes20.init) }
        if source.lowercased().hasPrefix("magnet:") {
            let link: MagnetLink
            do { link = try MagnetLink(parsing: source) } catch { throw Terminal.fail(error.description) }
            urls = link.trackers
            hashes += link.infoHashes.map { Bytes20($0.truncated) }
        } else if source.contains("://") {
            urls = [source]
        } else {
            let metainfo = try TorrentFileLoader.load(source)
            urls = metainfo.trackers.flatMap { $0 }
            hashes += [metainfo.infoHashV1.map(Bytes20.init) ?? Bytes20(metainfo.infoHash.truncated)]
        }
        urls += trackers
        var parsed: [TrackerURL] = []
        for text in urls {
            do { parsed.append(try TrackerURL(parsing: text)) } catch { Terminal.printError("\(text): \(error)") }
        }
        guard !parsed.isEmpty else { throw Terminal.fail("no tracker to ask: give a tracker URL or --tracker") }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        let client = HTTPClient(eventLoopGroupProvider: .shared(group))
        var answered = 0
        for url in parsed {
            do {
                let response = try await TrackerScraper.scrape(
                    url, infoHashes: hashes, group: group, httpClient: client, threadPool: pool, timeout: .seconds(timeout))
                answered += 1
                let shown = hashes.isEmpty ? response.files.keys.sorted() : hashes
                if shown.isEmpty { Terminal.line("\(url): no swarms") }
                for hash in shown {
                    let counts = response.files[hash]
                    Terminal.line(
                        "\(url) \(hash): "
                            + (counts.map { "\($0.seeders) seeders, \($0.leechers) leechers, \($0.completed) completed" } ?? "unknown to the tracker"))
                }
            } catch {
                Terminal.printError("\(url): \(error)")
            }
        }
        try? await client.shutdown()
        try? await pool.shutdownGracefully()
        try? await group.shutdownGracefully()
        if answered == 0 { throw ExitCode(1) }
    }
}
