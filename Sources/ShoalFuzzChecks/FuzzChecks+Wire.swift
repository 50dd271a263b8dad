import ShoalWire

extension FuzzChecks {
    /// Peer wire messages: placeholder until the decoder lands (the wire module's author fills it in).
    static func wireMessages(_ bytes: [UInt8]) {}
}
