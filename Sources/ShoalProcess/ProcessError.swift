/// A program that could not be found or started, or whose output files could not be made.
public struct ProcessError: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) {
        self.description = description
    }
}
