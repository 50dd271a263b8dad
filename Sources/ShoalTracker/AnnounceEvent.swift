/// The `event` of an announce (BEP 3): the first announce says `started`, the one when the download
/// completes `completed`, the last one `stopped`; regular announces say nothing.
public enum AnnounceEvent: UInt32, Hashable, Sendable, CustomStringConvertible {
    // The raw values are BEP 15's numbers.
    case none = 0
    case completed = 1
    case started = 2
    case stopped = 3

    /// The value of HTTP's `event` parameter; nil for `none` (the parameter is left out).
    public var httpName: String? {
        switch self {
        case .none: nil
        case .completed: "completed"
        case .started: "started"
        case .stopped: "stopped"
        }
    }

    /// From HTTP's `event` parameter; an empty or unknown value (BEP 21's `paused`, say) is `none`.
    public init<Bytes: Collection<UInt8>>(httpValue: Bytes) {
        self =
            httpValue.withContiguousStorageIfAvailable { Self(httpValue: UnsafeRawBufferPointer($0)) }
            ?? Array(httpValue).withUnsafeBytes { Self(httpValue: $0) }
    }

    /// From HTTP's `event` parameter as raw bytes (the server's query reader): compared byte by byte,
    /// without generic iterators.
    public init(httpValue: UnsafeRawBufferPointer) {
        if URLQuery.bytes(httpValue, equal: "started") {
            self = .started
        } else if URLQuery.bytes(httpValue, equal: "completed") {
            self = .completed
        } else if URLQuery.bytes(httpValue, equal: "stopped") {
            self = .stopped
        } else {
            self = .none
        }
    }

    public var description: String { httpName ?? "none" }
}
