/// A two-dimensional plot written as SVG text by hand: curves (polylines), series of measured points
/// (a marker each, with a bar from the smallest to the greatest value), ticks with labels, a grid, a legend,
/// a title and notes under the plot. The same plot always gives the same bytes.
struct SVGPlot: Sendable {
    /// A point of a curve or a series; `low` and `high`, when both are set, are the ends of its bar.
    struct Point: Sendable, Hashable {
        var x: Double
        var y: Double
        var low: Double?
        var high: Double?

        init(x: Double, y: Double, low: Double? = nil, high: Double? = nil) {
            self.x = x
            self.y = y
            self.low = low
            self.high = high
        }
    }

    /// A line through points in the order given.
    struct Curve: Sendable, Hashable {
        var label: String
        var colour: String
        var points: [Point]
    }

    /// The shape drawn at each point of a series.
    enum MarkerShape: Sendable, Hashable {
        case circle, square, triangle, diamond
    }

    /// Points drawn as markers, without a line between them.
    struct Series: Sendable, Hashable {
        var label: String
        var colour: String
        var shape: MarkerShape
        var points: [Point]
    }

    /// Where the parts of the plot go, in pixels.
    struct Layout: Sendable, Hashable {
        var x: PlotAxis
        var y: PlotAxis
        var width: Double
        var height: Double
        /// The plot area's left, top, right and bottom edges.
        var left: Double
        var top: Double
        var right: Double
        var bottom: Double
        /// The notes as lines of text, wrapped.
        var noteLines: [String]
    }

    var title: String
    var subtitle: String
    var xLabel: String
    var yLabel: String
    var xScale: AxisScale
    var yScale: AxisScale
    var curves: [Curve]
    var series: [Series]
    /// Lines of text under the plot.
    var notes: [String]
    /// Values the x axis shows even where nothing is drawn.
    var xCovering: [Double] = []

    static let width = 800.0
    static let plotHeight = 420.0
    static let margins = (left: 80.0, top: 66.0, right: 24.0, bottom: 58.0)
    static let noteLineHeight = 16.0
    static let noteLineLength = 110
    /// Room left above the highest marker or bar, as a fraction of its value.
    static let headroom = 0.05
    static let fontFamily = "DejaVu Sans, Helvetica, Arial, sans-serif"

    /// The axes and the plot area for this plot's data.
    func layout() -> Layout {
        let margins = Self.margins
        let left = margins.left
        let top = margins.top
        let right = Self.width - margins.right
        let bottom = top + Self.plotHeight
        let noteLines = notes.flatMap { Self.wrap($0, at: Self.noteLineLength) }
        let height = bottom + margins.bottom + Double(noteLines.count) * Self.noteLineHeight + (noteLines.isEmpty ? 0 : 8)

        let markedPoints = series.flatMap(\.points)
        let xValues = xCovering + curves.flatMap { $0.points.map(\.x) } + markedPoints.map(\.x)
        var yValues = curves.flatMap { $0.points.map(\.y) }
        for point in markedPoints {
            yValues.append(([point.y, point.high ?? point.y].max() ?? point.y) * (1 + Self.headroom))
            yValues.append([point.y, point.low ?? point.y].min() ?? point.y)
        }
        // On a logarithmic axis the lowest curve or marker keeps off the bottom edge too.
        if yScale == .logarithmic, let lowest = yValues.filter({ $0.isFinite && $0 > 0 }).min() {
            yValues.append(lowest / (1 + 2 * Self.headroom))
        }
        return Layout(
            x: PlotAxis(scale: xScale, covering: xValues, from: left, to: right),
            y: PlotAxis(scale: yScale, covering: yValues, from: bottom, to: top),
            width: Self.width, height: height, left: left, top: top, right: right, bottom: bottom,
            noteLines: noteLines)
    }

