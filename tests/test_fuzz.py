"""Fuzzing the readers of untrusted files: whatever the bytes, each reader returns a result
or raises InputError with one line — never another exception, a hang or a crash.

Every target mutates a *valid* file (so the fuzzer reaches deep into the format, not only the
first check) with Hypothesis: byte flips, slices cut, inserted or replaced with random bytes,
or structured values dropped into JSON fields. `make test` runs each target for a few dozen
examples; `make fuzz` (tests/fuzz_driver.py) runs them for minutes each and counts.

``ARSIM_FUZZ_EXAMPLES`` sets the examples per call (default 25).
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from checkpoint_fixtures import write_checkpoint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mp4_fixtures import write_arcore_mp4
from report_fixtures import sample_report
from scenario_fixtures import make_scenario

from simulator.errors import InputError

EXAMPLES = int(os.environ.get("ARSIM_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))
# how each target's examples ended ("accepted" / "refused"), read by the fuzz driver
OUTCOMES: Counter[str] = Counter()

ROOT = Path(__file__).resolve().parent.parent


# --- mutations ------------------------------------------------------------------------------

@st.composite
def byte_edits(draw: st.DrawFn, size: int) -> list[tuple[str, int, int, bytes]]:
    """A few edits of a ``size``-byte file: (kind, start, length, bytes)."""
    edits = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "replace", "truncate"]))
        start = draw(st.integers(0, max(0, size - 1)))
        length = draw(st.integers(1, 64))
        payload = draw(st.binary(min_size=1, max_size=64) | st.sampled_from(
            [b"\x00", b"\xff" * 8, b"-1", b"1e999", b"nan", b"\n", b",", b"\"", b"{", b"[",
             b"\x7fELF", b"99999999999999999999"]))
        edits.append((kind, start, length, payload))
    return edits


def apply_edits(data: bytes, edits: list[tuple[str, int, int, bytes]]) -> bytes:
    out = bytearray(data)
    for kind, start, length, payload in edits:
        start = min(start, len(out))
        if kind == "flip" and out:
            out[min(start, len(out) - 1)] ^= payload[0] or 0x01
        elif kind == "cut":
            del out[start:start + length]
        elif kind == "insert":
            out[start:start] = payload
        elif kind == "replace":
            out[start:start + len(payload)] = payload
        elif kind == "truncate":
            del out[start:]
    return bytes(out)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6,
)


def json_paths(data: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path into a JSON value (dict keys and list indices), leaves included."""
    paths = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            paths += json_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data[:4]):
            paths += json_paths(value, (*prefix, i))
    return paths


def set_path(data: Any, path: tuple, value: Any, drop: bool) -> None:
    target = data
    for key in path[:-1]:
        target = target[key]
    if drop and isinstance(target, dict):
        target.pop(path[-1], None)
    elif drop and isinstance(target, list):
        del target[path[-1]]
    else:
        target[path[-1]] = value


def json_mutations(base: Any) -> st.SearchStrategy[Any]:
    """``base`` with one to three fields replaced by random JSON or dropped."""
    paths = json_paths(base)

    def mutate(choices: list[tuple[int, Any, bool]]) -> Any:
        data = copy.deepcopy(base)
        for index, value, drop in choices:
            with contextlib.suppress(KeyError, IndexError, TypeError):  # path removed earlier
                set_path(data, paths[index % len(paths)], value, drop)
        return data

    return st.lists(st.tuples(st.integers(0, 10**6), json_values, st.booleans()),
                    min_size=1, max_size=3).map(mutate)


def outcome(read: Callable[[], Any]) -> None:
    """Run a reader: a result, or one InputError line; anything else fails the test."""
    try:
        read()
    except InputError as err:
        assert str(err) and "\n" not in str(err), repr(str(err))
        OUTCOMES["refused"] += 1
        return
    OUTCOMES["accepted"] += 1


# --- fixtures: one valid file per reader ----------------------------------------------------

@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return make_base(tmp_path_factory.mktemp("fuzz-base"))


