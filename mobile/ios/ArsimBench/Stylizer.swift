import ArsimCore
import CoreGraphics
import Foundation
import QuartzCore
import onnxruntime_objc

/// One ONNX Runtime session: preprocess per the model card (square resize of the whole frame,
/// channel order, value range, layout), `session.run` (timed alone: CONTRACT §4 inference_ms),
/// postprocess to a CGImage. Backends (RunParams.backends): `coreml` = CoreML EP, all compute
/// units (ANE/GPU/CPU, Core ML's choice); `gpu-fp16` = CoreML EP limited to CPU + GPU (Core ML
/// runs FP16 on the GPU); `cpu` = ORT's own CPU EP. Used from the one inference thread only.
final class Stylizer {
    let size: Int
    private let card: ModelCard
    private let env: ORTEnv
    private let session: ORTSession
    private let inputName: String
    private let outputName: String
    private var rgba: [UInt8]
    private let input: NSMutableData

    init(modelPath: String, card: ModelCard, size: Int, backend: String) throws {
        self.size = size
        self.card = card
        env = try ORTEnv(loggingLevel: .warning)
        let options = try ORTSessionOptions()
        switch backend {
        case "cpu":
            break
        case "coreml", "gpu-fp16":
            let coreml = ORTCoreMLExecutionProviderOptions()
            coreml.useCPUAndGPU = backend == "gpu-fp16"
            coreml.createMLProgram = true // ML Program: FP16 on GPU/ANE
            try options.appendCoreMLExecutionProvider(with: coreml)
        default:
            throw ArsimError("arsim.backend: unknown backend '\(backend)'")
        }
        session = try ORTSession(env: env, modelPath: modelPath, sessionOptions: options)
        inputName = try session.inputNames()[0]
        outputName = try session.outputNames()[0]
        rgba = [UInt8](repeating: 0, count: size * size * 4)
        input = NSMutableData(length: 4 * 3 * size * size)!
    }

    /// The stylized picture and the session.run bounds (CACurrentMediaTime seconds).
    func stylize(_ image: CGImage) throws -> (image: CGImage, runStart: Double, runEnd: Double) {
        let n = size
        rgba.withUnsafeMutableBytes { buf in // bilinear resize to n x n, RGBX8, row 0 = top
            let ctx = CGContext(data: buf.baseAddress, width: n, height: n, bitsPerComponent: 8, bytesPerRow: 4 * n,
                                space: CGColorSpaceCreateDeviceRGB(), bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue)!
            ctx.interpolationQuality = .medium
            ctx.draw(image, in: CGRect(x: 0, y: 0, width: n, height: n))
        }
        let lo = Float(card.inRange[0])
        let scale = Float((card.inRange[1] - card.inRange[0]) / 255)
        let bgr = card.inChannels == "BGR", nhwc = card.inLayout == "NHWC"
        let plane = n * n
        let f = input.mutableBytes.assumingMemoryBound(to: Float.self)
        for i in 0..<plane {
            let r = Float(rgba[4 * i]), g = Float(rgba[4 * i + 1]), b = Float(rgba[4 * i + 2])
            let c0 = lo + scale * (bgr ? b : r), c1 = lo + scale * g, c2 = lo + scale * (bgr ? r : b)
            if nhwc {
                f[3 * i] = c0; f[3 * i + 1] = c1; f[3 * i + 2] = c2
            } else {
                f[i] = c0; f[plane + i] = c1; f[2 * plane + i] = c2
            }
        }
        let shape = (nhwc ? [1, n, n, 3] : [1, 3, n, n]).map { NSNumber(value: $0) }
        let tensor = try ORTValue(tensorData: input, elementType: .float, shape: shape)
        let start = CACurrentMediaTime()
        let outputs = try session.run(withInputs: [inputName: tensor], outputNames: [outputName], runOptions: nil)
        let end = CACurrentMediaTime()
        guard let out = outputs[outputName] else { throw ArsimError("model: no output '\(outputName)'") }
        return (try picture(out), start, end)
    }

    private func picture(_ out: ORTValue) throws -> CGImage {
        let shape = try out.tensorTypeAndShapeInfo().shape.map { $0.intValue }
        let nhwc = card.outLayout == "NHWC"
        let h = nhwc ? shape[1] : shape[2], w = nhwc ? shape[2] : shape[3]
        let data = try out.tensorData()
        let v = data.mutableBytes.assumingMemoryBound(to: Float.self)
        let lo = Float(card.outRange[0]), scale = Float(255 / (card.outRange[1] - card.outRange[0]))
        let bgr = card.outChannels == "BGR"
        let plane = w * h
        var bytes = [UInt8](repeating: 255, count: 4 * plane)
        for i in 0..<plane {
            for c in 0..<3 { // rounded and saturated to 0...255, as stylize.py
                let x = v[nhwc ? 3 * i + c : c * plane + i]
                bytes[4 * i + (bgr ? 2 - c : c)] = UInt8(max(0, min(255, ((x - lo) * scale).rounded())))
            }
        }
        let provider = CGDataProvider(data: Data(bytes) as CFData)!
        return CGImage(width: w, height: h, bitsPerComponent: 8, bitsPerPixel: 32, bytesPerRow: 4 * w,
                       space: CGColorSpaceCreateDeviceRGB(), bitmapInfo: CGBitmapInfo(rawValue: CGImageAlphaInfo.noneSkipLast.rawValue),
                       provider: provider, decode: nil, shouldInterpolate: true, intent: .defaultIntent)!
    }
}
