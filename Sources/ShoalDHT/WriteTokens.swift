import Crypto
import ShoalCore

/// Write tokens for announce_peer (BEP 5, "Overview" and "get_peers"): a token is a hash of the requester's IP
/// address, the info-hash and a secret; the secret changes every five minutes and the previous one is still
/// accepted, so a token is good for five to ten minutes, as in the reference implementation. Only the host
/// that got a token can use it, and only for that info-hash.
struct WriteTokens: Sendable {
    static let length = 8

    private var current: (UInt64, UInt64)
    private var previous: (UInt64, UInt64)
    private(set) var rotated: Instant

    init(using random: inout some RandomNumberGenerator, now: Instant) {
        current = (random.next(), random.next())
        previous = (random.next(), random.next())
        rotated = now
    }

    /// A new secret; the current one becomes the previous one.
    mutating func rotate(using random: inout some RandomNumberGenerator, now: Instant) {
        previous = current
        current = (random.next(), random.next())
        rotated = now
    }

    /// The token for `host` and `infoHash`.
    func token(for host: NodeAddress.Host, infoHash: NodeID) -> [UInt8] {
        Self.token(secret: current, host: host, infoHash: infoHash)
    }

    /// Whether `token` was given to `host` for `infoHash` under the current or the previous secret.
    func isValid(_ token: [UInt8], for host: NodeAddress.Host, infoHash: NodeID) -> Bool {
        token == Self.token(secret: current, host: host, infoHash: infoHash)
            || token == Self.token(secret: previous, host: host, infoHash: infoHash)
    }

    private static func token(secret: (UInt64, UInt64), host: NodeAddress.Host, infoHash: NodeID) -> [UInt8] {
        var input: [UInt8] = []
        input.reserveCapacity(16 + 17 + 20)
        for word in [secret.0, secret.1] {
            for shift in stride(from: 56, through: 0, by: -8) { input.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) }
        }
        input.append(host.family.rawValue)
        host.append(to: &input)
        infoHash.append(to: &input)
        return Array(Insecure.SHA1.hash(data: input).prefix(length))
    }
}
