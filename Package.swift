// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "DeviceKit",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "DeviceKit", targets: ["DeviceKit"]),
        .executable(name: "devicesim", targets: ["devicesim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        // The operators' web console (Sources/CenterConsole): HTTP, and bcrypt for their passwords.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: ["FullFoundation"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        // Header names beyond Hummingbird's re-exports (X-CSRF-Token, Content-Security-Policy).
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        // The centre's journal on a PostgreSQL server (`--journal postgres://…`), shared by nodes on several hosts.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // TLS to that server (`?sslmode=require`): the library postgres-nio itself uses.
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // The only C in the project: libudev (through pkg-config), libsodium's AEAD for the frames, and the Linux
        // ioctls Swift cannot import.
        .systemLibrary(
            name: "CDeviceSys",
            pkgConfig: "libudev",
            providers: [.apt(["libudev-dev", "libsodium-dev"])]
        ),
        .target(
            name: "DeviceKit",
            dependencies: [
                "CDeviceSys",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                // AES._CTR for SRTP's AES-CM keystream (Sources/DeviceKit/Voice/SRTP.swift).
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "DequeModule", package: "swift-collections"),
                // A load shard's timers (Sources/DeviceKit/Load/TimerQueue.swift).
                .product(name: "HeapModule", package: "swift-collections"),
                // The recording API of the centre's metrics; swift-prometheus is the backend its endpoint serves.
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // The operators' web console that `devicesim center --web-port` serves: login, the live queue, devices,
        // history, accounts and the residents' registry. Its page, script and catalogue are in the binary.
        .target(
            name: "CenterConsole",
            dependencies: [
                "DeviceKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                // MaximumAvailableConnections, HTTP1Channel's idle timeout.
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [
                .embedInCode("Assets/console.html"),
                .embedInCode("Assets/console.js"),
                .embedInCode("Assets/console.css"),
                .embedInCode("Assets/login.html"),
                .embedInCode("Assets/catalogue.json"),
            ]
        ),
        .executableTarget(
            name: "devicesim",
            dependencies: [
                "DeviceKit",
                "CenterConsole",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // `devicesim center` bootstraps MetricsSystem with the Prometheus factory its endpoint serves.
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // libFuzzer entry point for the frame decoder; without -DFUZZING it replays corpus files (docs/development.md).
        .executableTarget(
            name: "DecoderFuzzer",
            dependencies: [
                "DeviceKit",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "DeviceKitTests",
            dependencies: [
                "DeviceKit",
                // The operators' web console, tested with the centre's test devices.
                "CenterConsole",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // EmbeddedChannel, for channel handlers on a manual clock.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                // The centre's metrics, read by the tests.
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                // A second connection to a centre's journal, to hold its write lock (a failing journal).
                .product(name: "GRDB", package: "GRDB.swift"),
                // TestMetrics: a factory that keeps what was recorded, for parts tested without an endpoint.
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "devicesimTests",
            dependencies: ["devicesim"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
