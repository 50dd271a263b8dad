import ArgumentParser
import ShoalCore

/// Sizes and rates on the command line (`--size 32M`, `--max-upload 500k`).
extension ByteCount: ExpressibleByArgument {
    public init?(argument: String) {
        self.init(parsing: argument)
    }
}
