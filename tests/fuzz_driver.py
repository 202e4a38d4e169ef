"""`make fuzz`: run each fuzz target of tests/test_fuzz.py for a number of minutes.

Each round calls the target's Hypothesis test (ARSIM_FUZZ_EXAMPLES examples, fresh random
seeds every call) until the target's time is spent, counting examples and how they ended.
A failure (any exception other than the one-line InputError) is printed with Hypothesis's
shrunk example, recorded, and the target goes on. Results go to ``--out`` (JSON).

    python tests/fuzz_driver.py --minutes 10 [--targets scenario json ...] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("ARSIM_FUZZ_EXAMPLES", "200")

import test_fuzz  # noqa: E402


def run_target(name: str, base: dict, seconds: float) -> dict:
    test = test_fuzz.TARGETS[name]
    test_fuzz.OUTCOMES.clear()
    started, rounds, failures = time.monotonic(), 0, []
    while time.monotonic() - started < seconds:
        try:
            test(base=base)
        except Exception as exc:  # a crash the fuzzer found: keep it, go on
            failures.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
            traceback.print_exc()
        rounds += 1
    return {
        "seconds": round(time.monotonic() - started, 1),
        "calls": rounds,
        "reads": sum(test_fuzz.OUTCOMES.values()),  # reader calls (tum_csv: two per example)
        "outcomes": dict(test_fuzz.OUTCOMES),
        "failures": failures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="per target")
    parser.add_argument("--targets", nargs="*", default=list(test_fuzz.TARGETS),
                        choices=list(test_fuzz.TARGETS))
    parser.add_argument("--out", default="bench/fuzz.json")
    args = parser.parse_args()
    base = test_fuzz.make_base(Path(tempfile.mkdtemp(prefix="arsim-fuzz-")))
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    for name in args.targets:
        print(f"fuzz {name}: {args.minutes:g} min", flush=True)
        results[name] = run_target(name, base, args.minutes * 60)
        print(f"fuzz {name}: {json.dumps(results[name])}", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")  # after each target: Ctrl-C safe
    return 1 if any(r["failures"] for r in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
