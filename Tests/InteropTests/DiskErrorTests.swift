#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ShoalProcess
import Testing

/// A download that hits a storage failure stops with a clear error (exit status 1, one
/// `shoal: error:` naming the file and the problem, no hang) and keeps what it verified: a later
/// run starts with those pieces (trusted from resume data, or found by checking the files) and
/// completes byte for byte.
///
/// The torrent is `a.bin` (1,000,000 B) then `sub/b.bin` (2,500,000 B), fetched with `--sequential`:
/// `a.bin`'s pieces come first and are verified before the failure, which every case below puts
/// in `sub/b.bin` only.
@Suite struct DiskErrorTests {
    static let tree = FileTree([("a.bin", 1_000_000), ("sub/b.bin", 2_500_000)], contentSeed: 7)

    static var isRoot: Bool { getuid() == 0 }

    /// The `nobody` user, for root to drop to when the test needs permissions to apply.
    static var nobody: (uid: uid_t, gid: gid_t)? {
        guard let entry = getpwnam("nobody") else { return nil }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    /// Whether permissions can be tested: as a user, or as root that can become `nobody` with setpriv.
    static var canTestPermissions: Bool {
        !isRoot || (nobody != nil && ExternalProcess.locate("setpriv") != nil)
    }

    /// Root that may mount (a container may refuse even root): tried once, on a tmpfs of 64 KiB.
    static let canMount: Bool = {
        guard getuid() == 0, ExternalProcess.locate("mount") != nil, ExternalProcess.locate("umount") != nil else {
            return false
        }
        let point = FileManager.default.temporaryDirectory.appendingPathComponent("shoal-mount-probe-\(UUID().uuidString)")
        guard (try? FileManager.default.createDirectory(at: point, withIntermediateDirectories: true)) != nil else {
            return false
        }
        defer { try? FileManager.default.removeItem(at: point) }
        guard SwarmCommand.system(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", point.path]).status == 0 else {
            return false
        }
        SwarmCommand.system(["umount", point.path])
        return true
    }()

    // MARK: Disk full

    /// `ulimit -f 1024` (1 MiB per file) with SIGXFSZ ignored: writes into `sub/b.bin` past 1 MiB
    /// fail with EFBIG ("File too large"), as on a full disk, whoever runs the test.
    @Test func fileSizeLimitStopsAndKeepsVerifiedPieces() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let (fixture, seedPort, seed, download) = try await SwarmCommand.seededFixture(
                Self.tree, name: "disk", in: directory)
            defer { seed.stop() }
            let arguments = SwarmCommand.getArguments(
                fixture, into: download, port: try LoopbackPorts.free(), peers: [seedPort], ["--sequential"])
            let failed = try await ExternalProcess.run(
                "bash", ["-c", "ulimit -f 1024 && trap '' XFSZ && exec \"$@\"", "bash", try Interop.shoalBinary()] + arguments,
                timeout: .seconds(20))
            try Self.expectStorageFailure(
                failed, files: [fixture.content(in: download).appendingPathComponent("sub/b.bin")], problem: "File too large")

            let retry = try await SwarmCommand.get(fixture, into: download, peers: [seedPort]).outcome
            try Self.expectResumes(retry, fixture: fixture, download: download, resumeData: .required)
        }
    }

    /// A file deleted while Shoal writes to it: the writes would land in an orphaned inode and be lost, so
    /// the download stops with the file named (found within about a second) instead of claiming data it
    /// no longer has; the next run fetches the file again and completes.
    @Test func aFileDeletedUnderTheDownloadStopsIt() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let (fixture, seedPort, seed, download) = try await SwarmCommand.seededFixture(
                Self.tree, name: "disk", maxUpload: "512k", in: directory)
            defer { seed.stop() }
            let get = try SwarmCommand.startGet(fixture, into: download, peers: [seedPort], ["--sequential"], in: directory)
            defer { get.stop() }
            try await SwarmCommand.waitForProgress(get, above: 5)
            let victim = fixture.content(in: download).appendingPathComponent("a.bin")
            try FileManager.default.removeItem(at: victim)
            let status = try await SwarmCommand.exitStatus(of: get, timeout: .seconds(15))
            #expect(status == 1, "\(get)")
            #expect(get.standardError.contains("a.bin"), "\(get)")
            #expect(get.standardError.contains("deleted while in use"), "\(get)")
            #expect(!get.standardOutput.contains("Complete:"), "\(get)")

            let retry = try await SwarmCommand.get(fixture, into: download, peers: [seedPort]).outcome
            #expect(retry.succeeded, "\(retry.summary)")
            try assertSameFiles(
                source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }

    /// A real full disk (ENOSPC) on a 2 MiB tmpfs, root only. Resume data may not fit on the full
    /// disk: the next run may find the verified pieces by checking the files instead. It runs after
    /// the tmpfs is grown.
    @Test(.enabled(if: DiskErrorTests.canMount, "needs root and the right to mount a tmpfs (skipped: not root, or mount refused)"))
    func fullDiskStopsAndKeepsVerifiedPieces() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let (fixture, seedPort, seed, download) = try await SwarmCommand.seededFixture(
                Self.tree, name: "disk", in: directory)
            defer { seed.stop() }
            try FileManager.default.createDirectory(at: download, withIntermediateDirectories: true)
            try Self.mount(["-t", "tmpfs", "-o", "size=2m", "tmpfs", download.path])
            defer { Self.unmount(download) }

            let failed = try await SwarmCommand.get(fixture, into: download, peers: [seedPort], ["--sequential"]).outcome
            // The disk fills in `sub/b.bin` (a.bin, first and smaller, is written by then); either
            // file named is a clear message.
            let content = fixture.content(in: download)
            try Self.expectStorageFailure(
                failed, files: [content.appendingPathComponent("sub/b.bin"), content.appendingPathComponent("a.bin")],
                problem: "No space left on device")

            try Self.mount(["-o", "remount,size=16m", download.path])
            let retry = try await SwarmCommand.get(fixture, into: download, peers: [seedPort]).outcome
            try Self.expectResumes(retry, fixture: fixture, download: download, resumeData: .optional)
        }
    }

    // MARK: Permission denied

    /// `sub/` is read-only (mode 0555) when the download reaches it: creating `sub/b.bin` fails with
    /// EACCES. Root ignores permissions, so as root shoal runs as `nobody` (setpriv).
    @Test(.enabled(if: DiskErrorTests.canTestPermissions, "root ignores permissions and cannot drop to nobody: setpriv or the nobody user is missing"))
    func readOnlyDirectoryStopsAndKeepsVerifiedPieces() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let (fixture, seedPort, seed, download) = try await SwarmCommand.seededFixture(
                Self.tree, name: "disk", in: directory)
            defer { seed.stop() }
            let sub = fixture.content(in: download).appendingPathComponent("sub", isDirectory: true)
            try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
            // As root: run shoal as nobody, owner of the download directory.
            let runAs = try Self.unprivileged(owning: [download])
            try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: sub.path)
            defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: sub.path) }

            let shoal = try Interop.shoalBinary()
            let run = { (extra: [String]) async throws -> ProcessOutcome in
                let arguments = SwarmCommand.getArguments(
                    fixture, into: download, port: try LoopbackPorts.free(), peers: [seedPort], extra)
                let command = runAs + [shoal] + arguments
                return try await ExternalProcess.run(command[0], Array(command.dropFirst()), timeout: .seconds(20))
            }
            let failed = try await run(["--sequential"])
            try Self.expectStorageFailure(failed, files: [sub.appendingPathComponent("b.bin")], problem: "Permission denied")

            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: sub.path)
            let retry = try await run([])
            try Self.expectResumes(retry, fixture: fixture, download: download, resumeData: .required)
        }
    }

    /// Shoal run as an ordinary user (as root: as nobody, without any capability) seeds and
    /// downloads on loopback: the precondition of the permission test above, and of every use of
    /// `shoal` outside root.
    @Test(
        .enabled(if: DiskErrorTests.canTestPermissions, "as root, needs setpriv and the nobody user to drop privileges"))
    func unprivilegedShoalExchangesPieces() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let fixture = try await RealClientHarness.makeFixture(Self.tree, name: "disk", in: directory)
            let download = directory.appendingPathComponent("download", isDirectory: true)
            try FileManager.default.createDirectory(at: download, withIntermediateDirectories: true)
            let runAs = try Self.unprivileged(owning: [download, fixture.seedData])
            let shoal = try Interop.shoalBinary()
            let seedPort = try LoopbackPorts.free()
            let seedCommand = runAs + [shoal, "seed", fixture.torrent.path, "--data", fixture.seedData.path, "--port", "\(seedPort)"]
            let seed = try BackgroundProcess(
                name: "unprivileged-seed", executable: seedCommand[0], arguments: Array(seedCommand.dropFirst()),
                logDirectory: directory.appendingPathComponent("logs"), lifetime: .seconds(60))
            defer { seed.stop() }
            try await SwarmCommand.waitUntilListening(seed)
            let getCommand = runAs + [shoal] + SwarmCommand.getArguments(
                fixture, into: download, port: try LoopbackPorts.free(), peers: [seedPort])
            let outcome = try await ExternalProcess.run(getCommand[0], Array(getCommand.dropFirst()), timeout: .seconds(20))
            guard outcome.succeeded, outcome.stdoutText.contains("Complete: all") else {
                throw RealClientError("an unprivileged shoal get did not complete: \(outcome.summary)\nseed: \(seed)")
            }
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }

    /// `sub/` is a read-only bind mount (root only): creating `sub/b.bin` fails with EROFS.
    @Test(.enabled(if: DiskErrorTests.canMount, "needs root and the right to mount (skipped: not root, or mount refused)"))
    func readOnlyMountStopsAndKeepsVerifiedPieces() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let (fixture, seedPort, seed, download) = try await SwarmCommand.seededFixture(
                Self.tree, name: "disk", in: directory)
            defer { seed.stop() }
            let sub = fixture.content(in: download).appendingPathComponent("sub", isDirectory: true)
            try FileManager.default.createDirectory(at: sub, withIntermediateDirectories: true)
            try Self.mount(["--bind", sub.path, sub.path])
            var mounted = true
            defer { if mounted { Self.unmount(sub) } }
            try Self.mount(["-o", "remount,bind,ro", sub.path])

            let failed = try await SwarmCommand.get(fixture, into: download, peers: [seedPort], ["--sequential"]).outcome
            try Self.expectStorageFailure(failed, files: [sub.appendingPathComponent("b.bin")], problem: "Read-only file system")

            Self.unmount(sub)
            mounted = false
            let retry = try await SwarmCommand.get(fixture, into: download, peers: [seedPort]).outcome
            try Self.expectResumes(retry, fixture: fixture, download: download, resumeData: .required)
        }
    }

    // MARK: Checks

    /// Exit status 1 by itself (no signal, no hang), after listening; `shoal: error:` on stderr naming
    /// one of `files` (full path, as given with -o) and `problem`, and saying verified pieces are kept.
    static func expectStorageFailure(
        _ outcome: ProcessOutcome, files: [URL], problem: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        if outcome.timedOut {
            throw RealClientError("shoal get did not stop after the storage failure (killed after its timeout): \(outcome.summary)")
        }
        // Plain values in the expectations: an expanded ProcessOutcome prints its stdout byte by byte.
        let summary = outcome.summary
        let (signal, exitCode, stdout) = (outcome.signal, outcome.exitCode, outcome.stdoutText)
        #expect(signal == nil, "\(summary)", sourceLocation: sourceLocation)
        #expect(exitCode == 1, "\(summary)", sourceLocation: sourceLocation)
        #expect(stdout.contains("Listening on port"), "\(summary)", sourceLocation: sourceLocation)
        #expect(!stdout.contains("Complete:"), "\(summary)", sourceLocation: sourceLocation)
        let errors = outcome.stderr.split(separator: "\n").filter { $0.hasPrefix("shoal: error: ") }
        let failure = errors.first { line in files.contains { line.contains($0.path) } }.map(String.init)
        #expect(failure != nil, "no error naming \(files.map(\.path)): \(summary)", sourceLocation: sourceLocation)
        if let failure {
            #expect(failure.contains(problem), "the error does not say \"\(problem)\": \(failure)", sourceLocation: sourceLocation)
            #expect(failure.contains("verified pieces are kept"), "\(failure)", sourceLocation: sourceLocation)
        }
    }

    enum ResumeExpectation {
        /// "Resume data: K pieces trusted" with K > 0.
        case required
        /// Resume data, or pieces found by checking the files.
        case optional
    }

    /// The later run starts with verified pieces (from resume data when `.required`), completes,
    /// and the files equal the source.
    static func expectResumes(
        _ outcome: ProcessOutcome, fixture: RealClientHarness.Fixture, download: URL, resumeData: ResumeExpectation,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let text = outcome.stdoutText
        guard outcome.succeeded, text.contains("Complete: all") else {
            throw RealClientError("the run after the failure did not complete: \(outcome.summary)")
        }
        if resumeData == .required {
            let trusted = SwarmCommand.piecesTrusted(text)
            #expect(
                (trusted ?? 0) > 0, "resume data saved at the failure should be trusted: \(outcome.summary)",
                sourceLocation: sourceLocation)
        }
        let starting = SwarmCommand.startingPieces(text)
        #expect(
            (starting?.verified ?? 0) > 0, "the pieces verified before the failure are lost: \(outcome.summary)",
            sourceLocation: sourceLocation)
        try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
    }

    // MARK: Users and mounts

    /// The command prefix that runs a program as an ordinary user: none for a user; as root, setpriv
    /// to nobody (without any capability), made owner of `paths` (recursively).
    static func unprivileged(owning paths: [URL]) throws -> [String] {
        guard isRoot else { return [] }
        guard let nobody else { throw RealClientError("no nobody user to drop privileges to") }
        for path in paths {
            let chown = SwarmCommand.system(["chown", "-R", "\(nobody.uid):\(nobody.gid)", path.path])
            guard chown.status == 0 else { throw RealClientError("chown \(path.path) failed: \(chown.output)") }
        }
        return ["setpriv", "--reuid=\(nobody.uid)", "--regid=\(nobody.gid)", "--clear-groups"]
    }

    static func mount(_ arguments: [String]) throws {
        let result = SwarmCommand.system(["mount"] + arguments)
        guard result.status == 0 else {
            throw RealClientError("mount \(arguments.joined(separator: " ")) failed: \(result.output)")
        }
    }

    /// Unmounts `point`; lazily if it is still busy, so that the test never leaves a mount behind.
    static func unmount(_ point: URL) {
        if SwarmCommand.system(["umount", point.path]).status != 0 {
            SwarmCommand.system(["umount", "-l", point.path])
        }
    }
}
