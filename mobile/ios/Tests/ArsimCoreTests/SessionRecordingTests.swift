import Foundation
import XCTest
@testable import ArsimCore

/// The iOS recording folder of CONTRACT §6 (ArsimCore SessionRecording) as
/// simulator/scenario/importers/arsim_app.py reads it.
final class SessionRecordingTests: XCTestCase {
    /// ARCamera.transform of a camera turned 90° about world y (looking down world −x), at
    /// (0.1, 1.25, −2): simd's column-major order, columns 0…3.
    let turnedY: [Float] = [0, 0, -1, 0, /**/ 0, 1, 0, 0, /**/ 1, 0, 0, 0, /**/ 0.1, 1.25, -2, 1]
    /// ARCamera.intrinsics, column-major: fx, fy on the diagonal, (cx, cy, 1) the last column.
    let intrinsics: [Float] = [1445.5, 0, 0, /**/ 0, 1445.5, 0, /**/ 958.25, 542.75, 1]

    func testOneLineExactly() throws {
        let line = try XCTUnwrap(SessionRecording.frameLine(timestamp: 5123.25, transform: turnedY,
                                                            intrinsics: intrinsics, tracking: .normal))
        XCTAssertEqual(line, #"{"t":5123.250000000,"p":[0.1,1.25,-2.0],"q":[0.0,0.7071067811865475,0.0,0.7071067811865476],"#
            + #""k":[1445.5,1445.5,958.25,542.75],"tracking":"normal"}"#)
        // valid JSON, one object
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(object["tracking"] as? String, "normal")
    }

    func testTimestampKeepsNineDecimalsAndTrackingNames() throws {
        let line = try XCTUnwrap(SessionRecording.frameLine(timestamp: 81234.016666666, transform: turnedY,
                                                            intrinsics: intrinsics, tracking: .notAvailable))
        XCTAssertTrue(line.hasPrefix(#"{"t":81234.016666666,"#), line)
        XCTAssertTrue(line.hasSuffix(#""tracking":"notAvailable"}"#), line)
        XCTAssertEqual(SessionRecording.Tracking.limited.rawValue, "limited")
    }

    func testNonFiniteValuesMakeNoLine() {
        var bad = turnedY
        bad[12] = .nan
        XCTAssertNil(SessionRecording.frameLine(timestamp: 1, transform: bad, intrinsics: intrinsics, tracking: .normal))
        XCTAssertNil(SessionRecording.frameLine(timestamp: .infinity, transform: turnedY, intrinsics: intrinsics, tracking: .normal))
    }

    func testQuaternionOfExactRotations() {
        XCTAssertEqual(SessionRecording.quaternion([[1, 0, 0], [0, 1, 0], [0, 0, 1]]), [0, 0, 0, 1])
        // 120° about (1, 1, 1): the axes permute, q = (½, ½, ½, ½) exactly
        XCTAssertEqual(SessionRecording.quaternion([[0, 0, 1], [1, 0, 0], [0, 1, 0]]), [0.5, 0.5, 0.5, 0.5])
        // −150° about z: Shepperd's z branch gives w < 0, the flip to w ≥ 0 must not leave −0.0 in the text
        let c = -0.8660254037844386 // cos(−150°); sin(−150°) = −0.5
        let q = SessionRecording.quaternion([[c, 0.5, 0], [-0.5, c, 0], [0, 0, 1]])
        XCTAssertEqual(q.prefix(2).map { "\($0)" }, ["0.0", "0.0"])
        XCTAssertEqual(q[2], -0.9659258262890683, accuracy: 1e-15) // −sin(75°)
        XCTAssertEqual(q[3], 0.25881904510252074, accuracy: 1e-15) // cos(75°)
    }

    /// quaternion(Pose(q).rotation()) is q again (or −q, made w ≥ 0) for rotations of every kind.
    func testQuaternionRoundTrip() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            var q = (0..<4).map { _ in Double.random(in: -1...1, using: &rng) }
            let n = q.reduce(0) { $0 + $1 * $1 }.squareRoot()
            guard n > 1e-3 else { continue }
            q = q.map { $0 / n }
            if q[3] < 0 { q = q.map { -$0 } }
            let back = SessionRecording.quaternion(Pose(t: [0, 0, 0], q: q).rotation())
            XCTAssertGreaterThanOrEqual(back[3], 0)
            let dot = zip(q, back).reduce(0) { $0 + $1.0 * $1.1 }
            XCTAssertEqual(abs(dot), 1, accuracy: 1e-12, "\(q) → \(back)")
        }
    }

    func testHeader() throws {
        let date = Date(timeIntervalSince1970: 1_735_787_045) // 2025-01-02T03:04:05Z
        let data = try SessionRecording.header(width: 1920, height: 1440, device: "iPhone12,8", app: "arsim bench 0.1.0", recorded: date)
        let header = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual(header["format"] as? String, "arsim-ios-recording/1")
        XCTAssertEqual(header["video"] as? String, "video.mp4")
        XCTAssertEqual(header["frames"] as? String, "frames.jsonl")
        XCTAssertEqual(header["width"] as? Int, 1920)
        XCTAssertEqual(header["height"] as? Int, 1440)
        XCTAssertEqual(header["device"] as? String, "iPhone12,8")
        XCTAssertEqual(header["recorded"] as? String, "2025-01-02T03:04:05Z")
        XCTAssertFalse(String(decoding: data, as: UTF8.self).contains("\\/"))
    }

    /// The importer reads the rotation as atan2(b, a) of the track matrix, clockwise.
    func testVideoTransformRotation() {
        for degrees in [0, 90, 180, 270] {
            let m = SessionRecording.videoTransform(degreesCW: degrees, width: 1920, height: 1440)
            let angle = (Int((atan2(m.b, m.a) * 180 / .pi).rounded()) + 360) % 360
            XCTAssertEqual(angle, degrees)
            XCTAssertEqual(m.a * m.d - m.b * m.c, 1) // a rotation, no mirror
        }
        XCTAssertEqual(SessionRecording.videoTransform(degreesCW: 90, width: 1920, height: 1440).tx, 1440)
    }

    func testRecordParams() throws {
        XCTAssertTrue(RecordParams.requested(["arsim.record": "desk-1"]))
        XCTAssertFalse(RecordParams.requested(["arsim.scenario": "orbit-desk"]))
        XCTAssertEqual(try RecordParams.parse(["arsim.record": "desk-1"]), RecordParams(name: "desk-1", seconds: nil))
        XCTAssertEqual(try RecordParams.parse(["arsim.record": "desk-1", "arsim.record_seconds": "20"]),
                       RecordParams(name: "desk-1", seconds: 20))
        for bad: [String: Any] in [["arsim.record": "a/b"], ["arsim.record": ".."], ["arsim.record": "a", "arsim.record_seconds": "0"],
                                   ["arsim.record": "a", "arsim.scenario": "s"]] {
            XCTAssertThrowsError(try RecordParams.parse(bad), "\(bad)")
        }
    }
}
