/// A real client that could not be started, misbehaved or ran out of time, as a test failure.
struct RealClientError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}