    /// The plot as a standalone SVG document.
    var svg: String {
        let layout = layout()
        var out = SVGWriter()
        out.line("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        out.line(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(out.number(layout.width))\" "
                + "height=\"\(out.number(layout.height))\" viewBox=\"0 0 \(out.number(layout.width)) "
                + "\(out.number(layout.height))\" font-family=\"\(Self.fontFamily)\">")
        out.line("<title>\(XMLText.escape(title))</title>")
        out.line("<rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"white\"/>")
        out.line(
            "<defs><clipPath id=\"plot-area\"><rect x=\"\(out.number(layout.left))\" y=\"\(out.number(layout.top))\" "
                + "width=\"\(out.number(layout.right - layout.left))\" height=\"\(out.number(layout.bottom - layout.top))\"/>"
                + "</clipPath></defs>")
        drawTitles(&out, layout)
        drawGridAndTicks(&out, layout)
        drawCurves(&out, layout)
        drawSeries(&out, layout)
        drawLegend(&out, layout)
        drawNotes(&out, layout)
        out.line("</svg>")
        return out.text
    }

    private func drawTitles(_ out: inout SVGWriter, _ layout: Layout) {
        let centre = (layout.left + layout.right) / 2
        out.text(title, x: centre, y: 26, size: 17, anchor: "middle", extra: "font-weight=\"bold\"")
        out.text(subtitle, x: centre, y: 46, size: 12, anchor: "middle", extra: "fill=\"#444444\"")
        out.text(xLabel, x: centre, y: layout.bottom + 44, size: 13, anchor: "middle")
        let middle = (layout.top + layout.bottom) / 2
        out.text(
            yLabel, x: 0, y: 0, size: 13, anchor: "middle",
            extra: "transform=\"translate(\(out.number(22)) \(out.number(middle))) rotate(-90)\"")
    }

    /// Grid lines across the plot at the inner ticks of both axes.
    private func drawGridLines(_ out: inout SVGWriter, _ layout: Layout, x xTicks: [Double], y yTicks: [Double], color: String) {
        let (x, y) = (layout.x, layout.y)
        out.line("<g stroke=\"\(color)\" stroke-width=\"1\">")
        for tick in xTicks where tick > x.lower && tick < x.upper {
            out.segment(x.position(of: tick), layout.top, x.position(of: tick), layout.bottom)
        }
        for tick in yTicks where tick > y.lower && tick < y.upper {
            out.segment(layout.left, y.position(of: tick), layout.right, y.position(of: tick))
        }
        out.line("</g>")
    }

    private func drawGridAndTicks(_ out: inout SVGWriter, _ layout: Layout) {
        let (x, y) = (layout.x, layout.y)
        drawGridLines(&out, layout, x: x.minorTicks, y: y.minorTicks, color: "#f0f0f0")
        drawGridLines(&out, layout, x: x.majorTicks, y: y.majorTicks, color: "#d9d9d9")

        out.line("<g stroke=\"black\" stroke-width=\"1\">")
        for tick in x.majorTicks { out.segment(x.position(of: tick), layout.bottom, x.position(of: tick), layout.bottom + 6) }
        for tick in x.minorTicks { out.segment(x.position(of: tick), layout.bottom, x.position(of: tick), layout.bottom + 3) }
        for tick in y.majorTicks { out.segment(layout.left - 6, y.position(of: tick), layout.left, y.position(of: tick)) }
        for tick in y.minorTicks { out.segment(layout.left - 3, y.position(of: tick), layout.left, y.position(of: tick)) }
        out.line("</g>")
        out.line(
            "<rect x=\"\(out.number(layout.left))\" y=\"\(out.number(layout.top))\" "
                + "width=\"\(out.number(layout.right - layout.left))\" height=\"\(out.number(layout.bottom - layout.top))\" "
                + "fill=\"none\" stroke=\"black\" stroke-width=\"1\"/>")

        for tick in x.majorTicks {
            out.text(x.label(for: tick), x: x.position(of: tick), y: layout.bottom + 21, size: 12, anchor: "middle")
        }
        for tick in y.majorTicks {
            out.text(
                y.label(for: tick), x: layout.left - 10, y: y.position(of: tick), size: 12, anchor: "end",
                extra: "dy=\"0.35em\"")
        }
    }

