import Foundation

/// One axis of a plot: the range of values it shows, the pixels it takes, its ticks, and the mapping from a
/// value to a pixel coordinate (`position(of:)`), which the tests use to check where things are drawn.
struct PlotAxis: Sendable, Hashable {
    var scale: AxisScale
    /// The value at `start`.
    var lower: Double
    /// The value at `end`.
    var upper: Double
    /// The pixel coordinate of `lower` (for a y axis the bottom, so greater than `end`).
    var start: Double
    /// The pixel coordinate of `upper`.
    var end: Double
    /// The values that get a tick, a grid line and a label, in increasing order.
    var majorTicks: [Double]
    /// The values that only get a short tick (the 2…9 multiples between a logarithmic axis's decades).
    var minorTicks: [Double]

    /// The ticks a linear axis aims at; the lecture's figure has eight (0, 5, …, 35).
    static let linearTickTarget = 8.0

    /// An axis showing every finite value of `values` (and, for a linear axis, zero) between `start` and
    /// `end`. Non-positive values cannot be shown on a logarithmic axis and are left out of its range.
    init(scale: AxisScale, covering values: [Double], from start: Double, to end: Double) {
        self.scale = scale
        self.start = start
        self.end = end
        switch scale {
        case .linear:
            let finite = values.filter(\.isFinite)
            let low = min(0, finite.min() ?? 0)
            var high = max(0, finite.max() ?? 1)
            if high <= low { high = low + 1 }
            let step = Self.niceStep(for: (high - low) / Self.linearTickTarget)
            let first = (low / step).rounded(.down)
            let last = (high / step - 1e-9).rounded(.up)
            lower = first * step
            upper = last * step
            majorTicks = stride(from: first, through: last, by: 1).map { $0 * step }
            minorTicks = []
        case .logarithmic:
            let positive = values.filter { $0.isFinite && $0 > 0 }
            let low = Self.niceLogBound(positive.min() ?? 1, rounding: .down)
            var high = Self.niceLogBound(positive.max() ?? 10, rounding: .up)
            if high <= low { high = Self.niceLogBound(low * 1.5, rounding: .up) }
            lower = low
            upper = high
            let firstDecade = (log10(low) - 1e-9).rounded(.down)
            let lastDecade = (log10(high) + 1e-9).rounded(.down)
            let multiples = stride(from: firstDecade, through: lastDecade, by: 1).flatMap { decade in
                (1...9).map { Double($0) * pow(10, decade) }
            }
            let inRange = multiples.filter { $0 >= low * (1 - 1e-9) && $0 <= high * (1 + 1e-9) }
            let decades = inRange.filter { Self.isPowerOfTen($0) }
            // A range within one decade gets its 1, 2, 5 multiples as labelled ticks instead.
            let labelled = decades.count >= 2 ? decades : inRange.filter { Self.isNice($0) }
            majorTicks = labelled
            minorTicks = inRange.filter { !labelled.contains($0) }
        }
    }

    /// `value` rounded down or up to 1, 2 or 5 times a power of ten, the ends of a logarithmic axis.
    static func niceLogBound(_ value: Double, rounding: FloatingPointRoundingRule) -> Double {
        let decade = pow(10, (log10(value) + (rounding == .down ? 1e-9 : -1e-9)).rounded(.down))
        let multiples = [1.0, 2, 5, 10].map { $0 * decade }
        if rounding == .down { return multiples.last { $0 <= value * (1 + 1e-9) } ?? decade }
        return multiples.first { $0 >= value * (1 - 1e-9) } ?? 10 * decade
    }

    private static func isPowerOfTen(_ value: Double) -> Bool {
        let exponent = log10(value)
        return abs(exponent - exponent.rounded()) < 1e-9
    }

    private static func isNice(_ value: Double) -> Bool {
        let leading = value / pow(10, (log10(value) + 1e-9).rounded(.down))
        return [1.0, 2, 5].contains { abs(leading - $0) < 1e-6 }
    }

    /// The smallest of 1, 2, 5 times a power of ten that is at least `rough`.
    static func niceStep(for rough: Double) -> Double {
        guard rough.isFinite, rough > 0 else { return 1 }
        let magnitude = pow(10, log10(rough).rounded(.down))
        for multiple in [1.0, 2, 5, 10] where multiple * magnitude >= rough * (1 - 1e-9) {
            return multiple * magnitude
        }
        return 10 * magnitude
    }

    /// Whether `value` can be drawn on this axis (finite, and positive on a logarithmic axis).
    func canShow(_ value: Double) -> Bool {
        value.isFinite && (scale == .linear || value > 0)
    }

    /// The pixel coordinate of `value`: `start` at `lower`, `end` at `upper`, linear in the value or in its
    /// logarithm; values outside the range map outside `start...end`.
    func position(of value: Double) -> Double {
        let fraction: Double
        switch scale {
        case .linear:
            fraction = (value - lower) / (upper - lower)
        case .logarithmic:
            fraction = (log10(value) - log10(lower)) / (log10(upper) - log10(lower))
        }
        return start + fraction * (end - start)
    }

    /// The label of a major tick: `0`, `0.5`, `35` on a linear axis; `0.1`, `1`, `10000` on a logarithmic one.
    func label(for tick: Double) -> String {
        switch scale {
        case .linear:
            let step = majorTicks.count > 1 ? majorTicks[1] - majorTicks[0] : 1
            let decimals = max(0, Int((-log10(step) + 1e-9).rounded(.up)))
            return ReportFormatting.trimmed(tick, decimals + 1)
        case .logarithmic:
            let decimals = max(0, Int((-log10(tick) + 1e-9).rounded(.up)))
            return ReportFormatting.trimmed(tick, decimals)
        }
    }
}
