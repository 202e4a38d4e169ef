import ArsimCore
import AVFoundation
import CoreImage
import UIKit

/// The scenario's own camera frames, in order: the video through AVAssetReader (BGRA), or the
/// `frames/` images. THIS BYPASSES ARKIT: ARKit has no public API to replay a recorded session
/// (Xcode's "ARKit Replay data" scheme option works only when Xcode launches the app), so the
/// recorded frames and the poses of poses.txt feed the stylization pipeline directly and no
/// ARSession runs.
final class ScenarioFrames {
    private var files = [URL]()
    private var reader: AVAssetReader?
    private var output: AVAssetReaderTrackOutput?
    private var next = 0
    private let context = CIContext()

    init(_ sc: Scenario) throws {
        if sc.video == "frames/" {
            files = try FileManager.default.contentsOfDirectory(at: sc.dir.appendingPathComponent("frames"),
                                                                includingPropertiesForKeys: nil)
                .filter { !$0.lastPathComponent.hasPrefix(".") }
                .sorted { $0.lastPathComponent < $1.lastPathComponent }
            return
        }
        let asset = AVURLAsset(url: sc.dir.appendingPathComponent(sc.video))
        guard let track = asset.tracks(withMediaType: .video).first else { throw ArsimError("\(sc.video): no video track") }
        let reader = try AVAssetReader(asset: asset)
        let output = AVAssetReaderTrackOutput(track: track, outputSettings: [
            kCVPixelBufferPixelFormatTypeKey as String: kCVPixelFormatType_32BGRA,
        ])
        output.alwaysCopiesSampleData = false
        reader.add(output)
        guard reader.startReading() else { throw ArsimError("\(sc.video): \(reader.error?.localizedDescription ?? "cannot read")") }
        self.reader = reader
        self.output = output
    }

    /// The next frame, or nil after the last one. (Rotation metadata is not applied: the
    /// format's camera size is the decoded size, and the bundled samples carry none.)
    func nextImage() throws -> CGImage? {
        defer { next += 1 }
        if !files.isEmpty {
            guard next < files.count else { return nil }
            guard let image = UIImage(contentsOfFile: files[next].path)?.cgImage else {
                throw ArsimError("cannot decode \(files[next].lastPathComponent)")
            }
            return image
        }
        guard let sample = output?.copyNextSampleBuffer(), let pixels = CMSampleBufferGetImageBuffer(sample) else {
            if reader?.status == .failed { throw ArsimError("video decoding failed: \(reader?.error?.localizedDescription ?? "")") }
            return nil
        }
        let image = CIImage(cvPixelBuffer: pixels)
        return context.createCGImage(image, from: image.extent)
    }
}
