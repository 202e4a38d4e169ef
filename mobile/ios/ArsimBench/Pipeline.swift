import ArsimCore
import CoreGraphics
import Foundation

/// A camera frame on its way through the pipeline, then its stylized picture.
struct Job {
    let record: FrameRecord
    let image: CGImage
    let pose: Pose
}

/// Latest-frame-wins with one inference in flight (the seed's mobile design, as the simulator's
/// scheduler): a new frame replaces a frame still waiting (that one is `replaced`: never
/// stylized); one inference thread takes the waiting frame whenever it is free.
final class Pipeline {
    private let cond = NSCondition()
    private var pending: Job?
    private var busy = false
    private var running = true
    private let stylizer: Stylizer
    private let recorder: Recorder
    private let onResult: (Job) -> Void
    private let onError: (Error) -> Void
    private let exited = DispatchSemaphore(value: 0)

    init(stylizer: Stylizer, recorder: Recorder, onResult: @escaping (Job) -> Void, onError: @escaping (Error) -> Void) {
        self.stylizer = stylizer
        self.recorder = recorder
        self.onResult = onResult
        self.onError = onError
        let thread = Thread { [self] in loop() }
        thread.name = "arsim-infer"
        thread.qualityOfService = .userInteractive
        thread.start()
    }

    private func locked<T>(_ body: () -> T) -> T {
        cond.lock()
        defer { cond.unlock() }
        return body()
    }

    /// arsim.realtime=false: waits until the worker is idle (frames one at a time, none replaced).
    func awaitIdle() {
        locked { while (pending != nil || busy) && running { cond.wait() } }
    }

    func submit(_ job: Job) {
        locked {
            guard running else { recorder.replaced(job.record); return }
            if let old = pending { recorder.replaced(old.record) }
            pending = job
            cond.broadcast()
        }
    }

    private func loop() {
        defer { exited.signal() }
        while true {
            let next: Job? = locked {
                while pending == nil && running { cond.wait() }
                guard running, let job = pending else { return nil }
                pending = nil
                busy = true
                cond.broadcast()
                return job
            }
            guard let job = next else { return }
            do {
                let out = try stylizer.stylize(job.image)
                recorder.inferred(job.record, start: out.runStart, end: out.runEnd, size: stylizer.size)
                onResult(Job(record: job.record, image: out.image, pose: job.pose))
            } catch {
                onError(error)
                locked { busy = false; running = false; cond.broadcast() }
                return
            }
            locked { busy = false; cond.broadcast() }
        }
    }

    /// Takes no more frames (a frame still waiting counts as replaced). Does not block.
    func stop() {
        locked {
            running = false
            if let p = pending { recorder.replaced(p.record) }
            pending = nil
            cond.broadcast()
        }
    }

    /// Waits for the inference in flight (after `stop`).
    func join() { _ = exited.wait(timeout: .now() + 10) }
}
