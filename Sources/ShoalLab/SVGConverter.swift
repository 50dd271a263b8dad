import Foundation
import ShoalProcess

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
        tools.contains { ExternalProcess.locate($0.name) != nil }
    }

    /// Writes the PNG rendering of the SVG file `svg` to `png`, trying each tool present in turn. A file a
    /// tool left at `png` without the PNG signature is removed.
    public func convert(svg: URL, to png: URL) -> Outcome {
        var failures: [String] = []
        for tool in tools {
            guard let path = ExternalProcess.locate(tool.name) else { continue }
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

    /// Runs the program at `path`, at most `timeout`, blocking this thread (so that the timeout holds however
    /// busy the concurrency pool is); nil when it exited with status 0, otherwise what went wrong, with the
    /// first line of its standard error.
    private func run(_ path: String, _ arguments: [String]) -> String? {
        let outcome: ProcessOutcome
        do {
            outcome = try ExternalProcess.runBlocking(path, arguments, timeout: timeout)
        } catch {
            return "cannot start: \(error)"
        }
        if outcome.succeeded { return nil }
        if outcome.timedOut { return "killed after \(timeout)" }
        let ending = outcome.signal.map { "killed by signal \($0)" } ?? "exit status \(outcome.exitCode ?? -1)"
        let firstLine = outcome.stderr.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        return firstLine.isEmpty ? ending : "\(ending): \(firstLine.prefix(300))"
    }
}
