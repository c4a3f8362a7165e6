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
    ],
    targets: [
        // The only C in the project: libudev (through pkg-config) and the Linux ioctls Swift cannot import.
        .systemLibrary(
            name: "CDeviceSys",
            pkgConfig: "libudev",
            providers: [.apt(["libudev-dev"])]
        ),
        .target(
            name: "DeviceKit",
            dependencies: [
                "CDeviceSys",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "devicesim",
            dependencies: [
                "DeviceKit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // libFuzzer entry point for the frame decoder; without -DFUZZING it replays corpus files (README).
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
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "devicesimTests",
            dependencies: ["devicesim"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
