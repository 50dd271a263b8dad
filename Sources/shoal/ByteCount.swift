import ArgumentParser

/// A size or a rate on the command line: `1048576`, `512k`, `8M`, `1.5GiB` (binary units: k = 1024).
struct ByteCount: ExpressibleByArgument, Hashable, Sendable {
    var bytes: Int64

    init(bytes: Int64) {
        self.bytes = bytes
    }

    init?(argument: String) {
        var text = Substring(argument.lowercased())
        if text.hasSuffix("/s") { text = text.dropLast(2) }
        for suffix in ["ib", "b"] where text.hasSuffix(suffix) && text.count > suffix.count {
            text = text.dropLast(suffix.count)
            break
        }
        var scale = 1.0
        if let last = text.last, let power = ["k": 1, "m": 2, "g": 3, "t": 4][last] {
            scale = Double(1 << (10 * power))
            text = text.dropLast()
        }
        guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            let value = Double(text), value.isFinite, value >= 0, value * scale < 9e18
        else { return nil }
        bytes = Int64((value * scale).rounded())
    }

    static var defaultCompletionKind: CompletionKind { .default }
}
