import Foundation

extension DistributionReport {
    /// Colours of the bounds and the measured kinds (a colour-blind-safe palette: blue for client-server,
    /// vermilion and orange for P2P).
    static let clientServerColour = "#0072B2"
    static let peerToPeerColour = "#D55E00"
    static let measuredColours: [MeasuredKind: String] = [
        .clientServer: "#003F6B", .peerToPeer: "#8F3A00", .realPeerToPeer: "#E69F00",
    ]
    static let markerShapes: [MeasuredKind: SVGPlot.MarkerShape] = [
        .clientServer: .circle, .peerToPeer: .square, .realPeerToPeer: .triangle,
    ]
    /// Steps across the axis at which each bound curve is computed (besides the measured N).
    static let curveSamples = 400

    /// The lecture's plot with the measurements on it, as SVG: N across, the minimum distribution time in F/u
    /// up; d_cs and d_P2P as curves over the whole axis, each measured kind as markers at its mean with a bar
    /// from its smallest to its greatest time.
    ///
    /// - Parameters:
    ///   - xScale: the N axis; by default logarithmic when the largest N is more than
    ///     `AxisScale.largestLinearRatio` times the smallest, linear (from 0, as in the lecture) otherwise.
    ///   - yScale: the time axis; by default the same as the N axis (the lecture's linear plot, or log-log, where
    ///     d_cs is a straight line of slope 1 and d_P2P levels off at F/u).
    public func svg(xScale: AxisScale? = nil, yScale: AxisScale? = nil) -> String {
        plot(xScale: xScale, yScale: yScale).svg
    }

    /// The plot `svg(xScale:yScale:)` draws.
    func plot(xScale: AxisScale? = nil, yScale: AxisScale? = nil) -> SVGPlot {
        let peers = measurements.map { Double($0.peers) }
        let xScale = xScale ?? AxisScale.automatic(for: peers)
        // The same range SVGPlot's layout will find: the measured N, with room for the outermost markers (on
        // a linear axis, which starts at 0, only on the right).
        var xCovering = peers.map { $0 * (1 + SVGPlot.headroom) }
        if xScale == .logarithmic { xCovering += peers.map { $0 / (1 + SVGPlot.headroom) } }
        let xAxis = PlotAxis(scale: xScale, covering: xCovering, from: 0, to: 1)
        let sampled = sampledSizes(from: xAxis)
        let unit = timeUnit

        let curves = [
            SVGPlot.Curve(
                label: "d_cs, client-server bound", colour: Self.clientServerColour,
                points: sampled.map { SVGPlot.Point(x: $0, y: bounds.clientServer(peerCount: $0) / unit) }),
            SVGPlot.Curve(
                label: "d_P2P, P2P bound", colour: Self.peerToPeerColour,
                points: sampled.map { SVGPlot.Point(x: $0, y: bounds.peerToPeer(peerCount: $0) / unit) }),
        ]
        var series: [SVGPlot.Series] = []
        for kind in measuredKinds {
            var points: [SVGPlot.Point] = []
            for measurement in measurements {
                let times = kind.times(in: measurement).filter(\.isFinite)
                guard let mean = DistributionMeasurement.mean(times), let low = times.min(), let high = times.max()
                else { continue }
                points.append(
                    SVGPlot.Point(
                        x: Double(measurement.peers), y: mean / unit, low: times.count > 1 ? low / unit : nil,
                        high: times.count > 1 ? high / unit : nil))
            }
            let range = showsRange(of: kind) ? " (mean, bar: min–max)" : ""
            series.append(
                SVGPlot.Series(
                    label: "\(kind.name) measured\(range)", colour: Self.measuredColours[kind] ?? "black",
                    shape: Self.markerShapes[kind] ?? .circle, points: points))
        }

        return SVGPlot(
            title: "Minimum distribution time for N peers: client-server vs. P2P",
            subtitle: parameterLine,
            xLabel: "N, number of peers downloading" + (xScale == .logarithmic ? " (logarithmic)" : ""),
            yLabel: "minimum distribution time (" + (timeUnitName == "s" ? "s" : "F/u " + Self.equals(timeUnit)) + ")",
            xScale: xScale, yScale: yScale ?? xScale, curves: curves, series: series,
            notes: notes, xCovering: xCovering)
    }

    /// The values of N at which the bound curves are computed: `curveSamples` steps across the axis (even in
    /// N on a linear axis, in log N on a logarithmic one, where the curves start at N = 1) and every measured N,
    /// so that a measurement equal to its bound lies on a vertex of the curve.
    func sampledSizes(from axis: PlotAxis) -> [Double] {
        let lower = axis.scale == .logarithmic ? max(1, axis.lower) : axis.lower
        let upper = max(lower, axis.upper)
        var sizes = Set(measurements.map { Double($0.peers) }.filter { $0 >= lower && $0 <= upper })
        for index in 0...Self.curveSamples {
            let fraction = Double(index) / Double(Self.curveSamples)
            switch axis.scale {
            case .linear: sizes.insert(lower + (upper - lower) * fraction)
            case .logarithmic: sizes.insert(pow(10, log10(lower) + (log10(upper) - log10(lower)) * fraction))
            }
        }
        return sizes.sorted()
    }

    /// `= 1 h`, or `≈ 1 h` when the duration is rounded (never `= ≈ 1 h`).
    static func equals(_ seconds: Double) -> String {
        let text = ReportFormatting.duration(seconds)
        return text.hasPrefix("≈") ? "≈ " + text.dropFirst() : "= " + text
    }
}
