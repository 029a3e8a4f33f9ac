// swift-tools-version:6.0
// APT Fleet: Adaptive Precision Training on a federated fleet of edge devices.
import PackageDescription

let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6)
]

// The engine's kernels are plain SIMD code; on x86-64 they are compiled for AVX2 + FMA (every x86-64 CPU since
// 2013/2015, and the machines this project builds on). Set APT_PORTABLE=1 to build for the baseline x86-64
// instead; the executables refuse to start on a CPU without AVX2 when built without it.
#if arch(x86_64)
    let vectorISA: [SwiftSetting] =
        Context.environment["APT_PORTABLE"] == nil
        ? [.unsafeFlags(["-Xcc", "-mavx2", "-Xcc", "-mfma"]), .define("APT_X86_AVX2")] : []
#else
    let vectorISA: [SwiftSetting] = []
#endif

let package = Package(
    name: "APTFleet",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "APTCore", targets: ["APTCore"]),
        .library(name: "APTProtocol", targets: ["APTProtocol"]),
        .library(name: "APTNode", targets: ["APTNode"]),
        .library(name: "APTCoordinator", targets: ["APTCoordinator"]),
        .executable(name: "apt-node", targets: ["apt-node"]),
        .executable(name: "apt-coord", targets: ["apt-coord"]),
    ],
    targets: [
        // C system libraries from Debian packages; linked through their module maps.
        .systemLibrary(name: "CZmq", path: "Sources/CZmq", providers: [.apt(["libzmq3-dev"])]),
        .systemLibrary(name: "CSQLite", path: "Sources/CSQLite", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        // glibc's malloc statistics and thresholds (no library to link): heap figures checked against the process.
        .systemLibrary(name: "CMalloc", path: "Sources/CMalloc"),

        // The shared core: the APT training engine.
        .target(
            name: "APTCore", dependencies: ["CZlib", "CMalloc"], path: "Sources/APTCore",
            swiftSettings: strict + vectorISA),
        // Command-line plumbing shared by the two executables (parsing, help, errors, logging).
        .target(name: "APTCommandLine", path: "Sources/APTCommandLine", swiftSettings: strict),

        // Wire format and ZeroMQ transport. Knows nothing of training loops or SQL.
        .target(
            name: "APTProtocol", dependencies: ["CZmq", "APTCore", "APTCommandLine"], path: "protocol/APTProtocol",
            swiftSettings: strict),

        // The node agent and its executable.
        .target(
            name: "APTNode", dependencies: ["APTCore", "APTProtocol"], path: "node/APTNode",
            swiftSettings: strict),
        .executableTarget(
            name: "apt-node", dependencies: ["APTNode", "APTCore", "APTProtocol", "APTCommandLine"],
            path: "node/apt-node",
            swiftSettings: strict),

        // The coordinator, its ledger and its executable.
        .target(
            name: "APTCoordinator", dependencies: ["APTCore", "APTProtocol", "CSQLite"],
            path: "coordinator/APTCoordinator", swiftSettings: strict),
        .executableTarget(
            name: "apt-coord", dependencies: ["APTCoordinator", "APTProtocol", "APTCore", "APTCommandLine"],
            path: "coordinator/apt-coord", swiftSettings: strict),

        .testTarget(name: "APTCoreTests", dependencies: ["APTCore", "CMalloc"], swiftSettings: strict),
        .testTarget(name: "APTCommandLineTests", dependencies: ["APTCommandLine"], swiftSettings: strict),
        .testTarget(
            name: "APTProtocolTests", dependencies: ["APTProtocol", "APTCore", "CZmq", "CMalloc"], swiftSettings: strict
        ),
        .testTarget(name: "APTNodeTests", dependencies: ["APTNode", "APTCore", "APTProtocol"], swiftSettings: strict),
        .testTarget(
            name: "APTCoordinatorTests", dependencies: ["APTCoordinator", "APTProtocol"], swiftSettings: strict),
        // A counting allocator and the probe that measures the engine's real heap against its memory figure.
        .target(name: "CHeapCounter", path: "Sources/CHeapCounter"),
        .executableTarget(
            name: "apt-heap-probe", dependencies: ["APTCore", "CHeapCounter"], path: "Tests/HeapProbe",
            swiftSettings: strict),
        .testTarget(
            name: "EndToEndTests", dependencies: ["APTCore", "APTProtocol", "APTCoordinator"], swiftSettings: strict),
    ]
)