def make_base(root: Path) -> dict[str, Any]:
    """The valid files the targets mutate, written under ``root``."""
    scenario = make_scenario(root / "scenario", frames=6, video="frames/",
                             anchors=[{"id": "a", "position": [0, 0, -2], "size": [0.2] * 3}])
    checkpoint = write_checkpoint(root / "model.pt", {
        "block.0.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
        "block.0.bias": np.ones(3, dtype=np.float16)})
    images = [np.full((32, 48, 3), 40 * i, np.uint8) for i in range(3)]
    mp4 = write_arcore_mp4(root / "rec.mp4", [(images, [0, 33_333, 66_667])],
                           [("application/x-arsim-pose", [(0, b"x" * 96)])], rotation_cw=90)
    device_report = json.loads(
        (ROOT / "mobile" / "test-vectors" / "minimal-device-report.json").read_text())
    return {
        "scenario": {name: (scenario / name).read_bytes()
                     for name in ("scenario.json", "frames.csv", "poses.txt")},
        "tum": (scenario / "poses.txt").read_bytes(),
        "checkpoint": checkpoint.read_bytes(),
        "mp4": mp4.read_bytes(),
        "report": json.dumps(sample_report(), default=float).encode(),
        "device_report": device_report,
        "settings": {"smoothing": {"method": "pose", "alpha": 0.4},
                     "skip": {"reuse": "warp", "max_age": 3}, "sizing": {"sizes": [160, 256]}},
        "root": root,
    }


def _fresh(base: dict[str, Any], name: str) -> Path:
    """An empty folder for one example (examples in one call share a temporary root)."""
    folder = base["root"] / "ex" / name
    if folder.exists():
        for child in sorted(folder.rglob("*"), reverse=True):
            child.unlink() if child.is_file() or child.is_symlink() else child.rmdir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


# --- targets --------------------------------------------------------------------------------

@FUZZ
@given(which=st.sampled_from(["scenario.json", "frames.csv", "poses.txt"]), data=st.data())
def test_fuzz_scenario_loader(base: dict[str, Any], which: str, data: st.DataObject) -> None:
    """The scenario loader (validate) over a folder with one file's bytes mutated."""
    from simulator.scenario.load import validate_scenario

    def validate(folder: Path) -> None:
        result = validate_scenario(folder)
        if result.scenario is not None:
            result.scenario.close()
        assert all("\n" not in str(problem) for problem in result.problems)
        if result.problems:
            raise result.problems[0]

    folder = base["root"] / "scenario"
    original = base["scenario"][which]
    edited = apply_edits(original, data.draw(byte_edits(len(original))))
    try:
        (folder / which).write_bytes(edited)
        outcome(lambda: validate(folder))
    finally:
        (folder / which).write_bytes(original)


@FUZZ
@given(data=st.data())
def test_fuzz_tum_and_csv_readers(base: dict[str, Any], data: st.DataObject) -> None:
    """TUM trajectories (parse_tum) and the importers' CSV reader (convert.read_rows)."""
    from simulator.scenario.importers.convert import read_rows
    from simulator.scenario.poses import parse_tum

    edited = apply_edits(base["tum"], data.draw(byte_edits(len(base["tum"]))))
    folder = _fresh(base, "csv")
    outcome(lambda: parse_tum(_write(folder / "poses.txt", edited), root=folder))
    rows = _write(folder / "odometry.csv", edited.replace(b" ", b", "))
    outcome(lambda: read_rows(rows, "odometry.csv", delimiter=",", root=folder))


@FUZZ
@given(data=st.data())
def test_fuzz_json_reader(base: dict[str, Any], data: st.DataObject) -> None:
    """The one JSON reader (reports, model cards) and the report check (report.reader): the
    bytes of a whole report, mutated."""
    from simulator.report.reader import load_report

    raw = base["report"]
    folder = _fresh(base, "json")
    (folder / "report.json").write_bytes(apply_edits(raw, data.draw(byte_edits(len(raw)))))
    outcome(lambda: load_report(folder / "report.json"))


