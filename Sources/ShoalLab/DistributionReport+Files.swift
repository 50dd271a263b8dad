import Foundation

extension DistributionReport {
    /// The files `write(to:converter:)` wrote, and what became of the PNG.
    public struct WrittenFiles: Sendable, Hashable {
        /// Every file written, in the order CSV, Markdown, SVG, PNG (when there is one).
        public var paths: [URL]
        /// Whether the PNG was made, and if not, why.
        public var png: SVGConverter.Outcome
    }

    /// The names of the files in the output directory.
    public static let csvFileName = "distribution.csv"
    public static let markdownFileName = "distribution.md"
    public static let svgFileName = "distribution.svg"
    public static let pngFileName = "distribution.png"

    /// Writes `distribution.csv`, `distribution.md`, `distribution.svg` and, when `converter` manages,
    /// `distribution.png` into `directory`, which is created if needed. A PNG left there by an earlier run is
    /// removed first, so that it cannot pass for this one's.
    public func write(to directory: URL, converter: SVGConverter = SVGConverter()) throws -> WrittenFiles {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let csvURL = directory.appendingPathComponent(Self.csvFileName)
        let markdownURL = directory.appendingPathComponent(Self.markdownFileName)
        let svgURL = directory.appendingPathComponent(Self.svgFileName)
        let pngURL = directory.appendingPathComponent(Self.pngFileName)
        try Data(csv.utf8).write(to: csvURL, options: .atomic)
        try Data(markdown.utf8).write(to: markdownURL, options: .atomic)
        try Data(svg().utf8).write(to: svgURL, options: .atomic)
        if FileManager.default.fileExists(atPath: pngURL.path) { try FileManager.default.removeItem(at: pngURL) }
        let outcome = converter.convert(svg: svgURL, to: pngURL)
        var paths = [csvURL, markdownURL, svgURL]
        if outcome.didConvert { paths.append(pngURL) }
        return WrittenFiles(paths: paths, png: outcome)
    }
}
