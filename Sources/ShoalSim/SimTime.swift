import ShoalCore

/// Virtual time: the simulator's clock is an ``Instant`` that only the event queue moves.
public typealias SimTime = Instant
