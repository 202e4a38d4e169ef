"""Reports before and after a refactor: the bundled scenarios x 3 phones x 3 pipeline
settings through `arsim run`, then a field-by-field diff of two such folders.

    python bench/report_equivalence.py run OUT_DIR      # one report.json per cell
    python bench/report_equivalence.py diff BEFORE AFTER [--json FILE]

To get "before", run the first command from a checkout of the old commit (e.g. a
`git worktree` with PYTHONPATH pointing at it). Host facts (`host`: wall time, host speed)
differ between any two runs and are left out; numbers are compared exactly, so any
change — a float's last digit included — is listed with its path.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

SCENARIOS = ("orbit-desk", "pan-fast", "walk-events", "memory-pressure")
DEVICES = ("iphone-se-2020", "redmi-note-10", "ipad-pro-m1")
SETTINGS = {
    "default": [],
    "temporal": ["--smooth", "pose", "--reuse", "warp", "--skip", "--sizes", "160,256"],
    "face": ["--face"],
}
VOLATILE = {"host"}
# where the checkout lies is not a change: these compare by file name
LOCATIONS = {"scenario.path", "model.path"}


def run_matrix(out: Path, repo: Path) -> None:
    for scenario in SCENARIOS:
        for device in DEVICES:
            for name, flags in SETTINGS.items():
                cell = out / f"{scenario}__{device}__{name}"
                if (cell / "report.json").exists():
                    continue
                cmd = [sys.executable, "-m", "simulator", "run", str(repo / "scenarios" / scenario),
                       "--device", device, "--out", str(cell), "--quiet", *flags]
                done = subprocess.run(cmd, capture_output=True, text=True,
                                      env={**os.environ, "PYTHONPATH": str(repo)})
                print(f"{cell.name}: exit {done.returncode}", flush=True)
                if done.returncode not in (0, 1):
                    print(done.stderr, file=sys.stderr)


def differences(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        found = []
        for key in sorted(set(a) | set(b)):
            if not path and key in VOLATILE:
                continue
            where = f"{path}.{key}" if path else key
            if key not in a or key not in b:
                found.append(f"{where}: only in {'after' if key in b else 'before'}")
            else:
                found += differences(a[key], b[key], where)
        return found
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items before, {len(b)} after"]
        pairs = enumerate(zip(a, b, strict=True))
        return [d for i, (x, y) in pairs for d in differences(x, y, f"{path}[{i}]")]
    if path in LOCATIONS and isinstance(a, str) and isinstance(b, str):
        a, b = Path(a).name, Path(b).name
    return [] if a == b else [f"{path}: {a!r} -> {b!r}"]


def diff_folders(before: Path, after: Path) -> dict[str, list[str]]:
    cells = sorted({p.parent.name for p in before.glob("*/report.json")}
                   | {p.parent.name for p in after.glob("*/report.json")})
    result = {}
    for cell in cells:
        a, b = before / cell / "report.json", after / cell / "report.json"
        if not a.exists() or not b.exists():
            result[cell] = [f"report only {'after' if b.exists() else 'before'}"]
            continue
        result[cell] = differences(json.loads(a.read_text()), json.loads(b.read_text()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("out", type=Path)
    run.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    diff = sub.add_parser("diff")
    diff.add_argument("before", type=Path)
    diff.add_argument("after", type=Path)
    diff.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run_matrix(args.out, args.repo.resolve())
        return
    result = diff_folders(args.before, args.after)
    for cell, found in result.items():
        print(f"{cell}: {'identical' if not found else f'{len(found)} differences'}")
        for line in found[:20]:
            print(f"    {line}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    sys.exit(1 if any(result.values()) else 0)


if __name__ == "__main__":
    main()
