"""Reuse across a matrix (issue 14): wall time of `arsim matrix` runs, as ratios of
interleaved runs on this machine (shared and noisy: each ratio's spread over repeats is given).

    python bench/matrix_scale.py --out bench/matrix_scale.json [--repeats 3]

Each repeat runs, one after the other (same load for all):
- ``one``: one seed device x one scenario, a fresh disk cache (the cold cost of a run);
- ``three``: the three seed devices x the same scenario, a fresh disk cache (cold across
  devices: the second and third reuse the first's frames and outputs in the same process);
- ``warm``: the same three-device matrix again on ``three``'s cache (a second identical matrix);
- ``uncached``: the three-device matrix with ``--no-cache``, whose reports must equal the
  cached ones (apart from ``host``).
Ratios: three / one (target <= 1.3), warm / three (target <= 0.3).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = str(ROOT / "scenarios" / "orbit-desk")
SEED_DEVICES = ("redmi-note-10", "iphone-se-2020", "ipad-pro-m1")


def matrix(devices: tuple[str, ...], out: Path, *cache: str) -> float:
    flags = [arg for device in devices for arg in ("--device", device)]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "simulator", "matrix", SCENARIO, *flags,
                    "--out", str(out), *cache], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - started


def reports(out: Path) -> dict[str, dict]:
    found = {}
    for path in sorted(out.rglob("report.json")):
        report = json.loads(path.read_text())
        report.pop("host")
        found[str(path.relative_to(out))] = report
    return found


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "matrix_scale.json")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"one": [], "three": [], "warm": [], "uncached": []}
    identical = []
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory() as scratch:
            tmp = Path(scratch)
            times["one"].append(matrix(SEED_DEVICES[:1], tmp / "one", "--cache", str(tmp / "c1")))
            times["three"].append(matrix(SEED_DEVICES, tmp / "three", "--cache", str(tmp / "c3")))
            times["warm"].append(matrix(SEED_DEVICES, tmp / "warm", "--cache", str(tmp / "c3")))
            times["uncached"].append(matrix(SEED_DEVICES, tmp / "none", "--no-cache"))
            identical.append(reports(tmp / "three") == reports(tmp / "warm")
                             == reports(tmp / "none"))
        print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
              flush=True)
    three_over_one = [t / o for t, o in zip(times["three"], times["one"], strict=True)]
    warm_over_cold = [w / t for w, t in zip(times["warm"], times["three"], strict=True)]
    uncached_over_one = [u / o for u, o in zip(times["uncached"], times["one"], strict=True)]
    result = {
        "what": "wall time of `arsim matrix` on orbit-desk (240 frames, toon-classic @ 256), "
                "each a new process; ratios of runs interleaved within a repeat",
        "host_cpus": __import__("os").cpu_count(),
        "seconds": {k: spread(v) for k, v in times.items()},
        "three_devices_over_one": spread(three_over_one),
        "warm_over_cold_matrix": spread(warm_over_cold),
        "uncached_three_over_one": spread(uncached_over_one),
        "reports_identical_cold_warm_uncached": all(identical),
        "targets": {"three_devices_over_one": 1.3, "warm_over_cold_matrix": 0.3},
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "seconds"}, indent=1))


if __name__ == "__main__":
    main()
