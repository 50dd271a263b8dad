import Foundation
import Testing

@testable import ShoalLab

@Suite struct SVGConverterTests {
    /// A fresh directory under the temporary one, not yet created (`write` has to).
    static func scratchDirectory() -> URL {
        FileManager.default.temporaryDirectory
            .appendingPathComponent("shoal-lab-report-\(UUID().uuidString)")
            .appendingPathComponent("nested")
    }

    /// Real SVG renderers; ImageMagick's `convert` is left out because a stand-in of that name that reads
    /// only PNG may be what is installed.
    static let renderers = SVGConverter(tools: [.rsvgConvert, .magick])

    @Test(.enabled(if: renderers.isAvailable, "needs rsvg-convert (librsvg2-bin) or ImageMagick's magick on PATH"))
    func writesAllFourFilesWithAPNG() throws {
        let directory = Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory.deletingLastPathComponent()) }
        let written = try DistributionReportFixtures.realistic().write(to: directory, converter: Self.renderers)
        #expect(written.png.didConvert, "\(written.png)")
        #expect(written.paths.map(\.lastPathComponent) == ["distribution.csv", "distribution.md", "distribution.svg", "distribution.png"])
        let png = directory.appendingPathComponent("distribution.png")
        #expect(SVGConverter.startsWithPNGSignature(png))
        let size = try FileManager.default.attributesOfItem(atPath: png.path)[.size] as? Int ?? 0
        #expect(size > 10_000, "a plot of some detail, not an empty picture")
    }

    /// No converter: three files, no PNG, no error; a stale PNG from an earlier run is gone.
    @Test func noConverterMeansNoPNG() throws {
        let directory = Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory.deletingLastPathComponent()) }
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let stale = directory.appendingPathComponent("distribution.png")
        try Data(SVGConverter.pngSignature).write(to: stale)
        let absent = SVGConverter(tools: [SVGConverter.Tool(name: "shoal-no-such-converter") { _, _ in [] }])
        let written = try DistributionReportFixtures.realistic().write(to: directory, converter: absent)
        #expect(written.png == .noConverter)
        #expect(written.paths.count == 3)
        for path in written.paths { #expect(FileManager.default.fileExists(atPath: path.path)) }
        #expect(!FileManager.default.fileExists(atPath: stale.path))
    }

    /// A converter that fails, one that writes something other than a PNG, and one that hangs past its
    /// timeout are each reported, and leave no PNG behind; the next tool is still tried.
    @Test func failingConvertersAreReported() throws {
        let directory = Self.scratchDirectory()
        defer { try? FileManager.default.removeItem(at: directory.deletingLastPathComponent()) }
        let failing = SVGConverter.Tool(name: "false") { _, _ in [] }
        let copying = SVGConverter.Tool(name: "cp") { svg, png in [svg, png] }
        let hanging = SVGConverter.Tool(name: "sleep") { _, _ in ["20"] }
        let converter = SVGConverter(tools: [failing, copying, hanging], timeout: .milliseconds(300))
        let clock = ContinuousClock()
        let start = clock.now
        let written = try DistributionReportFixtures.realistic().write(to: directory, converter: converter)
        #expect(clock.now - start < .seconds(10))
        guard case .failed(let reasons) = written.png else {
            Issue.record("expected failures, got \(written.png)")
            return
        }
        #expect(reasons.count == 3)
        #expect(reasons[0].hasPrefix("false: exit status 1"))
        #expect(reasons[1] == "cp: wrote no PNG")
        #expect(reasons[2].hasPrefix("sleep: killed after"))
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("distribution.png").path))
    }
}
