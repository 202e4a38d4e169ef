// swift-tools-version:5.9
// ArsimCore: the platform-free part of the iOS bench app (metrics + verdict, poses and
// projection, scenario and run-parameter parsing, report writing), testable with `swift test`
// on macOS or Linux. The app target (ArsimBench/) is built with Xcode, see README.md.
// Built and tested on Linux in the arsim repository with Debian's Swift 6.0.3 (`make
// swift-check`, check.sh: a Debian trixie root); never built with Xcode or for iOS there.
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
