#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Turns an SVG file into a PNG with an external program found on `PATH`: `rsvg-convert` (librsvg), then
/// ImageMagick's `magick`, then its older `convert`. Each that is present is tried in turn until one writes
/// a file that starts with the PNG signature; each run is killed when it outlives `timeout`.
///
/// No converter, or none that manages, is no error: the report simply has no PNG, and `Outcome` says why.
public struct SVGConverter: Sendable {
    /// One program that can convert, and the arguments it takes.
    public struct Tool: Sendable {
        /// The program's name, looked up in `PATH`, or a path.
        public var name: String
        /// The arguments for converting the file at `svg` into the file at `png`.
        public var arguments: @Sendable (_ svg: String, _ png: String) -> [String]

        public init(name: String, arguments: @escaping @Sendable (_ svg: String, _ png: String) -> [String]) {
            self.name = name
            self.arguments = arguments
        }

        /// librsvg's converter, at twice the SVG's size for a sharp picture.
        public static let rsvgConvert = Tool(name: "rsvg-convert") { svg, png in
            ["--zoom", "2", "--format", "png", "--output", png, svg]
        }
        /// ImageMagick 7, at 192 dots per inch (twice the SVG's size).
        public static let magick = Tool(name: "magick") { svg, png in ["-density", "192", svg, png] }
        /// ImageMagick 6 (the same as `magick`).
        public static let convert = Tool(name: "convert") { svg, png in ["-density", "192", svg, png] }
    }

    /// What `convert(svg:to:)` did.
    public enum Outcome: Sendable, Hashable {
        /// The PNG was written by the named tool.
        case converted(tool: String)
        /// None of the tools is on `PATH`.
        case noConverter
        /// Every tool present failed; one line per tool says how.
        case failed([String])

        /// Whether a PNG was written.
        public var didConvert: Bool {
            if case .converted = self { return true }
            return false
        }
    }

    /// The first bytes of every PNG file.
    public static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The programs to try, in order.
    public var tools: [Tool]
    /// How long one program may run before it is killed.
    public var timeout: Duration

    public init(tools: [Tool] = [.rsvgConvert, .magick, .convert], timeout: Duration = .seconds(30)) {
        self.tools = tools
        self.timeout = timeout
    }

    /// Whether some tool is on `PATH` (which does not promise it can read SVG).
    public var isAvailable: Bool {
        tools.contains { Self.locate($0.name) != nil }
    }

    /// Writes the PNG rendering of the SVG file `svg` to `png`, trying each tool present in turn. A file a
    /// tool left at `png` without the PNG signature is removed.
    public func convert(svg: URL, to png: URL) -> Outcome {
        var failures: [String] = []
        for tool in tools {
            guard let path = Self.locate(tool.name) else { continue }
            try? FileManager.default.removeItem(at: png)
            let problem = run(path, tool.arguments(svg.path, png.path))
            if problem == nil, Self.startsWithPNGSignature(png) { return .converted(tool: tool.name) }
            try? FileManager.default.removeItem(at: png)
            failures.append("\(tool.name): \(problem ?? "wrote no PNG")")
        }
        return failures.isEmpty ? .noConverter : .failed(failures)
    }

    /// Whether the file at `url` starts with the PNG signature.
    public static func startsWithPNGSignature(_ url: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: pngSignature.count)) ?? Data()
        return [UInt8](head) == pngSignature
    }

    /// Runs the program at `path` and waits for it, at most `timeout`; nil when it exited with status 0,
    /// otherwise what went wrong, with the start of its standard error.
    private func run(_ path: String, _ arguments: [String]) -> String? {
        let fileManager = FileManager.default
        let errors = fileManager.temporaryDirectory.appendingPathComponent("shoal-svg-\(UUID().uuidString).stderr")
        guard fileManager.createFile(atPath: errors.path, contents: nil),
            let errorHandle = try? FileHandle(forWritingTo: errors)
        else { return "cannot create a file for its standard error" }
        defer {
            try? errorHandle.close()
            try? fileManager.removeItem(at: errors)
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errorHandle
        do {
            try process.run()
        } catch {
            return "cannot start: \(error)"
        }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var timedOut = false
        while process.isRunning {
            if clock.now >= deadline {
                kill(process.processIdentifier, SIGKILL)
                timedOut = true
                break
            }
            Thread.sleep(forTimeInterval: 0.01)
        }
        process.waitUntilExit()

        if timedOut { return "killed after \(timeout)" }
        if process.terminationReason == .exit, process.terminationStatus == 0 { return nil }
        let ending =
            process.terminationReason == .exit
            ? "exit status \(process.terminationStatus)" : "killed by signal \(process.terminationStatus)"
        let stderr = String(decoding: (try? Data(contentsOf: errors)) ?? Data(), as: UTF8.self)
        let firstLine = stderr.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return firstLine.isEmpty ? ending : "\(ending): \(firstLine.prefix(300))"
    }

    /// The executable's path: `name` itself when it holds a `/`, otherwise the first match in `PATH`.
    static func locate(_ name: String) -> String? {
        let fileManager = FileManager.default
        if name.contains("/") { return fileManager.isExecutableFile(atPath: name) ? name : nil }
        let searchPath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in searchPath.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            var isDirectory: ObjCBool = false
            if fileManager.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
                fileManager.isExecutableFile(atPath: candidate)
            {
                return candidate
            }
        }
        return nil
    }
}