@FUZZ
@given(data=st.data())
def test_fuzz_checkpoint_reader(base: dict[str, Any], data: st.DataObject) -> None:
    """The restricted-unpickler checkpoint reader: the archive's data.pkl mutated (so the
    zip stays valid and the unpickler sees the damage), or the archive's bytes."""
    from simulator.zoo.checkpoint import read_checkpoint

    folder = _fresh(base, "ckpt")
    target = folder / "model.pt"
    if data.draw(st.booleans()):
        with zipfile.ZipFile(_write(folder / "orig.pt", base["checkpoint"])) as src, \
                zipfile.ZipFile(target, "w") as out:
            for info in src.infolist():
                body = src.read(info)
                if info.filename.endswith("data.pkl"):
                    body = apply_edits(body, data.draw(byte_edits(len(body))))
                out.writestr(info, body)
    else:
        raw = base["checkpoint"]
        target.write_bytes(apply_edits(raw, data.draw(byte_edits(len(raw)))))
    outcome(lambda: read_checkpoint(target))


@FUZZ
@given(data=st.data())
def test_fuzz_settings_reader(base: dict[str, Any], data: st.DataObject) -> None:
    """Pipeline settings files: JSON with random values in the fields, or TOML bytes mutated."""
    from simulator.pipeline.settings import load_settings

    folder = _fresh(base, "settings")
    if data.draw(st.booleans()):
        path = _write(folder / "s.json",
                      json.dumps(data.draw(json_mutations(base["settings"]))).encode())
    else:
        toml = b'[smoothing]\nmethod = "pose"\nalpha = 0.4\n[skip]\nreuse = "warp"\n' \
               b"max_age = 3\n[sizing]\nsizes = [160, 256]\n"
        path = _write(folder / "s.toml", apply_edits(toml, data.draw(byte_edits(len(toml)))))
    outcome(lambda: load_settings(path))


@FUZZ
@given(data=st.data())
def test_fuzz_device_report_reader(base: dict[str, Any], data: st.DataObject) -> None:
    """Device reports as compare / calibrate read them (fields replaced or dropped), and
    the contract's ARSIM log lines."""
    from simulator.device.calibrate import calibrate_profile
    from simulator.mobile.contract import parse_line

    folder = _fresh(base, "device")
    report = data.draw(json_mutations(base["device_report"]))
    path = _write(folder / "report.json", json.dumps(report).encode())
    outcome(lambda: calibrate_profile([path], "redmi-note-10"))
    line = data.draw(st.sampled_from(["ARSIM start ", "ARSIM progress ", "ARSIM oom ",
                                      "ARSIM done ", "ARSIM error ", ""]))
    parse_line(line + data.draw(st.text(max_size=40)))  # None or an Event, never raises


@FUZZ
@given(data=st.data())
def test_fuzz_mp4_box_reader(base: dict[str, Any], data: st.DataObject) -> None:
    """The MP4 box reader of the arsim-app importer (moov, trak, tkhd, hdlr, stsd)."""
    from simulator.scenario.importers.arsim_app import mp4_tracks

    raw = base["mp4"]
    moov = raw.rfind(b"moov") - 4  # mutate the index more often than the media data
    edits = data.draw(byte_edits(len(raw) - moov))
    edited = raw[:moov] + apply_edits(raw[moov:], edits) if data.draw(st.booleans()) \
        else apply_edits(raw, edits)
    folder = _fresh(base, "mp4")
    path = _write(folder / "rec.mp4", edited)
    outcome(lambda: mp4_tracks(path, folder))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


TARGETS = {
    "scenario": test_fuzz_scenario_loader,
    "tum_csv": test_fuzz_tum_and_csv_readers,
    "json": test_fuzz_json_reader,
    "checkpoint": test_fuzz_checkpoint_reader,
    "settings": test_fuzz_settings_reader,
    "device_report": test_fuzz_device_report_reader,
    "mp4_boxes": test_fuzz_mp4_box_reader,
}
