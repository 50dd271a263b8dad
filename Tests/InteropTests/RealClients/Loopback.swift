#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import ShoalProcess
import Synchronization

/// A peer's address on loopback: `127.0.0.1:PORT` or `[::1]:PORT`.
struct PeerAddress: Sendable, Hashable, CustomStringConvertible {
    var host: String
    var port: Int

    static func loopback(_ port: Int) -> PeerAddress { PeerAddress(host: "127.0.0.1", port: port) }
    static func loopbackIPv6(_ port: Int) -> PeerAddress { PeerAddress(host: "::1", port: port) }

    /// `HOST:PORT`, with brackets around an IPv6 host (what `shoal --peer`, libtorrent and qBittorrent read).
    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// HTTP on loopback through `curl` (Web UIs and JSON-RPC of the clients): one short process per
/// request, bounded in time, no cookies, no proxy.
enum LoopbackHTTP {
    struct Response: Sendable {
        var status: Int
        var body: Data

        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// A `multipart/form-data` field: text, or a file to upload.
    enum FormField: Sendable {
        case text(String, String)
        case file(String, URL)
    }

    /// GET `url`.
    static func get(_ url: String, timeout: Duration = .seconds(10)) async throws -> Response {
        try await curl([url], timeout: timeout)
    }

    /// POST `body` (sent as is) to `url` with extra headers.
    static func post(
        _ url: String, body: String, contentType: String = "application/json", headers: [String: String] = [:],
        timeout: Duration = .seconds(10)
    ) async throws -> Response {
        var arguments = ["-H", "Content-Type: \(contentType)", "--data-binary", body]
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) { arguments += ["-H", "\(name): \(value)"] }
        return try await curl(arguments + [url], timeout: timeout)
    }

    /// POST an `application/x-www-form-urlencoded` form to `url`.
    static func post(_ url: String, form: [(String, String)], timeout: Duration = .seconds(10)) async throws -> Response {
        var arguments: [String] = []
        for (name, value) in form { arguments += ["--data-urlencode", "\(name)=\(value)"] }
        return try await curl(arguments + [url], timeout: timeout)
    }

    /// POST a `multipart/form-data` form to `url`.
    static func post(_ url: String, multipart: [FormField], timeout: Duration = .seconds(10)) async throws -> Response {
        var arguments: [String] = []
        for field in multipart {
            switch field {
            case .text(let name, let value): arguments += ["--form-string", "\(name)=\(value)"]
            case .file(let name, let file): arguments += ["-F", "\(name)=@\(file.path)"]
            }
        }
        return try await curl(arguments + [url], timeout: timeout)
    }

    /// Runs curl; the response's status is the last line that `--write-out` adds.
    private static func curl(_ arguments: [String], timeout: Duration) async throws -> Response {
        let seconds = max(1, Int(timeout.components.seconds))
        let outcome = try await ExternalProcess.run(
            "curl",
            ["--silent", "--show-error", "--noproxy", "*", "--max-time", "\(seconds)", "--write-out", "\n%{http_code}"]
                + arguments,
            timeout: timeout + .seconds(5))
        guard outcome.succeeded else {
            throw RealClientError("HTTP request failed: \(outcome.summary)")
        }
        var output = outcome.stdout
        guard let newline = output.lastIndex(of: UInt8(ascii: "\n")),
            let status = Int(String(decoding: output[(newline + 1)...], as: UTF8.self))
        else { throw RealClientError("curl printed no HTTP status: \(outcome.summary)") }
        output.removeSubrange(newline...)
        return Response(status: status, body: Data(output))
    }
}

/// Polls `probe` every `interval` until it returns a value, at most `timeout`; then throws with
/// `what` and the last `context()` (the clients' logs and status) for the failure message.
@discardableResult
func poll<Value: Sendable>(
    _ what: String, timeout: Duration, interval: Duration = .milliseconds(200),
    context: () async -> String = { "" },
    _ probe: () async throws -> Value?
) async throws -> Value {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while true {
        try Task.checkCancellation()
        if let value = try await probe() { return value }
        if clock.now >= deadline {
            throw RealClientError("timed out after \(timeout) waiting for \(what)\n\(await context())")
        }
        try await Task.sleep(for: interval)
    }
}
