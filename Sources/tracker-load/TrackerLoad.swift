#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import ShoalCore
import ShoalTracker
import Synchronization

/// `tracker-load`: the tracker benchmark's own load generator (bench/tracker), loopback only, bounded in
/// time and count.
///
///     tracker-load hashes COUNT SEED               the info-hashes it announces, in hexadecimal (an allow-list)
///     tracker-load udp HOST PORT SECONDS HASHES SEED [WINDOW] [SOURCES]
///         BEP 15 announces of random peers (random peer ids and ports, a third of them seeds) to random
///         info-hashes of the list, WINDOW in flight from each of SOURCES sockets (127.0.0.1, 127.0.0.2, ...),
///         for SECONDS; prints what was answered and the generator's own CPU seconds.
///     tracker-load fill HOST PORT PEERS HASHES SEED [SOURCES]
///         PEERS distinct peers (address, port, info-hash), each announced once and answered: a registry of
///         known size, for memory per peer.
///     tracker-load http-paths COUNT HASHES SEED     announce paths (percent-encoded) for wrk's script
@main
struct TrackerLoad {
    static func main() async throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard let mode = arguments.first else { usage() }
        let numbers = arguments.dropFirst().map { Int($0) }
        switch mode {
        case "hashes":
            guard arguments.count == 3, let count = numbers[0], let seed = numbers[1] else { usage() }
            for hash in hashes(count, seed: seed) { print(hash.hex) }
        case "http-paths":
            guard arguments.count == 4, let count = numbers[0], let hashCount = numbers[1], let seed = numbers[2] else { usage() }
            let pool = hashes(hashCount, seed: seed)
            var random = SplitMix64(seed: UInt64(seed) &+ 99)
            for _ in 0..<min(count, 1_000_000) {
                let request = AnnounceRequest(
                    infoHash: pool[random.next(upTo: pool.count)], peerID: randomID(&random),
                    port: UInt16(1 + random.next(upTo: 65_000)), left: random.next(upTo: 3) == 0 ? 0 : 1000,
                    event: .started, key: UInt32(truncatingIfNeeded: random.next()), numWant: numWant)
                print("/announce?" + request.httpQuery)
            }
        case "udp", "fill":
            let fill = mode == "fill"
            guard arguments.count >= (fill ? 6 : 7), let port = numbers[1], let amount = numbers[2],
                let hashCount = numbers[3], let seed = numbers[4]
            else { usage() }
            let window = fill ? 256 : (numbers.count > 5 ? numbers[5] ?? 256 : 256)
            let sources = (fill ? (numbers.count > 5 ? numbers[5] : 1) : (numbers.count > 6 ? numbers[6] : 1)) ?? 1
            // Bounded: at most 10 minutes, 64 sources, a window of 4096, 50 million peers.
            guard (1...64).contains(sources), (1...4096).contains(window), amount > 0, hashCount > 0,
                fill ? amount <= 50_000_000 : amount <= 600
            else { usage() }
            let host = arguments[1]
            guard host.hasPrefix("127.") || host == "::1" else {
                print("tracker-load: loopback targets only")
                exit(2)
            }
            let result = try await UDPLoad.run(
                host: host, port: port, seconds: fill ? 600 : Double(amount), distinct: fill ? amount : nil,
                hashes: hashes(hashCount, seed: seed), seed: UInt64(seed), window: window, sources: sources)
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            let cpu = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
            print(
                "sent=\(result.sent) answered=\(result.answered) errors=\(result.errors) connects=\(result.connects) "
                    + "seconds=\(String(format2: result.seconds)) cpu=\(String(format2: cpu))")
        default:
            usage()
        }
    }

    static func usage() -> Never {
        print("usage: tracker-load hashes COUNT SEED | udp HOST PORT SECONDS HASHES SEED [WINDOW] [SOURCES] | fill HOST PORT PEERS HASHES SEED [SOURCES] | http-paths COUNT HASHES SEED")
        exit(2)
    }

    /// `count` info-hashes drawn from `seed`: the same list for the allow-list and the load.
    static func hashes(_ count: Int, seed: Int) -> [Bytes20] {
        var random = SplitMix64(seed: UInt64(seed))
        return (0..<max(count, 1)).map { _ in
            Bytes20(high: random.next(), middle: random.next(), low: UInt32(truncatingIfNeeded: random.next()))
        }
    }

    /// Peers asked for in every announce, said explicitly: trackers' defaults differ (opentracker gives 200,
    /// Shoal 50), and the comparison must be of the same work.
    static let numWant: Int32 = 50

    static func randomID(_ random: inout SplitMix64) -> Bytes20 {
        Bytes20(high: 0x2D4C_4F41_4430_312D, middle: random.next(), low: UInt32(truncatingIfNeeded: random.next()))
    }
}

extension String {
    init(format2 value: Double) {
        let hundredths = Int((value * 100).rounded())
        self = "\(hundredths / 100).\(hundredths % 100 < 10 ? "0" : "")\(hundredths % 100)"
    }
}
