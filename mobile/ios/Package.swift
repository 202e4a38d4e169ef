// swift-tools-version:5.9
// ArsimCore: the platform-free part of the iOS bench app (metrics + verdict, poses and
// projection, scenario and run-parameter parsing, report writing), testable with `swift test`
// on macOS. The app target (ArsimBench/) is built with Xcode, see README.md.
// Unbuilt in the arsim repository (no Swift toolchain there).
import PackageDescription

let package = Package(
    name: "ArsimCore",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [.library(name: "ArsimCore", targets: ["ArsimCore"])],
    targets: [
        .target(name: "ArsimCore"),
        .testTarget(name: "ArsimCoreTests", dependencies: ["ArsimCore"])
    ]
)
