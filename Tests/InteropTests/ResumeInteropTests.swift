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

/// `shoal get` stopped and started again: Ctrl-C, kill -9, `--check`, `--skip` and `--max-download`,
/// through the real binary against a `shoal seed` on loopback, every byte compared with the source.
///
/// The fixture is `RealClientHarness.tree` (3.16 MiB in 6 files, 32 KiB pieces).
@Suite struct ResumeInteropTests {
    static let pieceLength: Int64 = 32_768

    /// What a restart may download beyond the pieces it did not have: the pieces that were half
    /// received when it stopped are fetched again whole, and the totals are printed to 2 decimals.
    static let slack: Int64 = 8 * pieceLength

    /// Ctrl-C part way: exit status 130, "Stopped: X of Y pieces verified; resume data saved" and a
    /// resume file. The restart trusts exactly those X pieces without reading them, fetches only the
    /// rest, and ends with the source's bytes.
    @Test func ctrlCSavesResumeDataAndARestartFetchesOnlyTheRest() async throws {
        try await Interop.withTemporaryDirectory { directory in
            // 512 KiB/s: the 3.16 MiB take about 6 s, time to stop the download part way on a loaded machine.
            let (fixture, seedPort, seed, download) = try await SwarmCommand.seededFixture(
                maxUpload: "512k", in: directory)
            defer { seed.stop() }
            let get = try SwarmCommand.startGet(fixture, into: download, peers: [seedPort], in: directory)
            defer { get.stop() }
            try await SwarmCommand.waitForProgress(get, above: 0)
            try SwarmCommand.send(SIGINT, to: get)
            let status = try await SwarmCommand.exitStatus(of: get)
            let output = get.standardOutput
            #expect(status == 130, "Ctrl-C before completion must exit 130\n\(get)")
            #expect(!output.contains("Complete:"), "\(get)")
            let stopped = try #require(SwarmCommand.stoppedPieces(output), "no \"Stopped:\" line\n\(get)")
            #expect(stopped.verified > 0 && stopped.verified < stopped.count, "\(get)")
            #expect(output.contains("; resume data saved"), "\(get)")
            let resumeFiles = SwarmCommand.resumeFiles(in: download)
            #expect(resumeFiles.count == 1, "resume files in \(download.path): \(resumeFiles)")

            let (again, _) = try await SwarmCommand.get(fixture, into: download, peers: [seedPort])
            let text = again.stdoutText
            guard again.succeeded, text.contains("Complete: all") else {
                throw RealClientError("the restarted shoal get failed: \(again.summary)\nseed: \(seed)")
            }
            let trusted = try #require(SwarmCommand.piecesTrusted(text), "no \"Resume data:\" line: \(again.summary)")
            #expect(trusted > 0, "\(again.summary)")
            #expect(trusted == stopped.verified, "every piece verified when stopped is trusted: \(again.summary)")
            #expect(!text.contains("changed since it was saved"), "nothing changed the files: \(again.summary)")
            #expect(SwarmCommand.startingPieces(text)?.verified == trusted, "\(again.summary)")
            let totals = try #require(SwarmCommand.transferTotals(text), "no \"Downloaded\" line: \(again.summary)")
            let total = Int64(fixture.totalSize)
            #expect(totals.downloaded < total, "fetched the whole torrent again: \(again.summary)")
            #expect(
                totals.downloaded <= total - Int64(trusted) * Self.pieceLength + Self.slack,
                "fetched more than the \(stopped.count - trusted) missing pieces: \(again.summary)")
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }

    /// Ctrl-C before anything was received (the only peer never answers): exit status 130 and no
    /// error; "resume data saved" only when a resume file was written.
    @Test()
    func ctrlCBeforeAnyDataStopsCleanly() async throws {
        try await Interop.withTemporaryDirectory { directory in
            // No empty file: those are created at the start, and with them the download directory.
            let tree = FileTree([("one.bin", 300_000), ("two/three.bin", 200_000)])
            let fixture = try await RealClientHarness.makeFixture(tree, in: directory)
            let download = directory.appendingPathComponent("download", isDirectory: true)
            let silentPeer = try LoopbackPorts.free()
            let get = try SwarmCommand.startGet(fixture, into: download, peers: [silentPeer], in: directory)
            defer { get.stop() }
            try await SwarmCommand.waitUntilListening(get)
            try SwarmCommand.send(SIGINT, to: get)
            let status = try await SwarmCommand.exitStatus(of: get)
            #expect(status == 130, "\(get)")
            let stderr = get.standardError
            #expect(stderr.isEmpty, "\(get)")
            let stopped = SwarmCommand.stoppedPieces(get.standardOutput)
            #expect(stopped?.verified == 0, "\(get)")
            if get.standardOutput.contains("resume data saved") {
                let resumeFiles = SwarmCommand.resumeFiles(in: download)
                #expect(resumeFiles.count == 1, "says \"resume data saved\" but there is no resume file\n\(get)")
            }
        }
    }

