#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Foundation
import ShoalProcess

/// A network namespace of the test's own (`ip netns`) with no link to the host, for what must not touch the
/// host's network: multicast (local service discovery). Its loopback interface is up and carries multicast,
/// with an IPv4 and an IPv6 address of its own so that multicast has a source address. ``remove()`` deletes
/// it. (`TestNetwork` joins namespaces to the host by a bridge: multicast there would reach the host's side.)
struct MulticastNamespace: Sendable {
    let name: String

    /// Whether namespaces can be made here: root and the `ip` tool.
    static var isAvailable: Bool {
        geteuid() == 0 && ExternalProcess.locate("ip") != nil
    }

    /// The address processes inside have (IPv4), for peers to dial.
    static let ipv4Address = "10.200.0.1"

    static func make() async throws -> MulticastNamespace {
        let namespace = MulticastNamespace(name: "shoal-test-\(UInt32.random(in: 0...UInt32.max))")
        try await namespace.ip(["netns", "add", namespace.name])
        do {
            for arguments in [
                ["link", "set", "lo", "up"], ["link", "set", "lo", "multicast", "on"],
                ["addr", "add", "\(ipv4Address)/32", "dev", "lo"],
                ["-6", "addr", "add", "fd53:686f:616c::1/128", "dev", "lo"],
                ["route", "add", "224.0.0.0/4", "dev", "lo", "src", ipv4Address],
                ["-6", "route", "add", "ff00::/8", "dev", "lo", "table", "local"],
            ] {
                try await namespace.ip(["-n", namespace.name] + arguments)
            }
        } catch {
            await namespace.remove()
            throw error
        }
        return namespace
    }

    private func ip(_ arguments: [String]) async throws {
        let outcome = try await ExternalProcess.run("ip", arguments, timeout: .seconds(10))
        guard outcome.succeeded else { throw ProcessError("ip \(arguments.joined(separator: " ")): \(outcome.summary)") }
    }

    /// Deletes the namespace (its processes must be stopped first).
    func remove() async {
        _ = try? await ExternalProcess.run("ip", ["netns", "del", name], timeout: .seconds(10))
    }

    /// `shoal ARGUMENTS` inside the namespace, in the background.
    func shoal(_ arguments: [String], name processName: String, logDirectory: URL, lifetime: Duration = .seconds(120))
        throws -> BackgroundProcess
    {
        try BackgroundProcess(
            name: processName, executable: "ip", arguments: ["netns", "exec", name, try Interop.shoalBinary()] + arguments,
            logDirectory: logDirectory, lifetime: lifetime)
    }
}
