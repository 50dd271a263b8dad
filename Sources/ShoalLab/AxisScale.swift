/// How a plot's axis spaces its values.
public enum AxisScale: Sendable, Hashable {
    /// Equal differences take equal lengths; the axis starts at zero, as in the lecture's figure.
    case linear
    /// Equal ratios take equal lengths; the axis runs from one power of ten to another.
    case logarithmic

    /// The largest ratio of the greatest to the smallest value that `automatic(for:)` still shows linearly.
    public static let largestLinearRatio = 50.0

    /// Logarithmic when the positive finite `values` span more than a ratio of `largestLinearRatio` (N from
    /// 1 to 10 000, say), linear otherwise.
    public static func automatic(for values: [Double]) -> AxisScale {
        let positive = values.filter { $0.isFinite && $0 > 0 }
        guard let smallest = positive.min(), let greatest = positive.max() else { return .linear }
        return greatest / smallest > largestLinearRatio ? .logarithmic : .linear
    }
}