    /// kill -9 part way (no resume data saved since: it is saved every 30 s): the restart finds the
    /// pieces written before the kill by checking the files, completes byte for byte, and downloads
    /// only what it did not find.
    @Test func killNineThenRestartKeepsWhatWasWritten() async throws {
        try await Interop.withTemporaryDirectory { directory in
            // 512 KiB/s: about 6 s for the 3.16 MiB, so that a loaded machine still kills it part way (at 1 MiB/s
            // a CI run once saw the download complete between the progress line and the kill).
            let (fixture, seedPort, seed, download) = try await SwarmCommand.seededFixture(
                maxUpload: "512k", in: directory)
            defer { seed.stop() }
            let get = try SwarmCommand.startGet(fixture, into: download, peers: [seedPort], in: directory)
            defer { get.stop() }
            let percent = try await SwarmCommand.waitForProgress(get, above: 0)
            // SIGKILL to the group: shoal and its `timeout` wrapper, no chance to save anything.
            kill(-get.pid, SIGKILL)
            kill(get.pid, SIGKILL)
            #expect(await get.waitForExit(timeout: .seconds(10)), "\(get)")
            get.stop()
            #expect(!get.standardOutput.contains("Stopped:"), "\(get)")

            let (again, _) = try await SwarmCommand.get(fixture, into: download, peers: [seedPort])
            let text = again.stdoutText
            guard again.succeeded, text.contains("Complete: all") else {
                throw RealClientError("the restarted shoal get failed: \(again.summary)\nseed: \(seed)")
            }
            let starting = try #require(SwarmCommand.startingPieces(text), "no \"Listening\" line: \(again.summary)")
            #expect(
                starting.verified > 0,
                "the \(percent)% verified before the kill were not found again: \(again.summary)")
            let totals = try #require(SwarmCommand.transferTotals(text), "no \"Downloaded\" line: \(again.summary)")
            let total = Int64(fixture.totalSize)
            #expect(totals.downloaded < total, "fetched the whole torrent again: \(again.summary)")
            #expect(
                totals.downloaded <= total - Int64(starting.verified) * Self.pieceLength + Self.slack,
                "fetched more than the missing pieces: \(again.summary)")
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }

    /// A byte changed behind Shoal's back with the modification time put back: resume data still
    /// trusts the file (documented: only size and time are compared), so a plain restart says
    /// complete without reading; `--check` hashes everything, finds the one bad piece, fetches it
    /// again and ends with the source's bytes.
    @Test func checkFindsACorruptionThatResumeDataCannotSee() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let (fixture, seedPort, seed, download) = try await SwarmCommand.seededFixture(in: directory)
            defer { seed.stop() }
            let (first, _) = try await SwarmCommand.get(fixture, into: download, peers: [seedPort])
            guard first.succeeded, first.stdoutText.contains("Complete: all") else {
                throw RealClientError("shoal get failed: \(first.summary)")
            }
            let pieceCount = try #require(SwarmCommand.startingPieces(first.stdoutText)?.count)

            // Flip one byte in the middle of the big file; put its modification time back.
            let big = fixture.content(in: download).appendingPathComponent("a/b/big.bin")
            try Self.flipByte(at: 1_234_567, of: big, keepingModificationTime: true)
            #expect(try FileDifference.compare(fixture.content(in: fixture.seedData).appendingPathComponent("a/b/big.bin"), big) != nil)

            let (plain, _) = try await SwarmCommand.get(fixture, into: download, peers: [seedPort])
            #expect(plain.succeeded, "\(plain.summary)")
            #expect(SwarmCommand.piecesTrusted(plain.stdoutText) == pieceCount, "\(plain.summary)")
            #expect(plain.stdoutText.contains("Complete: nothing to download"), "\(plain.summary)")
            #expect(SwarmCommand.transferTotals(plain.stdoutText)?.downloaded == 0, "\(plain.summary)")

            let (checked, _) = try await SwarmCommand.get(fixture, into: download, peers: [seedPort], ["--check"])
            let text = checked.stdoutText
            guard checked.succeeded, text.contains("Complete: all") else {
                throw RealClientError("shoal get --check failed: \(checked.summary)\nseed: \(seed)")
            }
            #expect(!text.contains("Resume data:"), "--check must not use resume data: \(checked.summary)")
            #expect(
                SwarmCommand.startingPieces(text)?.verified == pieceCount - 1,
                "--check must find exactly the one bad piece: \(checked.summary)")
            let totals = try #require(SwarmCommand.transferTotals(text), "no \"Downloaded\" line: \(checked.summary)")
            #expect(totals.downloaded >= Self.pieceLength && totals.downloaded <= 2 * Self.pieceLength, "\(checked.summary)")
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }

    /// `--skip` of the big file (2.5 MB over 77 pieces, the first file: only its last piece is shared,
    /// with the next file): every other file is complete and equal to the source, the skipped one is
    /// not (at most the boundary bytes are there), and little more than the wanted files was downloaded.
    @Test func skipLeavesOneFileOut() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let fixture = try await RealClientHarness.makeFixture(in: directory)
            let files = try await SwarmCommand.files(of: fixture)
            let skipped = try #require(
                files.firstIndex { $0.path.hasSuffix("/a/b/big.bin") }, "no big.bin in \(files)")
            let skippedLength = files[skipped].length
            let seedPort = try LoopbackPorts.free()
            let seed = try await SwarmCommand.seed(fixture, port: seedPort, in: directory)
            defer { seed.stop() }
            let download = directory.appendingPathComponent("download", isDirectory: true)
            let (outcome, _) = try await SwarmCommand.get(
                fixture, into: download, peers: [seedPort], ["--skip", "\(skipped)"])
            guard outcome.succeeded else { throw RealClientError("shoal get --skip failed: \(outcome.summary)") }
            #expect(outcome.stdoutText.contains("Complete: all wanted pieces verified"), "\(outcome.summary)")

            let source = fixture.content(in: fixture.seedData)
            let content = fixture.content(in: download)
            for (index, file) in files.enumerated() where index != skipped {
                let relative = file.path.split(separator: "/").dropFirst().joined(separator: "/")
                let downloaded = content.appendingPathComponent(relative)
                guard FileManager.default.fileExists(atPath: downloaded.path) else {
                    Issue.record("\(relative) (file \(index)) was not downloaded: \(outcome.summary)")
                    continue
                }
                let difference = try FileDifference.compare(source.appendingPathComponent(relative), downloaded)
                #expect(difference == nil, "\(relative): \(difference ?? "")")
            }
            let big = content.appendingPathComponent("a/b/big.bin")
            if FileManager.default.fileExists(atPath: big.path) {
                let difference = try FileDifference.compare(source.appendingPathComponent("a/b/big.bin"), big)
                #expect(difference != nil, "the skipped file was downloaded whole")
            }
            let totals = try #require(SwarmCommand.transferTotals(outcome.stdoutText), "\(outcome.summary)")
            #expect(
                totals.downloaded <= Int64(fixture.totalSize) - skippedLength + 2 * Self.pieceLength,
                "more than the wanted files (and the 2 pieces they share with the skipped one): \(outcome.summary)")
        }
    }

    /// `--max-download 1M` of 3.16 MiB from an unlimited seed on loopback (which takes well under a
    /// second without the limit) takes at least 1.8 s: (3.16 MiB - 1 s of burst) / 1 MiB/s, with a
    /// margin. No upper bound: a slow machine only makes it slower.
    @Test func maxDownloadLimitsTheRate() async throws {
        try await Interop.withTemporaryDirectory { directory in
            let (fixture, seedPort, seed, download) = try await SwarmCommand.seededFixture(in: directory)
            defer { seed.stop() }
            let (outcome, seconds) = try await SwarmCommand.get(
                fixture, into: download, peers: [seedPort], ["--max-download", "1M"])
            guard outcome.succeeded, outcome.stdoutText.contains("Complete: all") else {
                throw RealClientError("shoal get --max-download failed: \(outcome.summary)")
            }
            #expect(fixture.totalSize > 3 << 20)
            #expect(seconds >= 1.8, "3.16 MiB at 1 MiB/s took only \(seconds) s: \(outcome.summary)")
            try assertSameFiles(source: fixture.content(in: fixture.seedData), downloaded: fixture.content(in: download))
        }
    }

    /// Inverts the byte at `offset` of `file`; with `keepingModificationTime`, puts the file's
    /// modification time (to the nanosecond) back as it was.
    static func flipByte(at offset: UInt64, of file: URL, keepingModificationTime: Bool) throws {
        var before = stat()
        guard stat(file.path, &before) == 0 else { throw RealClientError("stat \(file.path): errno \(errno)") }
        let handle = try FileHandle(forUpdating: file)
        try handle.seek(toOffset: offset)
        let byte = try handle.read(upToCount: 1) ?? Data()
        guard byte.count == 1 else { throw RealClientError("\(file.path) is shorter than \(offset + 1) bytes") }
        try handle.seek(toOffset: offset)
        try handle.write(contentsOf: Data([~byte[byte.startIndex]]))
        try handle.synchronize()
        try handle.close()
        guard keepingModificationTime else { return }
        #if canImport(Darwin)
        var times = [before.st_atimespec, before.st_mtimespec]
        #else
        var times = [before.st_atim, before.st_mtim]
        #endif
        guard utimensat(AT_FDCWD, file.path, &times, 0) == 0 else {
            throw RealClientError("utimensat \(file.path): errno \(errno)")
        }
        var after = stat()
        guard stat(file.path, &after) == 0 else { throw RealClientError("stat \(file.path): errno \(errno)") }
        #if !canImport(Darwin)
        guard after.st_mtim.tv_sec == before.st_mtim.tv_sec, after.st_mtim.tv_nsec == before.st_mtim.tv_nsec,
            after.st_size == before.st_size
        else { throw RealClientError("could not put back the modification time of \(file.path)") }
        #endif
    }
}
