import Foundation

/// An unpacked `arsim-scenario/1` folder (scenarios/README.md) in `Documents/arsim/<name>/`.
/// Not the validator (the harness validates before pushing): reads what playback needs.
public struct Scenario {
    public let dir: URL
    public let name: String
    public let video: String // file name, or "frames/"
    public let fps: Double
    public let camera: Intrinsics
    public let frameTimes: [Double]
    public let tracking: [String]
    public let trajectory: Trajectory
    public let anchors: [Anchor]
    public let expect: [String: Double]

    public var frameCount: Int { frameTimes.count }
    public var durationS: Double { frameTimes[frameTimes.count - 1] - frameTimes[0] + 1 / fps }

    public static func load(_ dir: URL) throws -> Scenario {
        let json = try readObject(dir.appendingPathComponent("scenario.json"), what: "scenario.json")
        func number(_ o: [String: Any], _ key: String) throws -> Double {
            guard let v = o[key] as? NSNumber else { throw ArsimError("scenario.json: \(key) missing or not a number") }
            return v.doubleValue
        }
        guard let name = json["name"] as? String, let video = json["video"] as? String,
              let cam = json["camera"] as? [String: Any] else {
            throw ArsimError("scenario.json: name, video and camera are required")
        }
        let camera = try Intrinsics(width: Int(number(cam, "width")), height: Int(number(cam, "height")),
                                    fx: number(cam, "fx"), fy: number(cam, "fy"),
                                    cx: number(cam, "cx"), cy: number(cam, "cy"))
        let anchors = try ((json["anchors"] as? [[String: Any]]) ?? []).map { a -> Anchor in
            func vec(_ key: String) -> [Double]? { (a[key] as? [NSNumber])?.map { $0.doubleValue } }
            guard let id = a["id"] as? String, let p = vec("position"), let s = vec("size") else {
                throw ArsimError("scenario.json: anchors need id, position and size")
            }
            return Anchor(id: id, position: p, rotation: vec("rotation") ?? [0, 0, 0, 1], size: s)
        }
        let expect = ((json["expect"] as? [String: NSNumber]) ?? [:]).mapValues { $0.doubleValue }
        let (times, tracking) = try readFramesCsv(dir.appendingPathComponent("frames.csv"))
        return try Scenario(dir: dir, name: name, video: video, fps: number(json, "fps"), camera: camera,
                            frameTimes: times, tracking: tracking,
                            trajectory: readTum(dir.appendingPathComponent("poses.txt")),
                            anchors: anchors, expect: expect)
    }

    static func lines(_ url: URL) throws -> [(Int, String)] {
        var text = try String(contentsOf: url, encoding: .utf8)
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        return text.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
            .map { ($0.offset + 1, $0.element.trimmingCharacters(in: .whitespacesAndNewlines)) }
            .filter { !$0.1.isEmpty }
    }

    public static func readFramesCsv(_ url: URL) throws -> ([Double], [String]) {
        let rows = try lines(url)
        guard let header = rows.first, header.1.replacingOccurrences(of: " ", with: "") == "index,timestamp,tracking" else {
            throw ArsimError("frames.csv line 1: expected header index,timestamp,tracking")
        }
        var times = [Double](), tracking = [String]()
        for (k, row) in rows.dropFirst().enumerated() {
            let cells = row.1.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count == 3, Int(cells[0]) == k, let t = Double(cells[1]) else {
                throw ArsimError("frames.csv line \(row.0): expected \(k),<timestamp>,<tracking>")
            }
            times.append(t)
            tracking.append(cells[2])
        }
        if times.isEmpty { throw ArsimError("frames.csv: no frames") }
        return (times, tracking)
    }

    public static func readTum(_ url: URL) throws -> Trajectory {
        var times = [Double](), poses = [Pose]()
        for (line, text) in try lines(url) where !text.hasPrefix("#") {
            let v = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { Double($0) }
            guard v.count == 8 else { throw ArsimError("poses.txt line \(line): expected 8 numbers") }
            times.append(v[0])
            poses.append(Pose(t: Array(v[1...3]), q: Array(v[4...7])))
        }
        return try Trajectory(times: times, poses: poses)
    }
}

/// The fields of a model card (simulator/zoo/card.py, `arsim-model-card/1`) playback needs.
public struct ModelCard {
    public var inLayout = "NCHW", inChannels = "RGB", inRange = [0.0, 1.0]
    public var outLayout = "NCHW", outChannels = "RGB", outRange = [0.0, 1.0]
    public var defaultSize = 256, sizeMultiple = 8, minSize = 64, maxSize = 1024
    public var parameters: Int?
    public var flops = [String: Double]()

    /// `models/<model>.json` (as the harness pushes it), else `<model>.card.json`, else defaults.
    public static func load(modelsDir: URL, model: String) throws -> ModelCard {
        var card = ModelCard()
        let candidates = ["\(model).json", "\(model).card.json"].map { modelsDir.appendingPathComponent($0) }
        guard let url = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else { return card }
        let json = try readObject(url, what: url.lastPathComponent)
        let input = json["input"] as? [String: Any] ?? [:], output = json["output"] as? [String: Any] ?? [:]
        card.inLayout = input["layout"] as? String ?? "NCHW"
        card.inChannels = input["channels"] as? String ?? "RGB"
        card.inRange = (input["range"] as? [NSNumber])?.map { $0.doubleValue } ?? [0, 1]
        card.outLayout = output["layout"] as? String ?? "NCHW"
        card.outChannels = output["channels"] as? String ?? "RGB"
        card.outRange = (output["range"] as? [NSNumber])?.map { $0.doubleValue } ?? [0, 1]
        card.defaultSize = (input["default_size"] as? NSNumber)?.intValue ?? 256
        card.sizeMultiple = (input["size_multiple"] as? NSNumber)?.intValue ?? 8
        card.minSize = (input["min_size"] as? NSNumber)?.intValue ?? 64
        card.maxSize = (input["max_size"] as? NSNumber)?.intValue ?? 1024
        card.parameters = (json["parameters"] as? NSNumber)?.intValue
        card.flops = ((json["flops"] as? [String: NSNumber]) ?? [:]).mapValues { $0.doubleValue }
        return card
    }

    /// card.py InputSpec.size_problem.
    public func sizeProblem(_ size: Int) -> String? {
        if size < minSize || size > maxSize { return "input size \(size) is outside \(minSize)..\(maxSize)" }
        if size % sizeMultiple != 0 { return "input size \(size) is not a multiple of \(sizeMultiple)" }
        return nil
    }
}

func readObject(_ url: URL, what: String) throws -> [String: Any] {
    guard let data = try? Data(contentsOf: url) else { throw ArsimError("\(what): cannot read \(url.path)") }
    guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw ArsimError("\(what): expected a JSON object")
    }
    return object
}
