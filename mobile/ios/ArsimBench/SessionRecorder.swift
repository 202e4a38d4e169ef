import ArsimCore
import ARKit
import AVFoundation

/// Writes one recording folder of CONTRACT §6 (iOS): `video.mp4`, ARFrame.capturedImage as
/// captured (sensor orientation, H.264 through AVAssetWriter, the interface orientation at the
/// start as the track's rotation matrix); `frames.jsonl`, one line per frame *after* its video
/// frame was appended, so lines and video frames correspond one to one; `arsim-recording.json`.
/// Not thread-safe: call it from one serial queue (the ARSession delegate queue).
final class SessionRecorder {
    let folder: URL
    private let rotationCW: Int
    private let device: String
    private let app: String
    private var writer: AVAssetWriter?
    private var input: AVAssetWriterInput?
    private var adaptor: AVAssetWriterInputPixelBufferAdaptor?
    private var lines: FileHandle?
    private var lastTimestamp = -Double.infinity
    private(set) var frames = 0 // ARFrames offered
    private(set) var written = 0 // video frames appended = lines in frames.jsonl
    private(set) var skipped = 0 // not appended: the encoder was busy, or a value was not finite

    /// `rotationCW`: 0 landscape right (the captured image's own orientation), 90 portrait,
    /// 180 landscape left, 270 upside down.
    init(folder: URL, rotationCW: Int, device: String, app: String) {
        self.folder = folder
        self.rotationCW = rotationCW
        self.device = device
        self.app = app
    }

    var started: Bool { writer != nil }

    /// Appends `frame` to the video, then its line. Throws when the writer or the file fails
    /// (the recording cannot continue).
    func append(_ frame: ARFrame) throws {
        frames += 1
        guard frame.timestamp > lastTimestamp else { return } // the importer needs increasing t
        if writer == nil { try start(frame) }
        guard let writer = writer, let input = input, let adaptor = adaptor else { return }
        let camera = frame.camera
        let tracking: SessionRecording.Tracking
        switch camera.trackingState {
        case .normal: tracking = .normal
        case .limited: tracking = .limited
        case .notAvailable: tracking = .notAvailable
        @unknown default: tracking = .notAvailable
        }
        // The line first (a frame whose pose cannot be written is not recorded at all), written
        // only once the video frame is in.
        let m = camera.transform, k = camera.intrinsics
        let transform = [m.columns.0, m.columns.1, m.columns.2, m.columns.3].flatMap { [$0.x, $0.y, $0.z, $0.w] }
        let intrinsics = [k.columns.0, k.columns.1, k.columns.2].flatMap { [$0.x, $0.y, $0.z] }
        guard let line = SessionRecording.frameLine(timestamp: frame.timestamp, transform: transform,
                                                    intrinsics: intrinsics, tracking: tracking) else {
            skipped += 1
            return
        }
        // Real time: a busy encoder drops the frame (and its line) rather than queueing frames.
        guard input.isReadyForMoreMediaData, let pixels = copy(frame.capturedImage, pool: adaptor.pixelBufferPool) else {
            skipped += 1
            return
        }
        let time = CMTime(value: CMTimeValue((frame.timestamp * 1e9).rounded()), timescale: 1_000_000_000)
        guard adaptor.append(pixels, withPresentationTime: time) else {
            throw ArsimError("video.mp4: \(writer.error?.localizedDescription ?? "append failed (\(writer.status.rawValue))")")
        }
        lastTimestamp = frame.timestamp
        try lines?.write(contentsOf: Data((line + "\n").utf8))
        written += 1
    }

