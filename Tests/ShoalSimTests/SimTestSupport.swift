import ShoalCore
import ShoalSim
import ShoalSwarm

/// Small helpers shared by the swarm tests (no suite here).
extension Instant {
    /// Seconds since the simulation's zero.
    var secondsSinceZero: Double { (self - .zero).seconds }
}

extension TorrentStateMachine.Configuration {
    /// Makes the engine a free-rider: it never unchokes anyone, so it never uploads a block.
    mutating func neverUnchoke() {
        choker.regularSlots = 0
        choker.optimisticSlots = 0
    }
}

/// Block payload one peer has received, counted by its engine over every peer it has met.
func payloadDownloaded(_ simulation: Simulation, _ peer: SimPeerID) -> Int64 {
    simulation.machine(peer).statistics(now: simulation.now).downloaded
}

/// Block payload one peer has sent, counted by its engine over every peer it has met.
func payloadUploaded(_ simulation: Simulation, _ peer: SimPeerID) -> Int64 {
    simulation.machine(peer).statistics(now: simulation.now).uploaded
}
