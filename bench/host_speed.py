"""Host speed (issue 14): the flicker metric per displayed pair, a timing-only run's wall time,
and the stylizer's achieved GFLOP/s against this CPU's fp32 peak, each as ratios of runs
interleaved round by round (this shared host's speed drifts by 2x from minute to minute).

    python bench/host_speed.py --out bench/host_speed.json

- flicker: ``FlickerMeter.add`` on 40 consecutive orbit-desk pairs (640x360, toon-classic
  outputs), each pass in a fresh process, rounds of four passes: the pre-issue computation
  (bench/flicker_reference.py) with glibc's default allocator (the "before"), the same with
  the allocator policy of simulator/host_memory.py, the current meter with the default
  allocator, and the current meter as it runs (the "after"). Per pass, the median ms of the
  40 pairs; per round, after / before.
- timing-only: ``arsim run scenarios/orbit-desk --device redmi-note-10 --timing-only`` as a
  new process, after one warm-up run (frame count and model figures cached), interleaved with
  a bare ``python -c "import numpy, cv2"`` (this host's speed at that moment) and with a run
  in an empty cache folder (a first run ever); medians of seven rounds.
- peak: a 2048 x 2048 fp32 matrix product through numpy's BLAS, best of five, with one thread
  and with all cores (GFLOP/s = 2 n^3 / s), interleaved with AnimeGANv2's generator at 256
  (its FLOPs from the graph) on each host runtime present, median of five calls a round; and
  the nominal peak from the CPU's flags and clock (cores x GHz x FLOPs per cycle).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FLICKER_PAIRS = 40
# (code, allocator) of the flicker passes, in the order a round runs them
FLICKER_VARIANTS = (("reference", "default"), ("reference", "tuned"), ("meter", "default"),
                    ("meter", "tuned"))


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def _flicker_frames(path: Path) -> None:
    """The orbit-desk frames and their toon-classic outputs, for the passes to load."""
    from simulator.pipeline.stylize import Stylizer
    from simulator.scenario.load import load_scenario
    from simulator.zoo.registry import resolve_model

    with load_scenario(ROOT / "scenarios" / "orbit-desk") as scenario:
        frames = [f.image for _, f in zip(range(FLICKER_PAIRS + 4), scenario.frames(),
                                          strict=False)]
    stylizer = Stylizer(resolve_model("toon-classic"), 256)
    np.savez(path, frames=np.stack(frames), outputs=np.stack([stylizer.stylize(f)
                                                              for f in frames]))


def flicker_pass(frames_path: Path, code: str, allocator: str) -> dict:
    """One pass in this (fresh) process: three warm-up pairs, then the 40 pairs timed one by
    one; ms per pair (median and mean)."""
    if allocator == "tuned":
        from simulator.host_memory import keep_freed_memory

        assert keep_freed_memory()
    data = np.load(frames_path)
    frames, outputs = data["frames"], data["outputs"]
    if code == "reference":
        sys.path.insert(0, str(ROOT / "bench"))
        from flicker_reference import ReferenceMeter

        meter = ReferenceMeter()

        def add(i: int) -> None:
            meter.add(frames[i], outputs[i])
    else:
        from simulator.metrics.flicker import FlickerMeter

        flicker = FlickerMeter()

        def add(i: int) -> None:
            flicker.add(i / 30, frames[i], outputs[i])
    for i in range(4):
        add(i)
    times = []
    for i in range(4, 4 + FLICKER_PAIRS):
        started = time.perf_counter()
        add(i)
        times.append(1000 * (time.perf_counter() - started))
    return {"median_ms": statistics.median(times), "mean_ms": statistics.mean(times)}


def flicker_ms(rounds: int = 7) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        frames_path = Path(tmp) / "frames.npz"
        _flicker_frames(frames_path)
        passes: dict[str, list[float]] = {f"{c}/{a}": [] for c, a in FLICKER_VARIANTS}
        for _ in range(rounds):
            for code, allocator in FLICKER_VARIANTS:
                env = {**os.environ, "ARSIM_MALLOC": "default" if allocator == "default"
                       else "tuned"}
                done = subprocess.run(
                    [sys.executable, __file__, "--flicker-pass", code, allocator,
                     str(frames_path)], env=env, check=True, capture_output=True, text=True)
                passes[f"{code}/{allocator}"].append(json.loads(done.stdout)["median_ms"])
    before, after = passes["reference/default"], passes["meter/tuned"]
    return {
        "frame": [360, 640, 3], "pairs_per_pass": FLICKER_PAIRS, "rounds": rounds,
        "ms_per_pair": {name: spread(values) for name, values in passes.items()},
        "after_over_before": spread([a / b for a, b in zip(after, before, strict=True)]),
        "code_only": spread([a / b for a, b in zip(passes["meter/default"], before,
                                                    strict=True)]),
        "allocator_only": spread([a / b for a, b in zip(passes["reference/tuned"], before,
                                                         strict=True)]),
        "target_ms": 4.0,
    }


def _wall(command: list[str], env: dict | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def timing_only_s(rounds: int = 7) -> dict:
    run = [sys.executable, "-m", "simulator", "run", str(ROOT / "scenarios" / "orbit-desk"),
           "--device", "redmi-note-10", "--timing-only", "--quiet",
           "--out", tempfile.mkdtemp(prefix="arsim-host-speed-")]
    baseline = [sys.executable, "-c", "import numpy, cv2"]
    subprocess.run(run, check=True, capture_output=True)  # warm-up: caches filled
    walls: dict[str, list[float]] = {"timing_only": [], "first_run": [], "import_numpy_cv2": []}
    for _ in range(rounds):
        walls["import_numpy_cv2"].append(_wall(baseline))
        walls["timing_only"].append(_wall(run))
        with tempfile.TemporaryDirectory() as empty:  # no cached figures nor frame counts
            walls["first_run"].append(_wall(run, {**os.environ, "ARSIM_CACHE_DIR": empty}))
    ratio = [t / b for t, b in zip(walls["timing_only"], walls["import_numpy_cv2"],
                                   strict=True)]
    return {"s": {name: spread(values) for name, values in walls.items()},
            "timing_only_over_import": spread(ratio), "target_s": 0.8}


SGEMM = """
import time, numpy as np
n = 2048
a = np.random.default_rng(0).random((n, n), dtype=np.float32)
b = np.random.default_rng(1).random((n, n), dtype=np.float32)
best = min((lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range(5))
print(2 * n**3 / best / 1e9)
"""


def sgemm_gflops(threads: int | None) -> float:
    """Best of five 2048^3 fp32 products through numpy's BLAS in a fresh process, its thread
    count set by the BLAS environment variables (None: the BLAS default, all cores)."""
    env = dict(os.environ)
    if threads is not None:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
    done = subprocess.run([sys.executable, "-c", SGEMM], env=env, check=True,
                          capture_output=True, text=True)
    return float(done.stdout.strip())


def nominal_peak() -> dict:
    """fp32 FLOP/s the CPU's vector units allow: cores x clock x lanes x 2 (a fused
    multiply-add) x FMA units. Lanes from /proc/cpuinfo's flags (AVX-512: 16, AVX2 + FMA: 8,
    else 4 without FMA); two FMA units per core (Zen 2/3/4, Skylake and later: an assumption,
    the flags do not say); the clock is lscpu's maximum where the machine reports one, else
    /proc/cpuinfo's (a VM's is its nominal clock: boost is invisible to it)."""
    info = Path("/proc/cpuinfo").read_text(errors="replace") if Path("/proc/cpuinfo").exists() \
        else ""
    flags = set(next((line.split(":", 1)[1].split() for line in info.splitlines()
                      if line.startswith("flags")), []))
    mhz = [float(line.split(":", 1)[1]) for line in info.splitlines()
           if line.startswith("cpu MHz")]
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout \
        if Path("/usr/bin/lscpu").exists() else ""
    max_mhz = next((float(line.split(":", 1)[1]) for line in lscpu.splitlines()
                    if line.startswith("CPU max MHz")), None)
    clock_mhz, clock_source = (max_mhz, "lscpu CPU max MHz") if max_mhz else \
        (max(mhz) if mhz else 0.0, "/proc/cpuinfo cpu MHz")
    lanes, fma = (16, True) if "avx512f" in flags else (8, True) if {"avx2", "fma"} <= flags \
        else (8 if "avx" in flags else 4, False)
    per_cycle = lanes * (2 * 2 if fma else 2)  # two units; an FMA counts 2 FLOPs
    cores = os.cpu_count() or 1
    return {"gflops": cores * clock_mhz / 1000 * per_cycle, "cores": cores,
            "clock_ghz": clock_mhz / 1000, "clock_source": clock_source,
            "flops_per_cycle_per_core": per_cycle,
            "vector": "avx512" if lanes == 16 else "avx2+fma" if fma else "avx/sse",
            "assumes": "two FMA units per core"}


def where_the_time_goes(model, threads: int, runs: int = 3) -> dict:
    """ONNX Runtime's own profile of ``runs`` calls at 256: per kind of node, ms per call,
    its share, its FLOPs (graph_stats, by node name) and the GFLOP/s it reaches; convolutions
    split into dense and depthwise (grouped)."""
    import onnxruntime as ort

    from simulator.zoo.graph_stats import node_flops

    kinds: dict[str, str] = {}
    flops_by_name: dict[str, int] = {}
    for node, flops in node_flops(model.path, 256):
        groups = next((a.i for a in node.attribute if a.name == "group"), 1)
        kinds[node.name] = f"Conv ({'depthwise' if groups > 1 else 'dense'})" \
            if node.op_type == "Conv" else node.op_type
        flops_by_name[node.name] = flops
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.intra_op_num_threads = threads
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    session = ort.InferenceSession(str(model.path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.random.default_rng(3).random(
        (1, 3, 256, 256), dtype=np.float32)}
    session.run(None, feed)  # warm-up, profiled too: dropped below
    for _ in range(runs):
        session.run(None, feed)
    events = json.loads(Path(session.end_profiling()).read_text())
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    per_run = len(nodes) // (runs + 1)
    totals: dict[str, dict] = {}
    for event in nodes[per_run:]:
        name = event["name"][: -len("_kernel_time")]
        for suffix in ("_nchwc", "_fused"):  # ORT's layout transform and fusions rename
            name = name.removesuffix(suffix)
        kind = kinds.get(name, event["args"].get("op_name", "?"))
        entry = totals.setdefault(kind, {"ms": 0.0, "gflop": 0.0})
        entry["ms"] += event["dur"] / 1000 / runs
        entry["gflop"] += flops_by_name.get(name, 0) / 1e9 / runs
    whole = sum(e["ms"] for e in totals.values())
    return {kind: {"ms": e["ms"], "share": e["ms"] / whole, "gflop": e["gflop"],
                   "gflops": e["gflop"] / (e["ms"] / 1000) if e["ms"] else 0.0}
            for kind, e in sorted(totals.items(), key=lambda kv: -kv[1]["ms"])}


def stylizer_vs_peak(rounds: int = 5) -> dict:
    """The AnimeGANv2 generator (``animeganv2-arch``: its architecture, seeded weights) at 256
    on each host runtime present, interleaved with the SGEMM peak (this host's speed drifts by
    2x between minutes): per round, the peak with all cores and with one thread, then the
    median of five model calls per runtime; the fraction of peak is taken per round."""
    from simulator.errors import InputError
    from simulator.pipeline.stylize import RUNTIMES, Stylizer
    from simulator.zoo.registry import resolve_model

    model = resolve_model("animeganv2-arch")
    frame = np.random.default_rng(2).integers(0, 255, (256, 256, 3), dtype=np.uint8)
    threads = os.cpu_count() or 1
    stylizers, missing = {}, {}
    for runtime in RUNTIMES:
        try:
            stylizers[runtime] = Stylizer(model, 256, threads=threads, fit="squash",
                                          runtime=runtime)
        except InputError as exc:  # not on this host
            missing[runtime] = str(exc)
    tensor = next(iter(stylizers.values())).preprocess(frame)
    for stylizer in stylizers.values():
        for _ in range(2):
            stylizer.run(tensor)
    flops = model.flops(256)
    peaks, ones = [], []
    achieved: dict[str, list[float]] = {name: [] for name in stylizers}
    for _ in range(rounds):
        peaks.append(sgemm_gflops(None))
        ones.append(sgemm_gflops(1))
        for name, stylizer in stylizers.items():
            times = []
            for _ in range(5):
                started = time.perf_counter()
                stylizer.run(tensor)
                times.append(time.perf_counter() - started)
            achieved[name].append(flops / statistics.median(times) / 1e9)
    nominal = nominal_peak()
    return {
        "peak_gflops": {"all_cores": spread(peaks), "one_thread": spread(ones),
                        "how": "best of five 2048^3 float32 products through numpy's BLAS "
                               "(2 n^3 FLOPs each), in a fresh process",
                        "nominal": nominal},
        "model_gflops": flops / 1e9, "threads": threads,
        "runtimes": {stylizers[name].runtime_id: {
            "ms": spread([1000 * flops / 1e9 / g for g in values]),
            "achieved_gflops": spread(values),
            "fraction_of_peak": spread([a / p for a, p in zip(values, peaks, strict=True)]),
            "fraction_of_nominal": spread([a / nominal["gflops"] for a in values]),
        } for name, values in achieved.items()},
        "not_here": missing,
        "onnxruntime_profile": where_the_time_goes(model, threads),
        "target_fraction": 0.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "host_speed.json")
    parser.add_argument("--flicker-pass", nargs=3, metavar=("CODE", "ALLOCATOR", "FRAMES"),
                        help=argparse.SUPPRESS)  # one pass, in its own process
    args = parser.parse_args()
    if args.flicker_pass:
        code, allocator, frames = args.flicker_pass
        print(json.dumps(flicker_pass(Path(frames), code, allocator)))
        return
    result = {"host_cpus": os.cpu_count(), "flicker": flicker_ms(),
              "timing_only": timing_only_s(), "stylizer_at_256": stylizer_vs_peak()}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
