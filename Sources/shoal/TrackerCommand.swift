import ArgumentParser
import Dispatch
import Glibc
import NIOCore
import NIOPosix
import ShoalCore
import ShoalStorage
import ShoalTracker
import ShoalTrackerNIO

struct TrackerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tracker",
        abstract: "Run a BitTorrent tracker (HTTP and UDP) until interrupted.",
        discussion: """
            Serves /announce and /scrape over HTTP (BEP 3, 7, 23, 48) and BEP 15 over UDP, from one swarm \
            registry in memory. Peers that miss two announces expire. With --allow-list, only the listed \
            info-hashes are served (a private tracker); with --state, the swarms are saved every 5 minutes \
            and on Ctrl-C, and read back at start.
            """)

    @Option(help: "The HTTP port (0: any free port).")
    var httpPort: Int = 6969

    @Option(help: "The UDP port (0: any free port).")
    var udpPort: Int = 6969

    @Flag(help: "Serve no HTTP.")
    var noHttp = false

    @Flag(help: "Serve no UDP.")
    var noUdp = false

    @Option(name: .customLong("bind"), help: "An address to listen on (default: all, IPv6 and IPv4); repeat for more.")
    var bindAddresses: [String] = []

    @Option(help: "A file of allowed info-hashes, one in hexadecimal per line (default: any).")
    var allowList: String?

    @Option(help: "Seconds between a client's announces.")
    var interval: Int = 1800

    @Option(help: "Peers given at most in one answer.")
    var maxPeers: Int = 200

    @Option(help: "Keep the swarms in this file across restarts.")
    var state: String?

    func validate() throws {
        for port in [httpPort, udpPort] where !(0...65535).contains(port) {
            throw ValidationError("ports are 0 to 65535")
        }
        guard !(noHttp && noUdp) else { throw ValidationError("--no-http and --no-udp leave nothing to serve") }
        guard (1...86_400).contains(interval) else { throw ValidationError("--interval must be 1 to 86400 seconds") }
        guard (1...10_000).contains(maxPeers) else { throw ValidationError("--max-peers must be 1 to 10000") }
    }

    func run() async throws {
        var allowed: Set<Bytes20>?
        if let allowList {
            let bytes: [UInt8]
            do { bytes = try WholeFile.read(allowList, limit: 1 << 30) } catch { throw Terminal.fail("--allow-list: \(error)") }
            do { allowed = try InfoHashList.parse(String(decoding: bytes, as: UTF8.self)) } catch {
                throw Terminal.fail("\(allowList): \(error)")
            }
        }
        var generator = SystemRandomNumberGenerator()
        let registry = SwarmRegistry.Configuration(
            interval: interval, maxNumWant: maxPeers, allowList: allowed, seed: generator.next())
        // One thread serves everything: NIO's singleton group of one loop, also made Swift Concurrency's
        // executor so that the command's own tasks (status lines, stopping) add no threads.
        NIOSingletons.groupLoopCountSuggestion = 1
        let group: (any EventLoopGroup)? =
            NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
            ? MultiThreadedEventLoopGroup.singleton : nil
        let configuration = TrackerServer.Configuration(
            httpPort: noHttp ? nil : httpPort, udpPort: noUdp ? nil : udpPort, bindAddresses: bindAddresses,
            registry: registry, statePath: state, group: group)
        let server: TrackerServer
        do { server = try await TrackerServer.start(configuration: configuration) } catch {
            throw Terminal.fail("cannot start the tracker: \(error)")
        }
        if let warning = server.stateWarning { Terminal.printError(warning) }
        let status = server.status
        if state != nil { Terminal.line("State: \(status.swarms) swarms, \(status.peers) peers read from \(state!)") }
        if let allowed { Terminal.line("Allow-list: \(allowed.count) info-hashes") }
        for address in server.httpAddresses { Terminal.line("HTTP tracker: \(Self.url("http", address))") }
        for address in server.udpAddresses { Terminal.line("UDP tracker: \(Self.url("udp", address))") }

        let (events, continuation) = AsyncStream.makeStream(of: Int32?.self)
        let signals = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            return source
        }
        defer { for source in signals { source.cancel() } }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(60))
                continuation.yield(nil)
            }
        }
        for await signal in events {
            if signal != nil { break }
            let status = server.status
            Terminal.line(
                "\(status.swarms) swarms, \(status.peers) peers; announces: \(status.udp.announces) UDP, "
                    + "\(status.httpAnnounces) HTTP; scrapes: \(status.udp.scrapes) UDP, \(status.httpScrapes) HTTP")
        }
        ticker.cancel()
        await server.stop()
        let final = server.status
        Terminal.line("Stopped: \(final.swarms) swarms, \(final.peers) peers" + (state.map { "; saved to \($0)" } ?? ""))
    }

    /// `http://127.0.0.1:6969/announce`-style text for a bound address (`[::]` and `0.0.0.0` stand for
    /// every address of the machine).
    static func url(_ scheme: String, _ address: SocketAddress) -> String {
        let host: String
        switch address {
        case .v6: host = "[\(address.ipAddress ?? "::")]"
        default: host = address.ipAddress ?? "0.0.0.0"
        }
        return "\(scheme)://\(host):\(address.port ?? 0)/announce"
    }
}
