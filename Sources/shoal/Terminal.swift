#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import ArgumentParser

/// Output helpers shared by the commands: errors as one line on stderr, sizes for people.
enum Terminal {
    /// Whether standard error is a terminal (progress bars are drawn only there).
    static var stderrIsTerminal: Bool { isatty(2) == 1 }

    static func printError(_ message: String) {
        writeStderr("shoal: error: \(message)\n")
    }

    /// A line on standard output, written at once (print buffers when stdout is a pipe, and a script
    /// waiting for "Listening on port" must see it when it happens).
    static func line(_ text: String) {
        var text = text + "\n"
        text.withUTF8 { bytes in _ = write(1, bytes.baseAddress, bytes.count) }
    }

    static func writeStderr(_ text: String) {
        var text = text
        text.withUTF8 { bytes in _ = write(2, bytes.baseAddress, bytes.count) }
    }

    /// Prints `message` as one line and exits non-zero.
    static func fail(_ message: String) -> ExitCode {
        printError(message)
        return ExitCode(1)
    }

    /// `1.50 GiB`-style binary sizes.
    static func size(_ bytes: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(bytes) B" : "\(fixed(value, 2)) \(units[unit])"
    }

    /// `[#########         ]`: a bar `width` cells wide, filled to `fraction` (clamped to 0...1).
    static func bar(_ fraction: Double, width: Int = 30) -> String {
        let filled = Int((min(max(fraction, 0), 1) * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "]"
    }

    /// `value` with `digits` decimals (rounded half away from zero).
    static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int64((abs(value) * scale).rounded())
        let whole = scaled / Int64(scale)
        var decimals = String(scaled % Int64(scale))
        decimals = String(repeating: "0", count: max(0, digits - decimals.count)) + decimals
        let sign = value < 0 && scaled != 0 ? "-" : ""
        return digits == 0 ? "\(sign)\(whole)" : "\(sign)\(whole).\(decimals)"
    }

    /// Seconds on a monotonic clock, for throughput.
    static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
