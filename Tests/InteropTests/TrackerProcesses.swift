import Foundation
import ShoalProcess

/// `shoal tracker` as a child process, on free ports of one address.
struct ShoalTrackerProcess {
    let process: BackgroundProcess
    let httpURL: String
    let udpURL: String

    /// Starts it on `host` (any free ports) and waits for it to print its URLs.
    static func start(host: String = "127.0.0.1", extra: [String] = [], in directory: URL) async throws -> ShoalTrackerProcess {
        let process = try BackgroundProcess.shoal(
            ["tracker", "--http-port", "0", "--udp-port", "0", "--bind", host, "--interval", "20"] + extra,
            name: "shoal-tracker", logDirectory: directory.appendingPathComponent("logs"), lifetime: .seconds(240))
        let urls = try await poll("shoal tracker to listen", timeout: .seconds(20), context: { "\(process)" }) {
            () -> (String, String)? in
            if !process.isRunning { throw RealClientError("shoal tracker ended at its start\n\(process)") }
            let lines = process.standardOutput.split(separator: "\n")
            guard let http = lines.first(where: { $0.hasPrefix("HTTP tracker: ") }),
                let udp = lines.first(where: { $0.hasPrefix("UDP tracker: ") })
            else { return nil }
            return (String(http.dropFirst("HTTP tracker: ".count)), String(udp.dropFirst("UDP tracker: ".count)))
        }
        return ShoalTrackerProcess(process: process, httpURL: urls.0, udpURL: urls.1)
    }

    func url(_ scheme: String) -> String { scheme == "udp" ? udpURL : httpURL }
}

/// opentracker (Debian's build, which serves only a whitelist) on 127.0.0.1: HTTP and UDP on one port.
struct OpenTrackerProcess {
    let process: BackgroundProcess
    let port: Int

    static var isInstalled: Bool { ExternalProcess.locate("opentracker") != nil }

    /// Serves the info-hashes (hexadecimal) in `allowed`. opentracker chroots into its root directory
    /// as `nobody`: the directory is made world-readable.
    static func start(allowed: [String], port: Int, in directory: URL) async throws -> OpenTrackerProcess {
        guard isInstalled else { throw RealClientError("opentracker is missing: install opentracker (scripts/test does)") }
        let root = directory.appendingPathComponent("opentracker", isDirectory: true)
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: root.path)
        let whitelist = root.appendingPathComponent("whitelist.txt")
        try Data((allowed.joined(separator: "\n") + "\n").utf8).write(to: whitelist)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: whitelist.path)
        let configuration = directory.appendingPathComponent("opentracker.conf")
        try Data("access.whitelist whitelist.txt\ntracker.rootdir \(root.path)\ntracker.user nobody\n".utf8)
            .write(to: configuration)
        let process = try BackgroundProcess(
            name: "opentracker", executable: "opentracker",
            arguments: ["-f", configuration.path, "-i", "127.0.0.1", "-p", "\(port)", "-P", "\(port)", "-A", "127.0.0.1"],
            logDirectory: directory.appendingPathComponent("logs"), lifetime: .seconds(240))
        try await poll("opentracker to answer", timeout: .seconds(15), context: { "\(process)" }) {
            if !process.isRunning { throw RealClientError("opentracker ended at its start\n\(process)") }
            return (try? await LoopbackHTTP.get("http://127.0.0.1:\(port)/scrape", timeout: .seconds(2)))?.status == 200 ? true : nil
        }
        return OpenTrackerProcess(process: process, port: port)
    }

    func url(_ scheme: String) -> String { Self.url(scheme, port: port) }

    static func url(_ scheme: String, port: Int) -> String {
        scheme == "udp" ? "udp://127.0.0.1:\(port)/announce" : "http://127.0.0.1:\(port)/announce"
    }
}
