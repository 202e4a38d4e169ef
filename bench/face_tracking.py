"""Face tracking and face priority on this host (numbers for reports, not tests).

- detection rate: detector runs per second of capture time, detect_every=N vs every frame;
- cached track error: box centre distance and size difference (px) of the cached + filtered
  track (detect_every=N) against per-frame detection, on the frames where both have a face;
  for the pasted photo also both against the true face box (the paste rectangle and where
  the face sits in the photo, measured once on a still frame);
- host ms per detection;
- face-priority render vs plain stylize of a 720p frame (median ms).

Sequences: scenarios/orbit-desk (the face photo on a billboard, ~50 px face box) and the
real photo simulator/scenario/assets/face.png pasted into a textured frame at moving
positions. Usage: ``python bench/face_tracking.py [--out bench/face_tracking.json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from simulator.pipeline.face import FaceTrack, FaceTracker, FaceTrackerSettings
from simulator.pipeline.face_priority import FacePriority, FacePrioritySettings
from simulator.pipeline.stylize import Stylizer
from simulator.scenario.load import load_scenario
from simulator.scenario.synth import FACE_ASSET
from simulator.zoo.registry import resolve_model

ROOT = Path(__file__).resolve().parents[1]
Sample = tuple[float, np.ndarray, tuple[float, float, float, float] | None]


def face_photo(side: int) -> np.ndarray:
    """The bundled face photo (RGB), resized to side x side."""
    face = cv2.cvtColor(cv2.imread(str(FACE_ASSET)), cv2.COLOR_BGR2RGB)
    return cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)


def textured_background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth random texture with a colour gradient (no faces in it)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, (height // 24 + 1, width // 24 + 1, 3), dtype=np.uint8)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = rng.integers(-12, 13, (height, width, 3))
    return np.clip(smooth.astype(int) + grain, 0, 255).astype(np.uint8)


def pasted_sequence(
    frames: int, fps: float, width: int, height: int, side: int, speed_px_s: float
) -> Iterator[Sample]:
    """face.png pasted at positions moving on a Lissajous path (peak speed ~speed_px_s)."""
    background = textured_background(width, height)
    face = face_photo(side)
    ax, ay = (width - side) / 2 - 4, (height - side) / 2 - 4
    omega = speed_px_s / max(ax, 1.0)  # peak speed of the x motion
    for index in range(frames):
        t = index / fps
        x = round((width - side) / 2 + ax * math.sin(omega * t))
        y = round((height - side) / 2 + ay * math.sin(0.7 * omega * t + 0.5))
        image = background.copy()
        image[y : y + side, x : x + side] = face
        yield t, image, (float(x), float(y), float(side), float(side))


def face_in_photo(samples: list[Sample]) -> tuple[float, float, float]:
    """Where the face box sits inside the pasted photo (centre x, y and size, as fractions
    of the photo side), measured once by a full-resolution detection on the first frame."""
    _, image, rect = samples[0]
    assert rect is not None
    x, y, side, _ = rect
    with FaceTracker(FaceTrackerSettings(detect_max_side=0)) as tracker:
        found = tracker.detect(image)
    if found is None:
        raise SystemExit("no face found in the still photo")
    cx, cy = found.center
    return (cx - x) / side, (cy - y) / side, (found.box[2] + found.box[3]) / 2 / side


def true_boxes(samples: list[Sample]) -> list[tuple[float, float, float, float] | None]:
    """The face box of every pasted frame: the paste rectangle and ``face_in_photo``."""
    if samples[0][2] is None:
        return [None] * len(samples)
    fx, fy, fs = face_in_photo(samples)
    boxes = []
    for _, _, rect in samples:
        assert rect is not None
        x, y, side, _ = rect
        size = fs * side
        boxes.append((x + fx * side - size / 2, y + fy * side - size / 2, size, size))
    return boxes


def scenario_sequence(path: Path) -> Iterator[Sample]:
    """A bundled scenario's frames (no ground truth)."""
    with load_scenario(path) as scenario:
        for frame in scenario.frames():
            yield frame.time, frame.image, None


def _centre_size(box: tuple[float, float, float, float]) -> tuple[float, float, float]:
    x, y, w, h = box
    return x + w / 2, y + h / 2, (w + h) / 2


