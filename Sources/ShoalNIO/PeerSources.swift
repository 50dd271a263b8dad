import NIOCore
import ShoalCore
import ShoalSwarm
import Synchronization

/// The peer sources of one torrent, started once and kept across its phases: what they find goes to the
/// runtime set with ``route(to:)-(MagnetRuntime)`` (the magnet phase) or ``route(to:)-(TorrentRuntime)``
/// (the download). Addresses found while no runtime is set wait, at most ``maxWaiting`` of them.
public final class PeerSources: Sendable {
    /// Where found peers go.
    enum Target {
        case none
        case magnet(MagnetRuntime)
        case torrent(TorrentRuntime)
    }

    struct State {
        var target: Target = .none
        var waiting: [(addresses: [PeerAddress], source: ConnectionPlanner.Source)] = []
        var waitingCount = 0
        var started = false
        var running: [any PeerSource] = []
        /// The torrent is private: sources it does not allow neither start nor run.
        var isPrivate = false
    }

    /// The most addresses kept while no runtime takes them.
    public static let maxWaiting = 1000

    public let sources: [any PeerSource]
    private let state = Mutex(State())
    private let warn: @Sendable (String) -> Void

    /// `warn` hears of sources that cannot start.
    public init(_ sources: [any PeerSource], warn: @escaping @Sendable (String) -> Void = { _ in }) {
        self.sources = sources
        self.warn = warn
    }

    public var isEmpty: Bool { sources.isEmpty }

    /// Starts every source (once; later calls do nothing).
    public func start(infoHash: Digest20, port: Int) async {
        let first = state.withLock { state -> Bool in
            defer { state.started = true }
            return !state.started
        }
        guard first else { return }
        for source in sources {
            guard source.allowedForPrivateTorrents || !state.withLock({ $0.isPrivate }) else {
                warn("\(source.name): not used, the torrent is private (BEP 27)")
                continue
            }
            do {
                try await source.start(infoHash: infoHash, port: port) { [weak self] addresses, kind in
                    self?.deliver(addresses, source: kind)
                }
                state.withLock { $0.running.append(source) }
            } catch {
                warn("\(source.name) cannot start: \(error)")
            }
        }
    }

    /// The torrent turned out private (BEP 27): the sources it does not allow stop (or never start).
    public func torrentIsPrivate() async {
        let stopping = state.withLock { state -> [any PeerSource] in
            state.isPrivate = true
            let stopping = state.running.filter { !$0.allowedForPrivateTorrents }
            state.running.removeAll { !$0.allowedForPrivateTorrents }
            return stopping
        }
        for source in stopping { await source.stop() }
    }

    public func route(to runtime: MagnetRuntime) { route(.magnet(runtime)) }

    public func route(to runtime: TorrentRuntime) { route(.torrent(runtime)) }

    /// Found peers go nowhere (between two phases): they wait.
    public func unroute() { route(.none) }

    /// Stops every source.
    public func stop() async {
        let running = state.withLock { state -> [any PeerSource] in
            defer { state.running = [] }
            return state.running
        }
        for source in running { await source.stop() }
    }

    private func route(_ target: Target) {
        let waiting = state.withLock { state in
            state.target = target
            if case .none = target { return [] as [(addresses: [PeerAddress], source: ConnectionPlanner.Source)] }
            defer {
                state.waiting = []
                state.waitingCount = 0
            }
            return state.waiting
        }
        for batch in waiting { send(batch.addresses, source: batch.source, to: target) }
    }

    /// Addresses a source found.
    func deliver(_ addresses: [PeerAddress], source: ConnectionPlanner.Source) {
        guard !addresses.isEmpty else { return }
        let target = state.withLock { state -> Target in
            if case .none = state.target {
                let room = max(0, Self.maxWaiting - state.waitingCount)
                let kept = Array(addresses.prefix(room))
                if !kept.isEmpty {
                    state.waiting.append((kept, source))
                    state.waitingCount += kept.count
                }
            }
            return state.target
        }
        send(addresses, source: source, to: target)
    }

    private func send(_ addresses: [PeerAddress], source: ConnectionPlanner.Source, to target: Target) {
        switch target {
        case .none: break
        case .magnet(let runtime): runtime.addPeers(addresses, source: source)
        case .torrent(let runtime): runtime.addPeers(addresses, source: source)
        }
    }
}
