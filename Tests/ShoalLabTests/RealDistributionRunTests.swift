import Foundation
@testable import ShoalLab
import Testing

/// Real `shoal` processes on loopback: a seed and three leechers with upload caps, in both modes. Each
/// run takes a few seconds (d_cs = 4.8 s, d_P2P = 3.7 s) plus start-up.
@Suite struct RealDistributionRunTests {
    static let fileSize = 4 << 20
    static let peerUpload = 256 << 10

    @Test(arguments: RealDistributionRun.Mode.allCases)
    func everyLeecherCompletesWithTheSourceBytes(mode: RealDistributionRun.Mode) async throws {
        let result = try await Self.withWorkDirectory { directory in
            let run = RealDistributionRun(
                shoalExecutable: try Self.shoalBinary(), workDirectory: directory, fileSize: Self.fileSize,
                pieceLength: 64 << 10, peerUpload: Self.peerUpload, serverUpload: 10 * Self.peerUpload, leechers: 3,
                mode: mode)
            return try await run.run()
        }
        #expect(result.completionTimes.count == 3)
        #expect(result.completionTimes.allSatisfy { $0 > 0 })
        #expect(result.leecherUploaded.count == 3)
        // The caps hold: nobody beats the bound by more than the rate limiter's burst allows.
        #expect(result.distributionTime >= 0.9 * result.bound, "\(result)")
        #expect(result.distributionTime < 5 * result.bound + 30, "\(result)")
        if let utilisation = result.seedUtilisation { #expect(utilisation <= 1.1, "\(result)") }
        if mode == .clientServer {
            // Nobody but the seed uploads, so it sent every byte of every copy.
            let seedUploaded = try #require(result.seedUploaded)
            #expect(seedUploaded >= Int64(3 * Self.fileSize) * 99 / 100, "\(result)")
        }
    }

    @Test func boundsFollowTheLecture() {
        func run(_ mode: RealDistributionRun.Mode) -> RealDistributionRun {
            RealDistributionRun(
                shoalExecutable: "/nonexistent", workDirectory: "/nonexistent", fileSize: 128 << 20,
                pieceLength: 256 << 10, peerUpload: 2_000_000, serverUpload: 20_000_000, leechers: 8, mode: mode)
        }
        // The issue's numbers: d_P2P = 29.8 s, d_cs = 53.7 s.
        #expect(abs(run(.peerToPeer).bound - 29.83) < 0.01)
        #expect(abs(run(.clientServer).bound - 53.69) < 0.01)
        let clientServer = run(.clientServer)
        #expect(abs(RealDistributionRun.seconds(clientServer.deadline) - (5 * clientServer.bound + 30)) < 0.002)
    }

    @Test func invalidConfigurationsAreRejectedBeforeAnythingRuns() async {
        let valid = RealDistributionRun(
            shoalExecutable: "/bin/true", workDirectory: "/nonexistent", fileSize: 1 << 20, pieceLength: 16_384,
            peerUpload: 1000, serverUpload: 10_000, leechers: 2, mode: .peerToPeer)
        var tooMany = valid
        tooMany.leechers = 17
        var badPiece = valid
        badPiece.pieceLength = 10_000
        var noShoal = valid
        noShoal.shoalExecutable = "/nonexistent/shoal"
        for run in [tooMany, badPiece, noShoal] {
            await #expect { try await run.run() } throws: { error in
                (error as? RealDistributionError)?.code == .invalidConfiguration
            }
        }
    }

    @Test func readsWhatShoalPrints() throws {
        let output = """
            Listening on port 20001; 0 of 64 pieces verified
            50.0% of 4.00 MiB, 1 peer, down 1.00 MiB/s, up 0 B/s, ETA 0:02
            Complete: all 64 pieces verified
            Seeding until interrupted (Ctrl-C)
            Downloaded 4.00 MiB, uploaded 1.50 MiB

            """
        #expect(ShoalOutput.isListening(output))
        #expect(ShoalOutput.isComplete(output))
        #expect(!ShoalOutput.isComplete("Complete: seeding\n"))
        let totals = try #require(ShoalOutput.transferTotals(output))
        #expect(totals.downloaded == 4 << 20)
        #expect(totals.uploaded == 1_572_864)
        #expect(ShoalOutput.transferTotals("Downloaded 0 B, uploaded 0 B, 16.00 KiB failed their hash check")?.uploaded == 0)
        #expect(ShoalOutput.transferTotals("no totals") == nil)
    }

    // MARK: - Support

    /// The package root, found from this file's path (Tests/ShoalLabTests/RealDistributionRunTests.swift).
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `shoal` executable built next to the test bundle, else `.build/debug/shoal`, as the interop
    /// tests find it (`SHOAL_BINARY` overrides).
    static func shoalBinary() throws -> String {
        var candidates: [String] = []
        if let override = ProcessInfo.processInfo.environment["SHOAL_BINARY"] { candidates.append(override) }
        // Linux: .build/<triple>/debug/ShoalPackageTests.xctest is an executable beside `shoal`.
        let runner = URL(fileURLWithPath: CommandLine.arguments.first ?? "").standardizedFileURL
        candidates.append(runner.deletingLastPathComponent().appendingPathComponent("shoal").path)
        // macOS: the bundle is a directory; its binary sits in .xctest/Contents/MacOS.
        candidates.append(Bundle.main.bundleURL.standardizedFileURL.deletingLastPathComponent()
            .appendingPathComponent("shoal").path)
        candidates.append(packageRoot.appendingPathComponent(".build/debug/shoal").path)
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate) {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue {
                return candidate
            }
        }
        throw RealDistributionError(
            code: .invalidConfiguration,
            message: "no shoal binary (looked at \(candidates.joined(separator: ", "))): run `swift build --build-tests`")
    }

    /// Runs `body` with a fresh directory that is removed afterwards, whatever happens.
    static func withWorkDirectory<Result>(_ body: (String) async throws -> Result) async throws -> Result {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("shoal-lab-real-\(UUID().uuidString)", isDirectory: true).path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        return try await body(directory)
    }
}
