/// Accumulates SVG elements as text, one per line, with coordinates to two decimals.
struct SVGWriter: Sendable {
    private(set) var text = ""

    /// Radius of a circle marker; the other shapes are sized to look as large.
    static let markerSize = 4.5

    /// A coordinate or length as written in the document: two decimals, trailing zeros removed.
    func number(_ value: Double) -> String {
        ReportFormatting.trimmed(value, 2)
    }

    mutating func line(_ element: String) {
        text += element
        text += "\n"
    }

    /// A straight line, inheriting its stroke from the enclosing group.
    mutating func segment(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double) {
        line("<line x1=\"\(number(x1))\" y1=\"\(number(y1))\" x2=\"\(number(x2))\" y2=\"\(number(y2))\"/>")
    }

    /// A text element; `content` is escaped, `extra` holds further attributes written as is.
    mutating func text(
        _ content: String, x: Double, y: Double, size: Double, anchor: String, extra: String = ""
    ) {
        let attributes = extra.isEmpty ? "" : " " + extra
        line(
            "<text x=\"\(number(x))\" y=\"\(number(y))\" font-size=\"\(number(size))\" "
                + "text-anchor=\"\(anchor)\"\(attributes)>\(XMLText.escape(content))</text>")
    }

    /// A marker centred on (x, y), filled with the enclosing group's colour and outlined in white so that it
    /// stands out on a line of the same colour. `role` is its class: `marker` on the plot, `legend-marker`
    /// in the legend.
    mutating func marker(_ shape: SVGPlot.MarkerShape, x: Double, y: Double, role: String = "marker") {
        let size = Self.markerSize
        let outline = "stroke=\"white\" stroke-width=\"1\""
        switch shape {
        case .circle:
            line("<circle class=\"\(role)\" cx=\"\(number(x))\" cy=\"\(number(y))\" r=\"\(number(size))\" \(outline)/>")
        case .square:
            let half = size * 0.9
            line(
                "<rect class=\"\(role)\" x=\"\(number(x - half))\" y=\"\(number(y - half))\" width=\"\(number(2 * half))\" "
                    + "height=\"\(number(2 * half))\" \(outline)/>")
        case .triangle:
            let r = size * 1.3
            polygon([(x, y - r), (x + r * 0.866, y + r / 2), (x - r * 0.866, y + r / 2)], role: role, outline: outline)
        case .diamond:
            let r = size * 1.3
            polygon([(x, y - r), (x + r, y), (x, y + r), (x - r, y)], role: role, outline: outline)
        }
    }

    private mutating func polygon(_ corners: [(Double, Double)], role: String, outline: String) {
        let points = corners.map { number($0.0) + "," + number($0.1) }.joined(separator: " ")
        line("<polygon class=\"\(role)\" points=\"\(points)\" \(outline)/>")
    }
}
