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

/// The helper that the interop tests stand on: exit codes, signals, output, the timeout.
@Suite struct ExternalProcessTests {
    @Test func capturesOutputAndExitCode() async throws {
        let outcome = try await ExternalProcess.run("sh", ["-c", "printf out; printf err >&2; exit 3"])
        #expect(outcome.exitCode == 3)
        #expect(outcome.signal == nil)
        #expect(!outcome.timedOut)
        #expect(outcome.stdoutText == "out")
        #expect(outcome.stderr == "err")
    }

    @Test func largeOutputDoesNotBlockTheChild() async throws {
        let outcome = try await ExternalProcess.run(
            "sh", ["-c", "head -c 3000000 /dev/zero; head -c 1000000 /dev/zero >&2"], timeout: .seconds(30))
        #expect(outcome.succeeded)
        #expect(outcome.stdout.count == 3_000_000)
        #expect(outcome.stderr.utf8.count == 1_000_000)
    }

    @Test func reportsASignal() async throws {
        let outcome = try await ExternalProcess.run("sh", ["-c", "kill -SEGV $$"])
        #expect(outcome.exitCode == nil)
        #expect(outcome.signal == SIGSEGV)
        #expect(!outcome.succeeded)
    }

    @Test func killsAChildThatRunsOverItsTimeout() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        // The child would sleep ten minutes; being killed is what ends it (the bound is loose on
        // purpose: a loaded CI machine can delay the polling loop by seconds).
        let outcome = try await ExternalProcess.run("sleep", ["600"], timeout: .milliseconds(300))
        #expect(clock.now - start < .seconds(300))
        #expect(outcome.timedOut)
        #expect(outcome.signal == SIGKILL)
        #expect(!outcome.succeeded)
    }

    @Test func aMissingProgramIsAnError() async throws {
        await #expect(throws: ProcessError.self) {
            try await ExternalProcess.run("shoal-no-such-program", [])
        }
    }
}
