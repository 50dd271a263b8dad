import Foundation
import Testing

@testable import ShoalLab

@Suite struct DistributionReportTests {
    typealias Fixtures = DistributionReportFixtures

    /// Every number in the CSV reads back as the value it stands for, to the printed precision; cells of
    /// kinds not measured are empty.
    @Test func csvReadsBackAsTheMeasurements() throws {
        let report = Fixtures.realistic()
        let records = Fixtures.parseCSV(report.csv)
        try #require(records.count == 1 + Fixtures.sizes.count)
        let header = records[0]
        #expect(
            header == [
                "peers", "d_cs bound (s)", "client-server mean (s)", "client-server / d_cs", "client-server min (s)",
                "client-server max (s)", "d_P2P bound (s)", "P2P mean (s)", "P2P / d_P2P", "P2P min (s)", "P2P max (s)",
                "real P2P mean (s)", "real P2P / d_P2P",
            ])
        func column(_ name: String) throws -> Int { try #require(header.firstIndex(of: name)) }

        for (record, measurement) in zip(records.dropFirst(), report.measurements) {
            try #require(record.count == header.count, "row \(record)")
            func value(_ name: String) throws -> Double {
                try #require(Double(record[column(name)]), "\(name) in \(record)")
            }
            #expect(record[0] == String(measurement.peers))
            let cs = measurement.clientServerBound
            let p2p = measurement.peerToPeerBound
            let p2pTimes = measurement.peerToPeer
            let p2pMean = p2pTimes.reduce(0, +) / Double(p2pTimes.count)
            #expect(abs(try value("d_cs bound (s)") - cs) <= 0.0005)
            #expect(abs(try value("client-server mean (s)") - cs * 1.01) <= 0.0005)
            #expect(abs(try value("client-server / d_cs") - 1.01) <= 0.00005)
            #expect(abs(try value("d_P2P bound (s)") - p2p) <= 0.0005)
            #expect(abs(try value("P2P mean (s)") - p2pMean) <= 0.0005)
            #expect(abs(try value("P2P / d_P2P") - p2pMean / p2p) <= 0.00005)
            #expect(abs(try value("P2P min (s)") - (p2pTimes.min() ?? 0)) <= 0.0005)
            #expect(abs(try value("P2P max (s)") - (p2pTimes.max() ?? 0)) <= 0.0005)
            if measurement.realPeerToPeer.isEmpty {
                #expect(record[try column("real P2P mean (s)")] == "")
                #expect(record[try column("real P2P / d_P2P")] == "")
            } else {
                #expect(abs(try value("real P2P / d_P2P") - 1.12) <= 0.00005)
            }
        }
    }

    /// With one run per size there are no min and max columns; the lecture's N = 10 reads d_P2P = F/(2u).
    @Test func csvWithOneRunHasNoRangeColumns() throws {
        let report = Fixtures.onTheBounds(sizes: [1, 10])
        let records = Fixtures.parseCSV(report.csv)
        try #require(records.count == 3)
        #expect(!records[0].contains { $0.hasSuffix("min (s)") || $0.hasSuffix("max (s)") })
        #expect(records[0].count == 9)
        let halfHour = DistributionReportFixtures.lectureBounds.fileSize / DistributionReportFixtures.lectureBounds.peerUpload / 2
        #expect(abs((Double(records[2][4]) ?? 0) - halfHour) <= 0.0005)
        #expect(records[2][6] == "1.0000")
    }

    /// Quoting as RFC 4180 has it, checked against the test's own reader.
    @Test(arguments: ["plain", "a,b", "say \"hi\"", "two\nlines", " padded ", "", "crlf\r\nend"])
    func csvFieldsRoundTrip(text: String) {
        let line = CSVText.record([text, "next"])
        #expect(Fixtures.parseCSV(line) == [[text, "next"]])
        #expect((line.first == "\"") == (text.unicodeScalars.contains { ",\"\n\r".unicodeScalars.contains($0) } || text.hasPrefix(" ")))
    }

