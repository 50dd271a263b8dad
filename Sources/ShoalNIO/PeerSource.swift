import ShoalCore
import ShoalSwarm

/// Where peer addresses come from besides the command line and the peers themselves: local service
/// discovery (BEP 14), trackers, the DHT. A source runs on its own and hands what it finds to `deliver`
/// (from any thread); ``PeerSources`` passes it to the runtime of the moment: the magnet phase, then the
/// download.
public protocol PeerSource: AnyObject, Sendable {
    /// A name for messages ("LSD", "DHT", a tracker's URL).
    var name: String { get }
    /// Whether the source may serve a private torrent (BEP 27: only its trackers may; no DHT, PEX or LSD).
    var allowedForPrivateTorrents: Bool { get }
    /// Starts looking for peers of `infoHash` for a torrent listening on `port`.
    func start(
        infoHash: Digest20, port: Int,
        deliver: @escaping @Sendable ([PeerAddress], ConnectionPlanner.Source) -> Void
    ) async throws
    /// Stops looking (and says goodbye where the protocol has a word for it).
    func stop() async
}