    /// At the first frame: the folder, the header, the writer (its size is the captured image's).
    private func start(_ frame: ARFrame) throws {
        let image = frame.capturedImage
        let width = CVPixelBufferGetWidth(image), height = CVPixelBufferGetHeight(image)
        let fm = FileManager.default
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        let resolution = frame.camera.imageResolution // = the pixel buffer's size
        try SessionRecording.header(width: Int(resolution.width), height: Int(resolution.height), device: device, app: app,
                                    recorded: Date())
            .write(to: folder.appendingPathComponent(SessionRecording.headerFile), options: .atomic)
        let linesURL = folder.appendingPathComponent(SessionRecording.framesFile)
        guard fm.createFile(atPath: linesURL.path, contents: nil) else { throw ArsimError("cannot create \(linesURL.path)") }
        lines = try FileHandle(forWritingTo: linesURL)

        let writer = try AVAssetWriter(outputURL: folder.appendingPathComponent(SessionRecording.videoFile), fileType: .mp4)
        let input = AVAssetWriterInput(mediaType: .video, outputSettings: [
            AVVideoCodecKey: AVVideoCodecType.h264,
            AVVideoWidthKey: width,
            AVVideoHeightKey: height,
            AVVideoCompressionPropertiesKey: [
                // ~8 bit/pixel/s (22 Mbit/s at 1920x1440): these frames are what the simulator
                // stylizes, so compression artefacts should stay small
                AVVideoAverageBitRateKey: width * height * 8,
                AVVideoProfileLevelKey: AVVideoProfileLevelH264HighAutoLevel,
                AVVideoAllowFrameReorderingKey: false, // decode order = presentation order
            ] as [String: Any],
        ])
        input.expectsMediaDataInRealTime = true
        let r = SessionRecording.videoTransform(degreesCW: rotationCW, width: width, height: height)
        input.transform = CGAffineTransform(a: r.a, b: r.b, c: r.c, d: r.d, tx: r.tx, ty: r.ty)
        let adaptor = AVAssetWriterInputPixelBufferAdaptor(assetWriterInput: input, sourcePixelBufferAttributes: [
            kCVPixelBufferPixelFormatTypeKey as String: CVPixelBufferGetPixelFormatType(image),
            kCVPixelBufferWidthKey as String: width,
            kCVPixelBufferHeightKey as String: height,
            kCVPixelBufferIOSurfacePropertiesKey as String: [String: Any](),
        ])
        guard writer.canAdd(input) else { throw ArsimError("video.mp4: cannot add an H.264 \(width)x\(height) track") }
        writer.add(input)
        guard writer.startWriting() else { throw ArsimError("video.mp4: \(writer.error?.localizedDescription ?? "cannot start writing")") }
        writer.startSession(atSourceTime: CMTime(value: CMTimeValue((frame.timestamp * 1e9).rounded()), timescale: 1_000_000_000))
        self.writer = writer
        self.input = input
        self.adaptor = adaptor
    }

    /// A copy of ARKit's camera buffer from the writer's pool. The encoder keeps the buffers it
    /// is given for a few frames; ARKit's own pool is small, and holding its buffers makes
    /// ARKit drop camera frames, so the writer gets copies (a memcpy per plane row).
    private func copy(_ source: CVPixelBuffer, pool: CVPixelBufferPool?) -> CVPixelBuffer? {
        guard let pool = pool, CVPixelBufferGetPlaneCount(source) > 0 else { return nil }
        var created: CVPixelBuffer?
        guard CVPixelBufferPoolCreatePixelBuffer(nil, pool, &created) == kCVReturnSuccess, let target = created else { return nil }
        CVPixelBufferLockBaseAddress(source, .readOnly)
        CVPixelBufferLockBaseAddress(target, [])
        defer {
            CVPixelBufferUnlockBaseAddress(target, [])
            CVPixelBufferUnlockBaseAddress(source, .readOnly)
        }
        for plane in 0..<CVPixelBufferGetPlaneCount(source) {
            guard let from = CVPixelBufferGetBaseAddressOfPlane(source, plane),
                  let to = CVPixelBufferGetBaseAddressOfPlane(target, plane) else { return nil }
            let fromStride = CVPixelBufferGetBytesPerRowOfPlane(source, plane)
            let toStride = CVPixelBufferGetBytesPerRowOfPlane(target, plane)
            let rowBytes = min(fromStride, toStride)
            for row in 0..<CVPixelBufferGetHeightOfPlane(source, plane) {
                memcpy(to + row * toStride, from + row * fromStride, rowBytes)
            }
        }
        CVBufferPropagateAttachments(source, target) // colour space / YCbCr matrix tags for the encoder
        return target
    }

    /// Finishes the video (AVAssetWriter writes the MP4 index) and closes frames.jsonl; `done`
    /// runs on an AVFoundation queue. No append may follow.
    func finish(_ done: @escaping (Error?) -> Void) {
        guard let writer = writer, let input = input else {
            return done(ArsimError("no camera frame was recorded"))
        }
        guard writer.status == .writing else { // failed or cancelled: nothing more to finish
            try? lines?.close()
            return done(ArsimError("video.mp4: \(writer.error?.localizedDescription ?? "writer status \(writer.status.rawValue)")"))
        }
        input.markAsFinished()
        writer.finishWriting { [lines] in
            var failure: Error?
            do {
                try lines?.synchronize()
                try lines?.close()
            } catch {
                failure = error
            }
            if writer.status != .completed {
                failure = ArsimError("video.mp4: \(writer.error?.localizedDescription ?? "not completed (\(writer.status.rawValue))")")
            }
            done(failure)
        }
    }
}
