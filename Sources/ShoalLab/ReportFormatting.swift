import Foundation

/// Numbers as the lab's reports print them: fixed decimals without locale, sizes and rates in binary units,
/// durations in s, min or h. A value that had to be rounded to fit its form is marked with `≈`, so that what
/// a report shows is either exact or says it is not.
enum ReportFormatting {
    /// `value` with exactly `digits` decimals (`-0.00` is printed `0.00`; `nan`, `inf`, `-inf` as such).
    static func fixed(_ value: Double, _ digits: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
        let text = String(format: "%.\(max(0, digits))f", value)
        if text.hasPrefix("-"), text.dropFirst().allSatisfy({ $0 == "0" || $0 == "." }) {
            return String(text.dropFirst())
        }
        return text
    }

    /// `value` with at most `digits` decimals, trailing zeros (and a trailing point) removed: `1`, `0.5`, `2.276`.
    static func trimmed(_ value: Double, _ digits: Int) -> String {
        var text = fixed(value, digits)
        guard text.contains("."), value.isFinite else { return text }
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    /// `trimmed(value, digits)`, preceded by `≈` when that is not `value` itself.
    static func approximate(_ value: Double, _ digits: Int) -> String {
        let text = trimmed(value, digits)
        return isExact(value, digits: digits) ? text : "≈" + text
    }

    /// Whether `value` has at most `digits` decimals (up to the error of the arithmetic that made it).
    static func isExact(_ value: Double, digits: Int) -> Bool {
        guard value.isFinite else { return true }
        let scale = pow(10, Double(digits))
        let scaled = value * scale
        return abs(scaled - scaled.rounded()) <= 1e-9 * max(1, abs(scaled))
    }

    /// A size in bytes in the largest binary unit it fills at least once: `8 MiB`, `≈2.276 KiB`, `100 B`.
    static func bytes(_ value: Double) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var scaled = value
        var unit = 0
        while unit < units.count - 1, abs(scaled) >= 1024 {
            scaled /= 1024
            unit += 1
        }
        return approximate(scaled, 3) + " " + units[unit]
    }

    /// A rate in bytes per second: `bytes(value) + "/s"`.
    static func rate(_ value: Double) -> String {
        bytes(value) + "/s"
    }

    /// A duration in seconds, in hours from one hour on, in minutes from one minute on: `1 h`, `6 min`, `36 s`.
    static func duration(_ seconds: Double) -> String {
        if abs(seconds) >= 3600 { return approximate(seconds / 3600, 3) + " h" }
        if abs(seconds) >= 60 { return approximate(seconds / 60, 3) + " min" }
        return approximate(seconds, 3) + " s"
    }
}
