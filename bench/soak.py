"""Soak test: the engine replaying scenarios in a loop, and live mode for minutes, in one
process, with its memory (RSS) and open file descriptors sampled — they must not grow.

Replays: ``--replays`` full runs (stylized, flicker measured, reports written) cycling over
the bundled scenarios with the pipeline stages on, as the app re-runs them. The first
``--warmup`` runs fill caches (ONNX Runtime arenas, DIS instances, imports) and are the
baseline. Live: ``run_live`` on a looped scenario for ``--live-minutes``, sampled every
second from its frame callback.

Bounds (the run fails, exit 1, beyond them): RSS after the warm-up may grow by at most
``--max-growth-mb`` (default 40 MB) over the rest of the replays, and live mode's RSS by as
much after its first tenth; the open file descriptors and child processes must be back to
their post-warm-up baseline at the end.
Writes ``bench/soak.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from simulator.engine.live import LiveSettings, run_live
from simulator.pipeline.settings import PipelineSettings
from simulator.pipeline.skip import SkipSettings
from simulator.pipeline.smooth import SmoothSettings
from simulator.run import RunSettings, run_scenario

SCENARIOS = ("scenarios/orbit-desk", "scenarios/pan-fast", "scenarios/walk-events")


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def children() -> int:
    pid = str(os.getpid())
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == pid:
                count += 1
    return count


def sample(label: str) -> dict:
    return {"at": label, "rss_mb": round(rss_mb(), 1), "fds": open_fds(),
            "children": children()}


def soak_replays(count: int, out: Path) -> list[dict]:
    pipeline = PipelineSettings(smoothing=SmoothSettings(method="pose"),
                                skip=SkipSettings(reuse="warp"))
    samples = [sample("start")]
    for i in range(count):
        scenario = SCENARIOS[i % len(SCENARIOS)]
        settings = RunSettings(model="ar-lite", device="ipad-pro-m1", backend="gpu-fp16",
                               pipeline=pipeline)
        run_scenario(Path(scenario), settings, out / f"run-{i}").raise_if_interrupted()
        samples.append(sample(f"replay {i + 1} ({Path(scenario).name})"))
        print(json.dumps(samples[-1]), flush=True)
    return samples


def soak_live(minutes: float) -> list[dict]:
    samples = [sample("live start")]
    last = [time.monotonic()]
    lock = threading.Lock()

    def on_frame(_screen: object, _stats: object) -> None:
        with lock:
            if time.monotonic() - last[0] >= 1.0:
                last[0] = time.monotonic()
                samples.append(sample(f"live {len(samples)} s"))

    run_live(LiveSettings(source=SCENARIOS[0], model="ar-lite", duration_s=minutes * 60),
             on_frame=on_frame)
    samples.append(sample("live end"))
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replays", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--live-minutes", type=float, default=3.0)
    parser.add_argument("--max-growth-mb", type=float, default=40.0)
    parser.add_argument("--out", default="bench/soak.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arsim-soak-") as work:
        replays = soak_replays(args.replays, Path(work))
    live = soak_live(args.live_minutes)
    base = replays[min(args.warmup, len(replays) - 1)]
    replay_growth = max(s["rss_mb"] for s in replays[args.warmup:]) - base["rss_mb"]
    # live mode holds its own buffers and session while it runs: its baseline is its own
    # first samples (after a tenth of the run), its growth what comes after them
    running = live[1:-1]
    steady = running[len(running) // 10:] if running else []
    live_growth = (max(s["rss_mb"] for s in steady) - steady[0]["rss_mb"]) if steady else 0.0
    checks = {
        "replay_rss_baseline_mb": base["rss_mb"],
        "replay_rss_growth_after_warmup_mb": round(replay_growth, 1),
        "live_rss_steady_mb": steady[0]["rss_mb"] if steady else None,
        "live_rss_growth_mb": round(live_growth, 1),
        "rss_after_everything_mb": live[-1]["rss_mb"],
        "fds_baseline_end": [base["fds"], live[-1]["fds"]],
        "children_baseline_end": [base["children"], live[-1]["children"]],
        "bound_mb": args.max_growth_mb,
    }
    passed = (replay_growth <= args.max_growth_mb and live_growth <= args.max_growth_mb
              and live[-1]["fds"] <= base["fds"] and live[-1]["children"] <= base["children"])
    result = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "passed": passed,
              "checks": checks, "replays": replays, "live": live}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(checks), "PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
