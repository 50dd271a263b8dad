import Foundation
import ShoalProcess
import Testing

/// `shoal demo`: the README's first command runs a whole swarm on loopback and says what happened.
@Suite struct DemoCommandTests {
    @Test func aSmallSwarmCompletesAndReportsWhoSentWhat() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let work = directory.appendingPathComponent("demo")
            let outcome = try await Interop.shoal([
                "demo", "--leechers", "3", "--size", "3M", "--piece-length", "65536", "--seed-upload", "4M",
                "--directory", work.path, "--timeout", "50",
            ])
            let text = outcome.stdoutText
            #expect(outcome.succeeded, "\(outcome.summary)")
            for leecher in 1...3 {
                #expect(text.contains("leecher-\(leecher): complete after"))
            }
            #expect(text.components(separatedBy: "every byte equals the seed's").count == 4, "\(text)")
            #expect(text.contains("Who uploaded to whom"))
            // The peers found each other through the demo's tracker, which saw every download complete.
            #expect(text.contains("the peers know only it"))
            #expect(text.contains("it counted 4 seeders, 0 leechers and 3 completed downloads"), "\(text)")
            #expect(text.contains("N·F/u_s = 3 × 3.00 MiB / 4.00 MiB/s"))
            // The folders are kept with --directory: each leecher holds the sample.
            for leecher in 1...3 {
                let file = work.appendingPathComponent("leecher-\(leecher)/Shoal Demo/film.mkv")
                let attributes = try FileManager.default.attributesOfItem(atPath: file.path)
                let size = (attributes[.size] as? NSNumber)?.int64Value
                #expect(size == Int64(3 * 1_048_576 * 55 / 100))
            }
        }
    }

    /// `--trackerless`: no tracker; the leechers start from a bare magnet link, find the seed in a loopback DHT,
    /// fetch the metadata from it and trade pieces among themselves.
    @Test func aTrackerlessSwarmStartsFromAMagnetLink() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let work = directory.appendingPathComponent("demo")
            let outcome = try await Interop.shoal([
                "demo", "--trackerless", "--leechers", "3", "--size", "3M", "--piece-length", "65536",
                "--seed-upload", "2M", "--directory", work.path, "--timeout", "50",
            ])
            let text = outcome.stdoutText
            #expect(outcome.succeeded, "\(outcome.summary)")
            #expect(!text.contains("Tracker on"), "\(text)")
            #expect(text.contains("the peers know only the DHT"), "\(text)")
            #expect(text.contains("No tracker: they started from magnet:?xt=urn:btih:"), "\(text)")
            #expect(text.components(separatedBy: "every byte equals the seed's").count == 4, "\(text)")
            for leecher in 1...3 {
                // The metadata came from a peer: each leecher saved the torrent it fetched.
                let saved = work.appendingPathComponent("leecher-\(leecher)/Shoal Demo.torrent")
                #expect(FileManager.default.fileExists(atPath: saved.path), "no \(saved.path)")
            }
            // The seed's upload is capped at 2 MiB/s for 9 MiB of downloads: the leechers must have traded.
            let shared = text.split(separator: "\n").first { $0.contains("the leechers uploaded") }
            #expect(shared != nil && !shared!.contains("uploaded 0 B to each other"), "\(text)")
        }
    }

    @Test func theTemporaryDirectoryIsRemoved() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let outcome = try await ExternalProcess.run(
                try Interop.shoalBinary(), ["demo", "--leechers", "1", "--size", "100k", "--seed-upload", "0"],
                environment: ["TMPDIR": directory.path], timeout: .seconds(60))
            #expect(outcome.succeeded, "\(outcome.summary)")
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            #expect(left.isEmpty, "left behind: \(left)")
        }
    }

    @Test func refusesNonsense() async throws {
        for arguments in [["--leechers", "0"], ["--size", "lots"], ["--piece-length", "1000"], ["--timeout", "-1"]] {
            let outcome = try await Interop.shoal(["demo"] + arguments)
            #expect(!outcome.succeeded, "\(arguments)")
            #expect(outcome.stderr.contains("Error") || outcome.stderr.contains("error"), "\(outcome.summary)")
        }
    }
}
