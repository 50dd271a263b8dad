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
            var lowDecade = (log10(positive.min() ?? 1) + 1e-9).rounded(.down)
            var highDecade = (log10(positive.max() ?? 10) - 1e-9).rounded(.up)
            if highDecade <= lowDecade { highDecade = lowDecade + 1 }
            lowDecade = min(lowDecade, highDecade - 1)
            lower = pow(10, lowDecade)
            upper = pow(10, highDecade)
            majorTicks = stride(from: lowDecade, through: highDecade, by: 1).map { pow(10, $0) }
            minorTicks = stride(from: lowDecade, to: highDecade, by: 1).flatMap { decade in
                (2...9).map { Double($0) * pow(10, decade) }
            }
        }
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
