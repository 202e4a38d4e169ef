import ArsimCore
import ARKit
import os.log
import UIKit

/// Records a session (CONTRACT §6, iOS) into Documents/arsim/recordings/<name>/ when launched
/// with `-arsim.record <name>` (RecordParams; AppDelegate picks this controller). An ARSession
/// (world tracking, shown through an ARSCNView so the person recording can aim) delivers its
/// frames on a serial queue to SessionRecorder. Lines as on Android, os_log + stdout:
/// `ARSIM recording <abs folder>` at the first recorded frame, `ARSIM recorded <abs folder>
/// <frames> <written>` once video.mp4 and frames.jsonl are complete (frames: ARFrames seen while
/// recording; written: video frames = lines), or `ARSIM error <message>`. The recording ends on
/// a tap, after `-arsim.record_seconds`, when the app stops being active once frames are
/// recorded (home, app switcher, Control Center, a call: the encoder is not usable in the
/// background) or when ARKit interrupts the session. Afterwards the app stays open, idle.
final class RecordingViewController: UIViewController, ARSessionDelegate {
    private enum State { case idle, recording, finishing, done }

    private static let log = OSLog(subsystem: "dev.arsim.bench", category: "ARSIM")
    private let sceneView = ARSCNView()
    private let label = UILabel()
    private let queue = DispatchQueue(label: "dev.arsim.bench.recording") // ARSession delegate queue
    private var state = State.idle // on `queue`, except before the session runs
    private var recorder: SessionRecorder? // on `queue`
    private var seconds: Int? // -arsim.record_seconds, counted from the first recorded frame
    private var observers = [NSObjectProtocol]()
    private let root = FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0].appendingPathComponent("arsim")

    private func say(_ line: String) {
        let text = "ARSIM \(line)"
        print(text)
        os_log("%{public}@", log: Self.log, type: .default, text)
    }

    private func show(_ text: String) {
        DispatchQueue.main.async { self.label.text = text }
    }

    override func viewDidLoad() {
        super.viewDidLoad()
        view.backgroundColor = .black
        sceneView.frame = view.bounds
        sceneView.autoresizingMask = [.flexibleWidth, .flexibleHeight]
        view.addSubview(sceneView)
        label.frame = view.bounds.insetBy(dx: 24, dy: 16)
        label.autoresizingMask = [.flexibleWidth, .flexibleHeight]
        label.textColor = .white
        label.shadowColor = .black
        label.numberOfLines = 0
        label.font = .monospacedDigitSystemFont(ofSize: 17, weight: .semibold)
        label.textAlignment = .left
        view.addSubview(label)
        view.addGestureRecognizer(UITapGestureRecognizer(target: self, action: #selector(tapped)))
        observers.append(NotificationCenter.default.addObserver(forName: UIApplication.willResignActiveNotification,
                                                                object: nil, queue: .main) { [weak self] _ in self?.stopIfStarted() })
    }

    override func viewDidAppear(_ animated: Bool) {
        super.viewDidAppear(animated)
        guard recorder == nil, state == .idle else { return }
        let params: RecordParams
        do {
            params = try RecordParams.parse(UserDefaults.standard.volatileDomain(forName: UserDefaults.argumentDomain))
        } catch {
            return fail("\(error)")
        }
        guard ARWorldTrackingConfiguration.isSupported else { return fail("ARKit world tracking is not supported on this device") }
        let folder = root.appendingPathComponent("recordings/\(params.name)")
        if FileManager.default.fileExists(atPath: folder.path) {
            return fail("recording \(params.name) exists: \(folder.path) (pick another arsim.record name)")
        }
        let version = Bundle.main.infoDictionary?["CFBundleShortVersionString"] as? String ?? "0"
        recorder = SessionRecorder(folder: folder, rotationCW: Self.rotationCW(view.window?.windowScene?.interfaceOrientation),
                                   device: Self.machine(), app: "arsim bench \(version)")
        seconds = params.seconds
        state = .recording
        show("REC \(params.name): starting…")
        sceneView.session.delegateQueue = queue
        sceneView.session.delegate = self
        sceneView.session.run(ARWorldTrackingConfiguration(), options: [.resetTracking, .removeExistingAnchors])
    }

    /// The clockwise turn that shows ARKit's captured image (landscape right, the sensor's
    /// orientation) upright in `orientation`: the MP4 rotation metadata.
    static func rotationCW(_ orientation: UIInterfaceOrientation?) -> Int {
        switch orientation {
        case .portrait: return 90
        case .landscapeLeft: return 180
        case .portraitUpsideDown: return 270
        default: return 0 // .landscapeRight, or unknown
        }
    }

    static func machine() -> String {
        var system = utsname()
        uname(&system)
        return withUnsafeBytes(of: &system.machine) { bytes in
            String(decoding: bytes.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }

    // MARK: ARSessionDelegate (on `queue`)

    func session(_ session: ARSession, didUpdate frame: ARFrame) {
        guard state == .recording, let recorder = recorder else { return }
        let wasStarted = recorder.started
        do {
            try recorder.append(frame)
        } catch {
            return finish(error: "\(error)")
        }
        if !wasStarted && recorder.started {
            say("recording \(recorder.folder.path)")
            if let seconds = seconds {
                queue.asyncAfter(deadline: .now() + .seconds(seconds)) { [weak self] in self?.finish() }
            }
        }
        if recorder.frames % 15 == 0 {
            show("REC \(recorder.folder.lastPathComponent)  \(recorder.written) frames  (\(recorder.skipped) skipped)\ntap to stop")
        }
    }

    func session(_ session: ARSession, didFailWithError error: Error) {
        finish(error: "ARKit: \(error.localizedDescription)")
    }

    func sessionWasInterrupted(_ session: ARSession) {
        if recorder?.started == true { finish() } // the camera is gone; what was recorded is kept
    }

    // MARK: the end

    @objc private func tapped() { stop() }

    private func stop() { queue.async { self.finish() } }

    /// Leaving the active state ends a recording that has frames; before the first frame it is
    /// most likely the camera permission alert, which must not end it.
    private func stopIfStarted() { queue.async { if self.recorder?.started == true { self.finish() } } }

    /// On `queue`, once: no more appends, ARKit paused, the files finished; `error` makes it an
    /// `ARSIM error` (the files are still finished, so what was recorded stays readable).
    private func finish(error: String? = nil) {
        guard state == .recording else { return }
        state = .finishing
        DispatchQueue.main.async { self.sceneView.session.pause() }
        guard let recorder = recorder else { return }
        recorder.finish { [self] finishError in
            queue.async {
                self.state = .done
                if let message = error ?? finishError.map({ "\($0)" }) {
                    self.say("error recording: \(message.replacingOccurrences(of: "\n", with: " "))")
                    self.show("recording failed: \(message)")
                } else {
                    self.say("recorded \(recorder.folder.path) \(recorder.frames) \(recorder.written)")
                    self.show("recorded \(recorder.written) frames\n\(recorder.folder.path)")
                }
            }
        }
    }

    /// `ARSIM error <message>` before anything was recorded.
    private func fail(_ message: String) {
        state = .done
        say("error \(message.replacingOccurrences(of: "\n", with: " "))")
        show(message)
    }
}
