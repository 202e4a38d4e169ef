import ArsimCore
import AVFoundation
import os.log
import UIKit

/// Plays one scenario through the stylization pipeline and measures itself (mobile/CONTRACT.md):
/// launch arguments of §2 from UserDefaults' argument domain, §3 `ARSIM` lines on os_log and
/// stdout, report.json (§4) written atomically to Documents/arsim/runs/<run_id>/. After the
/// report (or an error) the app stays open, idle; the harness terminates it.
final class PlaybackViewController: UIViewController {
    private static let log = OSLog(subsystem: "dev.arsim.bench", category: "ARSIM")
    private let recorder = Recorder()
    private let imageLayer = CALayer()
    private let anchorLayer = CAShapeLayer()
    private let state = NSLock()
    private var started = false, ended = false
    private var latest: Job? // newest picture not yet on screen (under `state`)
    private var params: RunParams?
    private var scenario: Scenario?
    private var info: RunInfo?
    private var pipeline: Pipeline?
    private var link: CADisplayLink?
    private var memoryTimer: DispatchSourceTimer?
    private var total = 0
    private var observers = [NSObjectProtocol]()
    private let root = FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0].appendingPathComponent("arsim")

    private func say(_ line: String) {
        let text = "ARSIM \(line)"
        print(text)
        os_log("%{public}@", log: Self.log, type: .default, text)
    }

    private var isEnded: Bool { state.lock(); defer { state.unlock() }; return ended }

    override func viewDidLoad() {
        super.viewDidLoad()
        view.backgroundColor = .black
        imageLayer.contentsGravity = .resize
        anchorLayer.strokeColor = UIColor(red: 1, green: 64 / 255, blue: 160 / 255, alpha: 1).cgColor // compose.py magenta
        anchorLayer.fillColor = nil
        anchorLayer.masksToBounds = true
        view.layer.addSublayer(imageLayer)
        view.layer.addSublayer(anchorLayer)
        let center = NotificationCenter.default
        observers.append(center.addObserver(forName: UIApplication.didReceiveMemoryWarningNotification, object: nil, queue: .main) { [weak self] _ in self?.memoryWarning() })
        observers.append(center.addObserver(forName: UIApplication.didEnterBackgroundNotification, object: nil, queue: .main) { [weak self] _ in self?.stopped() })
    }

    override func viewDidAppear(_ animated: Bool) {
        super.viewDidAppear(animated)
        guard params == nil, !isEnded else { return }
        do {
            params = try RunParams.parse(UserDefaults.standard.volatileDomain(forName: UserDefaults.argumentDomain))
        } catch {
            return fail("\(error)")
        }
        let device = deviceInfo()
        Thread { [self] in run(device) }.start()
    }

    /// Set-up, warm-up, playback and the end of the run, off the main thread.
    private func run(_ device: [String: Any]) {
        guard let params = params else { return }
        do {
            let scDir = root.appendingPathComponent(params.scenario)
            guard FileManager.default.fileExists(atPath: scDir.appendingPathComponent("scenario.json").path) else {
                return fail("unknown scenario \(params.scenario): no \(scDir.path)/scenario.json")
            }
            let sc = try Scenario.load(scDir)
            let modelURL = root.appendingPathComponent("models/\(params.model).onnx")
            guard FileManager.default.fileExists(atPath: modelURL.path) else { return fail("unknown model \(params.model): no \(modelURL.path)") }
            let card = try ModelCard.load(modelsDir: modelURL.deletingLastPathComponent(), model: params.model)
            let size = params.inputSize ?? card.defaultSize
            if let problem = card.sizeProblem(size) { return fail("arsim.input_size: \(problem)") }
            let stylizer = try Stylizer(modelPath: modelURL.path, card: card, size: size, backend: params.backend)
            let ramMb = device["ram_mb"] as? Double ?? 0
            let budgets = try Verdict.budgets(deviceBudgetMb: 0.2 * ramMb, expect: sc.expect) // 20 % of RAM, as the profiles
            let version = Bundle.main.infoDictionary?["CFBundleShortVersionString"] as? String ?? "0"
            info = RunInfo(params: params, scenario: sc, modelPath: modelURL.path, card: card, inputSize: size,
                           generatedBy: "arsim-bench-ios \(version)", device: device,
                           displayHz: device["display_hz"] as? Double ?? 60, budgets: budgets)
            scenario = sc
            total = sc.frameCount

            let grey = CGContext(data: nil, width: sc.camera.width, height: sc.camera.height, bitsPerComponent: 8, bytesPerRow: 0,
                                 space: CGColorSpaceCreateDeviceRGB(), bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue)!
            grey.setFillColor(gray: 0.5, alpha: 1)
            grey.fill(CGRect(x: 0, y: 0, width: sc.camera.width, height: sc.camera.height))
            let warmup = grey.makeImage()!
            for _ in 0..<params.warmupFrames { _ = try stylizer.stylize(warmup) } // before measuring (§2)

            let frames = try ScenarioFrames(sc)
            let pipe = Pipeline(stylizer: stylizer, recorder: recorder,
                                onResult: { [weak self] job in self?.show(job) },
                                onError: { [weak self] error in self?.fail("inference failed: \(error)") })
            pipeline = pipe
            DispatchQueue.main.sync { startDisplay() }
            say("start \(params.runId) \(total)")
            startMonitors()
            try play(sc, frames, pipe, realtime: params.realtime)
            if isEnded { return }
            let end: Double
            if params.realtime { // as the simulator: one camera interval after the last frame
                let last = recorder.frames.last?.tCapture ?? 0
                let wait = last + 1 / sc.fps - recorder.t(CACurrentMediaTime())
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
                end = CACurrentMediaTime()
            } else { // as fast as possible: until the last result is on screen
                pipe.awaitIdle()
                let until = CACurrentMediaTime() + 0.5
                while hasPending() && CACurrentMediaTime() < until { Thread.sleep(forTimeInterval: 0.005) }
                end = CACurrentMediaTime()
            }
            finishRun(end, complete: true, reason: nil)
        } catch {
            fail("\(error)")
        }
    }

    /// Frame i is released at start + (t_i − t_0) (real time) or when the pipeline is idle.
    private func play(_ sc: Scenario, _ frames: ScenarioFrames, _ pipe: Pipeline, realtime: Bool) throws {
        var start = 0.0
        var image = try frames.nextImage() // decoded one ahead of its release
        for i in 0..<sc.frameCount {
            if isEnded { return }
            guard let current = image else { throw ArsimError("\(sc.video) ended at frame \(i) of \(sc.frameCount)") }
            if i == 0 { start = CACurrentMediaTime() }
            if realtime {
                let wait = start + sc.frameTimes[i] - sc.frameTimes[0] - CACurrentMediaTime()
                if wait > 0 { Thread.sleep(forTimeInterval: wait) }
            } else {
                pipe.awaitIdle()
            }
            let rec = recorder.capture(CACurrentMediaTime(), tracking: sc.tracking[i])
            pipe.submit(Job(record: rec, image: current, pose: sc.trajectory.at(sc.frameTimes[i])))
            image = i + 1 < sc.frameCount ? try frames.nextImage() : nil
        }
    }

    // MARK: display

    private func show(_ job: Job) {
        state.lock()
        latest = job // a picture replaced before a refresh drew it is never shown
        state.unlock()
    }

    private func hasPending() -> Bool { state.lock(); defer { state.unlock() }; return latest != nil }

    private func startDisplay() {
        link = CADisplayLink(target: self, selector: #selector(refresh(_:)))
        link?.add(to: .main, forMode: .common)
    }

    /// Draws the newest picture and the anchors (projected with the stylized frame's pose, not
    /// while tracking is `lost`, compose.py); present time = this refresh's targetTimestamp.
    @objc private func refresh(_ link: CADisplayLink) {
        state.lock()
        let job = latest
        latest = nil
        state.unlock()
        guard let job = job, let sc = scenario else { return }
        let k = sc.camera
        let rect = AVMakeRect(aspectRatio: CGSize(width: k.width, height: k.height), insideRect: view.bounds)
        let s = rect.width / CGFloat(k.width)
        let path = CGMutablePath()
        if job.record.tracking != "lost" {
            for anchor in sc.anchors {
                for seg in Projection.anchorSegments(anchor, job.pose, k) {
                    path.move(to: CGPoint(x: CGFloat(seg.0) * s, y: CGFloat(seg.1) * s))
                    path.addLine(to: CGPoint(x: CGFloat(seg.2) * s, y: CGFloat(seg.3) * s))
                }
            }
        }
        CATransaction.begin()
        CATransaction.setDisableActions(true) // no implicit animation: the picture appears at once
        imageLayer.frame = rect
        imageLayer.contents = job.image
        anchorLayer.frame = rect
        anchorLayer.lineWidth = max(1, (min(rect.width, rect.height) / 240).rounded())
        anchorLayer.path = path
        CATransaction.commit()
        recorder.displayed(job.record, at: link.targetTimestamp)
    }

    // MARK: monitoring

    /// Progress (§3, every 0.5 s) and memory (task_vm_info.phys_footprint, ~1 Hz, MiB).
    private func startMonitors() {
        state.lock()
        started = true
        state.unlock()
        let timer = DispatchSource.makeTimerSource(queue: .global(qos: .utility))
        var tick = 0
        timer.schedule(deadline: .now(), repeating: 0.5)
        timer.setEventHandler { [weak self] in
            guard let self = self, !self.isEnded else { return }
            self.say("progress \(self.recorder.framesDone)/\(self.total)")
            if tick % 2 == 0, let mb = Self.footprintMB() { self.recorder.memory(CACurrentMediaTime(), mb: mb) }
            tick += 1
        }
        timer.resume()
        memoryTimer = timer
    }

    static func footprintMB() -> Double? {
        var info = task_vm_info_data_t()
        var count = mach_msg_type_number_t(MemoryLayout<task_vm_info_data_t>.size / MemoryLayout<integer_t>.size)
        let kr = withUnsafeMutablePointer(to: &info) { pointer in
            pointer.withMemoryRebound(to: integer_t.self, capacity: Int(count)) {
                task_info(mach_task_self_, task_flavor_t(TASK_VM_INFO), $0, &count)
            }
        }
        return kr == KERN_SUCCESS ? Double(info.phys_footprint) / 1_048_576 : nil
    }

    /// §5 memory warning: log, record, carry on.
    private func memoryWarning() {
        state.lock()
        let live = started && !ended
        state.unlock()
        guard live else { return }
        let mb = Self.footprintMB()
        if let mb = mb { recorder.memory(CACurrentMediaTime(), mb: mb) }
        let t = recorder.oom(CACurrentMediaTime(), mb: mb)
        let mbText = mb.map { String(format: "%.1f", $0) } ?? "nan"
        say("oom " + String(format: "%.3f", t) + " " + mbText)
    }

    /// §5: an orderly stop (the app leaves the foreground) before the end writes a partial report.
    private func stopped() {
        state.lock()
        let live = started && !ended
        state.unlock()
        guard live else { return }
        let task = UIApplication.shared.beginBackgroundTask(expirationHandler: nil)
        finishRun(CACurrentMediaTime(), complete: false, reason: "stopped")
        UIApplication.shared.endBackgroundTask(task)
    }

    // MARK: the end

    /// Once: freeze the timeline at `end`, write the report, `ARSIM done <path>`.
    private func finishRun(_ end: Double, complete: Bool, reason: String?) {
        state.lock()
        if ended { state.unlock(); return }
        ended = true
        state.unlock()
        pipeline?.stop() // a frame still waiting was never stylized
        if let mb = Self.footprintMB() { recorder.memory(CACurrentMediaTime(), mb: mb) }
        recorder.freeze()
        memoryTimer?.cancel()
        say("progress \(recorder.framesDone)/\(total)")
        do {
            guard let info = info else { throw ArsimError("no run to report") }
            let report = try Report.build(info, recorder, tEnd: recorder.t(end), complete: complete, reason: reason)
            let url = try Report.write(report, runDir: root.appendingPathComponent("runs/\(info.params.runId)"))
            say("done \(url.path)")
        } catch {
            say("error cannot write the report: \(error)")
        }
        let pipe = pipeline
        DispatchQueue.global().async { pipe?.join() }
        DispatchQueue.main.async { self.link?.invalidate() }
    }

    /// `ARSIM error <message>`, no report (§2, §3).
    private func fail(_ message: String) {
        state.lock()
        if ended { state.unlock(); return }
        ended = true
        state.unlock()
        say("error \(message.replacingOccurrences(of: "\n", with: " "))")
        pipeline?.stop()
        memoryTimer?.cancel()
        DispatchQueue.main.async { self.link?.invalidate() }
    }

    private func deviceInfo() -> [String: Any] {
        var system = utsname()
        uname(&system)
        let machine = withUnsafeBytes(of: &system.machine) { bytes in
            String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return [
            "id": params?.device ?? machine, // arsim profile id when given (proposed arsim.device)
            "name": "Apple \(machine)",
            "display_hz": Double(UIScreen.main.maximumFramesPerSecond),
            "ram_mb": (Double(ProcessInfo.processInfo.physicalMemory) / 1_048_576).rounded(),
            "os": "iOS \(UIDevice.current.systemVersion)",
        ]
    }
}
