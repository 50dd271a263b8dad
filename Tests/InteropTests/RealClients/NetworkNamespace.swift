import Foundation
import ShoalProcess

/// Hosts of the test's own: network namespaces joined to the test's host by a bridge, with addresses of
/// the test's own choosing in 198.18.0.0/15 (RFC 2544's benchmarking range, used by no real network).
/// The bridge holds `hostAddress` (the test's host, where its tracker and Shoal seeds listen); each
/// namespace is a host with an address of its own on the same /24, so no forwarding is needed. A program
/// run in one (`command(in:)`) is a separate host: Transmission 3.00 drops 127.0.0.0/8 peers that trackers
/// give it, and it keys peers by address, so two peers on one address confuse it. `remove()` (also run
/// when the object goes away) deletes the links, the bridge and the namespaces.
final class TestNetwork: Sendable {
    /// One namespace: its name and address.
    struct Host: Sendable {
        let namespace: String
        let address: String
        /// The test's host, seen from this one.
        let hostAddress: String

        /// `arguments` run inside this namespace.
        func command(_ arguments: [String]) -> (executable: String, arguments: [String]) {
            ("ip", ["netns", "exec", namespace] + arguments)
        }
    }

    let hostAddress: String
    let hosts: [Host]
    private let bridge: String
    private let links: [String]

    /// Needs root (CAP_NET_ADMIN) and iproute2's `ip`.
    static var isAvailable: Bool { getuid() == 0 && ExternalProcess.locate("ip") != nil }

    /// Makes `count` hosts; throws (after cleaning up) when any step fails.
    init(hosts count: Int) throws {
        let tag = Int.random(in: 1...250)
        let prefix = "198.18.\(tag)"
        bridge = "shoalbr\(tag)"
        hostAddress = "\(prefix).1"
        hosts = (0..<count).map { Host(namespace: "shoal-test-\(tag)-\($0)", address: "\(prefix).\($0 + 2)", hostAddress: "\(prefix).1") }
        links = (0..<count).map { "shoal\(tag)h\($0)" }
        var steps: [[String]] = [
            ["ip", "link", "add", bridge, "type", "bridge"],
            ["ip", "addr", "add", "\(hostAddress)/24", "dev", bridge],
            ["ip", "link", "set", bridge, "up"],
        ]
        for (index, host) in hosts.enumerated() {
            let inside = "shoal\(tag)n\(index)"
            steps += [
                ["ip", "netns", "add", host.namespace],
                ["ip", "link", "add", links[index], "type", "veth", "peer", "name", inside],
                ["ip", "link", "set", inside, "netns", host.namespace],
                ["ip", "link", "set", links[index], "master", bridge],
                ["ip", "link", "set", links[index], "up"],
                ["ip", "netns", "exec", host.namespace, "ip", "addr", "add", "\(host.address)/24", "dev", inside],
                ["ip", "netns", "exec", host.namespace, "ip", "link", "set", inside, "up"],
                ["ip", "netns", "exec", host.namespace, "ip", "link", "set", "lo", "up"],
            ]
        }
        for step in steps {
            let result = SwarmCommand.system(step)
            guard result.status == 0 else {
                remove()
                throw RealClientError("cannot make the test network (\(step.joined(separator: " "))): \(result.output)")
            }
        }
    }

    deinit { remove() }

    /// Deletes the links (both ends go), the bridge and the namespaces. Idempotent.
    func remove() {
        for link in links { SwarmCommand.system(["ip", "link", "del", link]) }
        SwarmCommand.system(["ip", "link", "del", bridge])
        for host in hosts { SwarmCommand.system(["ip", "netns", "del", host.namespace]) }
    }
}
