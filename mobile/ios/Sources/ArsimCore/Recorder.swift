import Foundation

/// The run's timeline: frames[], display[], memory samples and oom_events on one clock
/// (CACurrentMediaTime seconds; t = 0 at the first played frame's capture). Thread-safe. After
/// `freeze()` (the run's end) late events are ignored.
public final class Recorder {
    private let lock = NSLock()
    private var t0: Double?
    private var frozen = false
    public private(set) var frames = [FrameRecord]()
    public private(set) var display = [DisplayEntry]()
    public private(set) var oomEvents = [[String: Any]]()
    public private(set) var memoryT = [Double](), memoryMb = [Double]()
    public private(set) var memoryPeakMb: Double?

    public init() {}

    private func locked<T>(_ body: () -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body()
    }

    private func rel(_ now: Double) -> Double { t0.map { now - $0 } ?? 0 }

    public func t(_ now: Double) -> Double { locked { rel(now) } }

    public func capture(_ now: Double, tracking: String) -> FrameRecord {
        locked {
            if t0 == nil { t0 = now }
            let rec = FrameRecord(index: frames.count, tCapture: rel(now), tracking: tracking)
            if !frozen { frames.append(rec) }
            return rec
        }
    }

    public func inferred(_ rec: FrameRecord, start: Double, end: Double, size: Int) {
        locked {
            guard !frozen else { return }
            rec.tInferStart = rel(start)
            rec.tInferEnd = rel(end)
            rec.inputSize = size
            rec.stylized = true
        }
    }

    public func replaced(_ rec: FrameRecord) { locked { if !frozen { rec.replaced = true } } }

    public func displayed(_ rec: FrameRecord, at now: Double) {
        locked {
            guard !frozen, rec.tDisplay == nil else { return }
            let t = rel(now)
            rec.tDisplay = t
            display.append(DisplayEntry(t: t, frame: rec.index))
        }
    }

    public func memory(_ now: Double, mb: Double) {
        locked {
            guard !frozen else { return }
            memoryT.append(rel(now))
            memoryMb.append(mb)
            memoryPeakMb = max(memoryPeakMb ?? mb, mb)
        }
    }

    /// CONTRACT §5 memory warning; returns t for the `ARSIM oom` line.
    public func oom(_ now: Double, mb: Double?) -> Double {
        locked {
            let t = rel(now)
            if !frozen {
                oomEvents.append(["t": t, "memory_mb": mb.map { $0 as Any } ?? NSNull(), "limit_mb": NSNull(),
                                  "cause": "memory_warning", "source": "os"])
            }
            return t
        }
    }

    public func freeze() { locked { frozen = true } }
    public var framesDone: Int { locked { frames.count } }
}
