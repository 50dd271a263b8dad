// swift-tools-version: 6.1
import PackageDescription

/// One list of settings for every target: Swift 6 language mode comes from the tools version;
/// warnings are errors so that NIO's data-race diagnostics (otherwise only warnings) cannot slip in.
let strictSettings: [SwiftSetting] = [
    .unsafeFlags(["-warnings-as-errors"]),
]

let package = Package(
    name: "Shoal",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "shoal", targets: ["shoal"]),
        .library(name: "ShoalBencode", targets: ["ShoalBencode"]),
        .library(name: "ShoalCore", targets: ["ShoalCore"]),
        .library(name: "ShoalStorage", targets: ["ShoalStorage"]),
        .library(name: "ShoalWire", targets: ["ShoalWire"]),
        .library(name: "ShoalSwarm", targets: ["ShoalSwarm"]),
        .library(name: "ShoalNIO", targets: ["ShoalNIO"]),
        .library(name: "ShoalDHT", targets: ["ShoalDHT"]),
        .library(name: "ShoalSim", targets: ["ShoalSim"]),
        .library(name: "ShoalLab", targets: ["ShoalLab"]),
        .library(name: "ShoalProcess", targets: ["ShoalProcess"]),
        .library(name: "ShoalTracker", targets: ["ShoalTracker"]),
        .library(name: "ShoalTrackerNIO", targets: ["ShoalTrackerNIO"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        // The tracker's HTTP client (issue 5). Its HTTP server is NIO's HTTP/1 pipeline (NIOHTTP1), not
        // Hummingbird: see docs/ARCHITECTURE.md, "The servers".
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    ],
    targets: [
        .target(
            name: "ShoalBencode",
            swiftSettings: strictSettings
        ),
        .target(
            name: "ShoalCore",
            dependencies: [
                "ShoalBencode",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ShoalStorage",
            dependencies: [
                "ShoalBencode",
                "ShoalCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ShoalWire",
            dependencies: [
                "ShoalBencode",
                "ShoalCore",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ShoalSwarm",
            dependencies: [
                "ShoalCore",
                "ShoalWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ShoalDHT",
            dependencies: [
                "ShoalBencode", "ShoalCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ShoalNIO",
            dependencies: [
                "ShoalCore", "ShoalDHT", "ShoalStorage", "ShoalSwarm", "ShoalWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ShoalSim",
            dependencies: [
                "ShoalCore", "ShoalDHT", "ShoalSwarm", "ShoalWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "HeapModule", package: "swift-collections"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ShoalTracker",
            dependencies: ["ShoalBencode", "ShoalCore"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ShoalTrackerNIO",
            dependencies: [
                "ShoalCore", "ShoalStorage", "ShoalTracker",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ShoalProcess",
            swiftSettings: strictSettings
        ),
        .target(
            name: "ShoalLab",
            dependencies: ["ShoalCore", "ShoalProcess", "ShoalSim", "ShoalSwarm"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ShoalFuzzChecks",
            dependencies: [
                "ShoalBencode", "ShoalCore", "ShoalWire", "ShoalSwarm", "ShoalDHT", "ShoalTracker",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(name: "fuzz-bencode", dependencies: ["ShoalFuzzChecks"], path: "Fuzz/bencode", swiftSettings: strictSettings),
        .executableTarget(name: "fuzz-metainfo", dependencies: ["ShoalFuzzChecks"], path: "Fuzz/metainfo", swiftSettings: strictSettings),
        .executableTarget(name: "fuzz-magnet", dependencies: ["ShoalFuzzChecks"], path: "Fuzz/magnet", swiftSettings: strictSettings),
        .executableTarget(name: "fuzz-wire", dependencies: ["ShoalFuzzChecks"], path: "Fuzz/wire", swiftSettings: strictSettings),
        .executableTarget(name: "fuzz-krpc", dependencies: ["ShoalFuzzChecks"], path: "Fuzz/krpc", swiftSettings: strictSettings),
        .executableTarget(name: "fuzz-tracker-http", dependencies: ["ShoalFuzzChecks"], path: "Fuzz/tracker-http", swiftSettings: strictSettings),
        .executableTarget(name: "fuzz-tracker-udp", dependencies: ["ShoalFuzzChecks"], path: "Fuzz/tracker-udp", swiftSettings: strictSettings),
        .executableTarget(name: "fuzz-tracker-state", dependencies: ["ShoalFuzzChecks"], path: "Fuzz/tracker-state", swiftSettings: strictSettings),
        .executableTarget(
            name: "fuzz-extensions", dependencies: ["ShoalFuzzChecks"], path: "Fuzz/extensions", swiftSettings: strictSettings),
        .executableTarget(name: "fuzz-lsd", dependencies: ["ShoalFuzzChecks"], path: "Fuzz/lsd", swiftSettings: strictSettings),
        // The tracker benchmark's load generator (bench/tracker).
        .executableTarget(
            name: "tracker-load",
            dependencies: [
                "ShoalCore", "ShoalTracker",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "shoal",
            dependencies: [
                "ShoalBencode",
                "ShoalCore",
                "ShoalDHT",
                "ShoalStorage",
                "ShoalSwarm",
                "ShoalWire",
                "ShoalNIO",
                "ShoalSim",
                "ShoalLab",
                "ShoalTracker",
                "ShoalTrackerNIO",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "ShoalTestSupport",
            dependencies: ["ShoalCore"],
            path: "Tests/ShoalTestSupport",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ShoalBencodeTests",
            dependencies: ["ShoalBencode", "ShoalTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ShoalCoreTests",
            dependencies: ["ShoalCore", "ShoalBencode", "ShoalFuzzChecks", "ShoalTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ShoalWireTests",
            dependencies: [
                "ShoalWire", "ShoalCore", "ShoalBencode", "ShoalTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ShoalSwarmTests",
            dependencies: [
                "ShoalSwarm", "ShoalCore", "ShoalWire", "ShoalTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ShoalDHTTests",
            dependencies: ["ShoalDHT", "ShoalCore", "ShoalBencode", "ShoalFuzzChecks", "ShoalTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ShoalFuzzChecksTests",
            dependencies: ["ShoalFuzzChecks"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ShoalStorageTests",
            dependencies: ["ShoalStorage", "ShoalCore", "ShoalTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ShoalNIOTests",
            dependencies: [
                "ShoalNIO", "ShoalDHT", "ShoalSwarm", "ShoalStorage", "ShoalWire", "ShoalCore", "ShoalTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ShoalSimTests",
            dependencies: [
                "ShoalSim", "ShoalDHT", "ShoalSwarm", "ShoalWire", "ShoalCore", "ShoalTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ShoalLabTests",
            dependencies: ["ShoalLab", "ShoalSim", "ShoalCore", "ShoalTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ShoalTrackerTests",
            dependencies: ["ShoalTracker", "ShoalBencode", "ShoalCore", "ShoalTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ShoalTrackerNIOTests",
            dependencies: [
                "ShoalTrackerNIO", "ShoalTracker", "ShoalCore", "ShoalTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ShoalProcessTests",
            dependencies: ["ShoalProcess"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "InteropTests",
            dependencies: ["ShoalCore", "ShoalProcess", "ShoalTestSupport"],
            // Helper programs the tests run (Python for libtorrent), found through #filePath.
            exclude: ["Scripts"],
            swiftSettings: strictSettings
        ),
    ]
)
