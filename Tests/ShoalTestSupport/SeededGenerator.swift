import ShoalCore

/// The tests' seeded generator: the same SplitMix64 the cores use.
public typealias SeededGenerator = SplitMix64