    /// A heading, the parameter line, the notes, and a table whose rows all have as many cells as its header.
    @Test func markdownIsATableWithTheParameters() throws {
        let report = Fixtures.realistic(notes: ["run time 12.5 s", "peak memory 310 KiB per simulated peer"])
        let lines = report.markdown.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        #expect(lines.first == "# Distribution time: client-server vs. P2P")
        let parameters = try #require(lines.first { $0.hasPrefix("F = ") })
        #expect(parameters.contains("F = 8 MiB"))
        #expect(parameters.contains("u ≈ 2.276 KiB/s (F/u = 1 h)"))
        #expect(parameters.contains("(10 u)"))
        #expect(parameters.contains("3 runs per N"))
        #expect(lines.contains("- peak memory 310 KiB per simulated peer"))

        let table = lines.filter { $0.hasPrefix("|") }
        try #require(table.count == 2 + Fixtures.sizes.count)
        let cellCounts = table.map { $0.filter { $0 == "|" }.count }
        #expect(Set(cellCounts).count == 1, "cells per line: \(cellCounts)")
        #expect(table[0] == "| N | d_cs | client-server | ÷ d_cs | d_P2P | P2P | ÷ d_P2P | real P2P | ÷ d_P2P |")
        #expect(table[1].allSatisfy { "|-:".contains($0) })
        // N = 10: d_cs = 1 F/u, d_P2P = 0.5 F/u; real P2P was not measured there.
        let ten = try #require(table.first { $0.hasPrefix("| 10 |") })
        #expect(ten.contains("3600.00 s (1.000 F/u)"))
        #expect(ten.contains("1800.00 s (0.500 F/u)"))
        #expect(ten.hasSuffix("| – | – |"))
    }

    /// A kind measured for no size has no columns, and the Markdown says it was not measured.
    @Test func markdownLeavesOutKindsNotMeasured() {
        let bounds = Fixtures.lectureBounds
        let report = DistributionReport(
            measurements: [
                DistributionMeasurement(
                    peers: 4, clientServerBound: bounds.clientServer(peers: 4), peerToPeerBound: bounds.peerToPeer(peers: 4),
                    peerToPeer: [bounds.peerToPeer(peers: 4)])
            ], bounds: bounds, runsPerSize: 1)
        #expect(report.markdown.contains("| N | d_cs | d_P2P | P2P | ÷ d_P2P |"))
        #expect(report.markdown.contains("Not measured: client-server, real P2P."))
    }

    /// Exact values print exactly, others carry `≈`.
    @Test func parametersInHumanUnits() {
        #expect(ReportFormatting.bytes(8 * 1024 * 1024) == "8 MiB")
        #expect(ReportFormatting.bytes(1536) == "1.5 KiB")
        #expect(ReportFormatting.rate(8 * 1024 * 1024 / 3600) == "≈2.276 KiB/s")
        #expect(ReportFormatting.duration(3600) == "1 h")
        #expect(ReportFormatting.duration(360) == "6 min")
        #expect(ReportFormatting.duration(1.25) == "1.25 s")
        #expect(ReportFormatting.fixed(-0.0001, 2) == "0.00")
    }

    /// Notes go into the SVG escaped: it stays well-formed XML and the text reads back unchanged.
    @Test func svgIsWellFormedWithNotesEscaped() throws {
        let awkward = "run <1> & \"two\" 'three' > done"
        let report = Fixtures.realistic(notes: [awkward, "bell\u{7}here"])
        let reading = SVGReading(report.svg())
        #expect(reading.wellFormed, "\(reading.problem ?? "")")
        #expect(reading.elements.first?.name == "svg")
        #expect(reading.texts.contains(awkward))
        #expect(reading.texts.contains("bell here"))
        #expect(reading.texts.contains("Minimum distribution time for N peers: client-server vs. P2P"))
        #expect(reading.texts.contains("minimum distribution time (F/u = 1 h)"))
        #expect(XMLText.escape("<a href='x'>&</a>") == "&lt;a href=&apos;x&apos;&gt;&amp;&lt;/a&gt;")
    }

    @Test func timeAxisSaysApproximatelyOnceWhenTheUnitIsRounded() {
        #expect(DistributionReport.equals(3600) == "= 1 h")
        #expect(DistributionReport.equals(3600.4) == "≈ 1 h")
        #expect(!DistributionReport.equals(3600.4).contains("= ≈"))
    }