    private func drawCurves(_ out: inout SVGWriter, _ layout: Layout) {
        for curve in curves {
            let points = curve.points.filter { layout.x.canShow($0.x) && layout.y.canShow($0.y) }
            let coordinates = points.map {
                out.number(layout.x.position(of: $0.x)) + "," + out.number(layout.y.position(of: $0.y))
            }
            out.line(
                "<polyline class=\"curve\" clip-path=\"url(#plot-area)\" fill=\"none\" stroke=\"\(curve.colour)\" "
                    + "stroke-width=\"2\" stroke-linejoin=\"round\" points=\"\(coordinates.joined(separator: " "))\"/>")
        }
    }

    private func drawSeries(_ out: inout SVGWriter, _ layout: Layout) {
        for series in series {
            out.line("<g class=\"series\" fill=\"\(series.colour)\" stroke=\"\(series.colour)\">")
            for point in series.points where layout.x.canShow(point.x) && layout.y.canShow(point.y) {
                let x = layout.x.position(of: point.x)
                if let low = point.low, let high = point.high, layout.y.canShow(low), layout.y.canShow(high), low < high {
                    let (top, bottom) = (layout.y.position(of: high), layout.y.position(of: low))
                    out.line(
                        "<path class=\"range\" fill=\"none\" stroke-width=\"1.2\" d=\"M\(out.number(x)),\(out.number(bottom)) "
                            + "V\(out.number(top)) M\(out.number(x - 4)),\(out.number(top)) H\(out.number(x + 4)) "
                            + "M\(out.number(x - 4)),\(out.number(bottom)) H\(out.number(x + 4))\"/>")
                }
                out.marker(series.shape, x: x, y: layout.y.position(of: point.y))
            }
            out.line("</g>")
        }
    }

    private func drawLegend(_ out: inout SVGWriter, _ layout: Layout) {
        let rowHeight = 20.0
        let rows = curves.count + series.count
        guard rows > 0 else { return }
        let labels = curves.map(\.label) + series.map(\.label)
        let longest = labels.map(\.count).max() ?? 0
        let width = 52 + Double(longest) * 6.8
        let height = Double(rows) * rowHeight + 10
        let left = layout.left + 12
        let top = layout.top + 12
        out.line(
            "<g class=\"legend\"><rect x=\"\(out.number(left))\" y=\"\(out.number(top))\" width=\"\(out.number(width))\" "
                + "height=\"\(out.number(height))\" fill=\"white\" fill-opacity=\"0.92\" stroke=\"#999999\" stroke-width=\"0.8\"/>")
        var y = top + 5 + rowHeight / 2
        for curve in curves {
            out.line(
                "<line x1=\"\(out.number(left + 10))\" y1=\"\(out.number(y))\" x2=\"\(out.number(left + 38))\" "
                    + "y2=\"\(out.number(y))\" stroke=\"\(curve.colour)\" stroke-width=\"2\"/>")
            out.text(curve.label, x: left + 46, y: y, size: 12, anchor: "start", extra: "dy=\"0.35em\"")
            y += rowHeight
        }
        for series in series {
            out.line("<g fill=\"\(series.colour)\" stroke=\"\(series.colour)\">")
            out.marker(series.shape, x: left + 24, y: y, role: "legend-marker")
            out.line("</g>")
            out.text(series.label, x: left + 46, y: y, size: 12, anchor: "start", extra: "dy=\"0.35em\"")
            y += rowHeight
        }
        out.line("</g>")
    }

    private func drawNotes(_ out: inout SVGWriter, _ layout: Layout) {
        var y = layout.bottom + Self.margins.bottom + 8
        for line in layout.noteLines {
            out.text(line, x: layout.left, y: y, size: 11, anchor: "start", extra: "fill=\"#555555\"")
            y += Self.noteLineHeight
        }
    }

    /// `text` broken into lines of at most `length` characters at spaces (a longer word gets a line of its
    /// own); line breaks in `text` are kept.
    static func wrap(_ text: String, at length: Int) -> [String] {
        var lines: [String] = []
        for paragraph in text.split(separator: "\n", omittingEmptySubsequences: false) {
            var line = ""
            for word in paragraph.split(separator: " ") {
                if !line.isEmpty, line.count + 1 + word.count > length {
                    lines.append(line)
                    line = ""
                }
                line += (line.isEmpty ? "" : " ") + word
            }
            lines.append(line)
        }
        return lines
    }
}