def _errors(
    tracks: list[tuple[float, float, float, float] | None],
    reference: list[tuple[float, float, float, float] | None],
) -> dict:
    centre, size = [], []
    for box, ref in zip(tracks, reference, strict=True):
        if box is None or ref is None:
            continue
        (cx, cy, s), (rx, ry, rs) = _centre_size(box), _centre_size(ref)
        centre.append(math.hypot(cx - rx, cy - ry))
        size.append(abs(s - rs))
    if not centre:
        return {"frames": 0}
    return {
        "frames": len(centre),
        "centre_px_mean": round(statistics.fmean(centre), 2),
        "centre_px_max": round(max(centre), 2),
        "size_px_mean": round(statistics.fmean(size), 2),
        "size_px_max": round(max(size), 2),
    }


def compare_tracking(samples: list[Sample], every: int) -> dict:
    """Per-frame detection vs detect_every=every on the same frames."""
    runs: dict[int, list] = {}
    stats: dict[str, dict] = {}
    for n in (1, every):
        boxes: list[tuple[float, float, float, float] | None] = []
        with FaceTracker(FaceTrackerSettings(detect_every=n)) as tracker:
            for index, (t, image, _) in enumerate(samples):
                track: FaceTrack | None = tracker.update(t, image, index)
                boxes.append(None if track is None else track.box)
            stats[f"every_{n}"] = {
                "frames": tracker.frames,
                "detections": tracker.detections,
                "faces_found": tracker.found,
                "frames_with_track": sum(b is not None for b in boxes),
                "detections_per_s": round(tracker.detections_per_s, 2),
                "ms_per_detection": round(tracker.ms_per_detection, 2),
            }
        runs[n] = boxes
    truth = true_boxes(samples)
    result = {
        **stats,
        "detection_rate_drop": round(
            stats["every_1"]["detections_per_s"] / stats[f"every_{every}"]["detections_per_s"], 2
        ),
        "cached_vs_per_frame": _errors(runs[every], runs[1]),
    }
    if any(rect is not None for rect in truth):
        result["per_frame_vs_truth"] = _errors(runs[1], truth)
        result["cached_vs_truth"] = _errors(runs[every], truth)
    return result


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(1000 * statistics.median(times), 2)


def render_cost(model_name: str, repeats: int) -> dict:
    """Face-priority render vs plain stylize on a 1280x720 frame with the photo pasted."""
    frame = textured_background(1280, 720, seed=1)
    side = 300
    frame[200 : 200 + side, 700 : 700 + side] = face_photo(side)
    model = resolve_model(model_name)
    stylizer = Stylizer(model, model.card.input.default_size, threads=1)
    with FaceTracker(FaceTrackerSettings(detect_every=1)) as tracker:
        track = tracker.update(0.0, frame, 0)
        detect_ms = _median_ms(lambda: tracker.detect(frame), repeats)
    if track is None:
        raise SystemExit("face not found in the 720p bench frame")
    result: dict = {"model": model.name, "frame": "1280x720", "detect_ms": detect_ms}
    for size in (stylizer.input_size, 2 * stylizer.input_size):
        result[f"plain_stylize_{size}_ms"] = _median_ms(
            lambda s=size: stylizer.stylize(frame, s), repeats
        )
    for background in ("stylize", "passthrough"):
        priority = FacePriority(stylizer, FacePrioritySettings(background=background))
        rendered = priority.render(frame, track)
        result[f"face_priority_{background}"] = {
            "ms": _median_ms(lambda p=priority: p.render(frame, track), repeats),
            "face_box": rendered.face_box,
            "face_size": rendered.face_size,
            "background_size": rendered.background_size,
            "face_flops_share": round(rendered.face_flops_share, 3),
            "flops_vs_plain": round(rendered.flops / model.flops(stylizer.input_size), 3),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "orbit-desk")
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--model", default="toon-classic")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = {
        "orbit_desk": compare_tracking(list(scenario_sequence(args.scenario)), args.every),
        **{
            f"pasted_photo_{speed}px_s": compare_tracking(
                list(pasted_sequence(150, 30.0, 640, 360, 120, speed_px_s=speed)), args.every
            )
            for speed in (30, 120)
        },
        "render_720p": render_cost(args.model, args.repeats),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