    /// Measurements equal to their bound are drawn on a vertex of the bound's curve, on a linear and on a
    /// logarithmic axis, and where the axes' mapping puts them.
    @Test(arguments: [[1, 2, 5, 10, 20, 30], [1, 10, 100, 1000, 10_000]])
    func measurementsOnTheBoundLieOnTheCurve(sizes: [Int]) throws {
        let report = Fixtures.onTheBounds(sizes: sizes)
        let plot = report.plot()
        let layout = plot.layout()
        let reading = SVGReading(plot.svg)
        try #require(reading.wellFormed)
        let curves = reading.polylines
        try #require(curves.count == 2)
        let circles = reading.markerCentres("circle")
        let squares = reading.markerCentres("rect")
        let triangles = reading.markerCentres("polygon")
        try #require(circles.count == sizes.count && squares.count == sizes.count && triangles.count == sizes.count)

        func isVertex(_ point: (x: Double, y: Double), of curve: [(x: Double, y: Double)]) -> Bool {
            curve.contains { abs($0.x - point.x) <= 0.02 && abs($0.y - point.y) <= 0.02 }
        }
        for (index, n) in sizes.enumerated() {
            let expectedX = layout.x.position(of: Double(n))
            let csY = layout.y.position(of: report.bounds.clientServer(peers: n) / report.timeUnit)
            let p2pY = layout.y.position(of: report.bounds.peerToPeer(peers: n) / report.timeUnit)
            #expect(abs(circles[index].x - expectedX) <= 0.01 && abs(circles[index].y - csY) <= 0.01)
            // Booleans first, so that a failure prints the point, not the whole curve.
            let clientServerOnCurve = isVertex(circles[index], of: curves[0])
            let peerToPeerOnCurve = isVertex(squares[index], of: curves[1])
            let realOnCurve = isVertex(triangles[index], of: curves[1])
            let peerToPeerOnWrongCurve = isVertex(squares[index], of: curves[0]) && csY != p2pY
            #expect(clientServerOnCurve, "client-server at N = \(n): \(circles[index])")
            #expect(peerToPeerOnCurve, "P2P at N = \(n): \(squares[index])")
            #expect(realOnCurve, "real P2P at N = \(n): \(triangles[index])")
            #expect(!peerToPeerOnWrongCurve, "P2P must not sit on d_cs at N = \(n)")
        }
        // The curves are drawn densely, not only at the measured sizes.
        let vertexCount = curves[1].count
        #expect(vertexCount > 5 * sizes.count)
    }

    /// The lecture's axes: N from 0 to 35 in steps of 5, time from 0 to 3.5 F/u in steps of 0.5.
    @Test func linearAxesAsInTheLecture() {
        let layout = Fixtures.onTheBounds(sizes: Fixtures.sizes).plot().layout()
        #expect(layout.x.scale == .linear && layout.y.scale == .linear)
        #expect(layout.x.majorTicks == [0, 5, 10, 15, 20, 25, 30, 35])
        #expect(layout.y.majorTicks.first == 0 && layout.y.majorTicks.last == 3.5 && layout.y.majorTicks.count == 8)
        #expect(layout.x.position(of: 0) == layout.left && layout.x.position(of: 35) == layout.right)
        #expect(layout.y.position(of: 0) == layout.bottom && layout.y.position(of: 3.5) == layout.top)
        #expect(layout.y.label(for: 0.5) == "0.5" && layout.x.label(for: 35) == "35")
    }

    /// Logarithmic axes put each decade at an equal step.
    @Test func logarithmicAxisMapsDecadesEvenly() {
        let axis = PlotAxis(scale: .logarithmic, covering: [1, 10_000], from: 100, to: 500)
        #expect(axis.majorTicks == [1, 10, 100, 1000, 10_000])
        #expect(axis.minorTicks.count == 4 * 8)
        #expect(abs(axis.position(of: 100) - 300) < 1e-9)
        #expect(abs(axis.position(of: 10) - 200) < 1e-9)
        #expect(axis.label(for: 10_000) == "10000")
        // Ends at 1, 2 or 5 times a power of ten; a range within one decade labels its 1, 2, 5 multiples.
        let small = PlotAxis(scale: .logarithmic, covering: [0.1, 3], from: 0, to: 1)
        #expect(small.lower == 0.1 && small.upper == 5 && small.majorTicks == [0.1, 1])
        #expect(small.label(for: 0.1) == "0.1")
        let narrow = PlotAxis(scale: .logarithmic, covering: [2.5, 40], from: 0, to: 1)
        #expect(narrow.lower == 2 && narrow.upper == 50)
        #expect(narrow.majorTicks.map { narrow.label(for: $0) } == ["2", "5", "10", "20", "50"])
    }

    /// The N axis turns logarithmic when the largest N is more than 50 times the smallest.
    @Test func logAxisChosenWhenNSpansDecades() {
        #expect(Fixtures.realistic().plot().xScale == .linear)
        let wide = Fixtures.realistic(sizes: [1, 10, 100, 1000, 10_000]).plot()
        #expect(wide.xScale == .logarithmic && wide.yScale == .logarithmic)
        #expect(Fixtures.onTheBounds(sizes: [2, 100]).plot().xScale == .linear)
        #expect(Fixtures.onTheBounds(sizes: [2, 101]).plot().xScale == .logarithmic)
        #expect(Fixtures.onTheBounds(sizes: [2, 101]).plot(xScale: .linear).xScale == .linear)
    }

    /// The same report gives the same bytes.
    @Test func outputIsDeterministic() {
        let first = Fixtures.realistic()
        let second = Fixtures.realistic()
        #expect(first.svg() == second.svg())
        #expect(first.csv == second.csv)
        #expect(first.markdown == second.markdown)
    }
}
