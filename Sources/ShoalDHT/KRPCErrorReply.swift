/// An error reply (`y=e`, BEP 5 "Errors"): a code and a message.
public struct KRPCErrorReply: Hashable, Sendable {
    public var code: Int64
    public var message: [UInt8]

    public init(code: Int64, message: String) {
        self.code = code
        self.message = Array(message.utf8)
    }

    public init(code: Int64, messageBytes: [UInt8]) {
        self.code = code
        self.message = messageBytes
    }

    public static let genericError: Int64 = 201
    public static let serverError: Int64 = 202
    /// A malformed packet, invalid arguments or a bad token.
    public static let protocolError: Int64 = 203
    public static let methodUnknown: Int64 = 204
}
