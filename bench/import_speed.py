"""Import speed for 1080p captures: frames per wall second of `arsim scenario import`.

Two capture shapes a phone produces, both 1920x1080 built from the bundled orbit-desk frames
(upscaled; the content matters little, the pixel count and codec do):

- a Stray Scanner folder: H.264 ``rgb.mp4`` + ``odometry.csv`` (the video is carried, so the
  cost is parsing, checking and counting frames), and the same with ``--max-frames`` (the
  frames kept are decoded and re-encoded);
- a ``transforms.json`` folder of JPEGs with OPENCV distortion (images copied), and the same
  with ``--undistort`` (each image decoded, remapped and re-encoded).

Each case is imported ``--repeats`` times, interleaved (case A, B, C, D, A, B, ...) so that a
busy moment of this shared host hits every case alike; the median is reported.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from simulator.scenario.importers import ImportOptions, import_recording
from simulator.scenario.load import load_scenario

WIDTH, HEIGHT = 1920, 1080


def source_frames(scenario: Path, count: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """``count`` frames (RGB, 1080p) with the camera positions and quaternions at them."""
    with load_scenario(scenario) as sc:
        images = []
        for frame, _ in zip(sc.frames(), range(count), strict=False):
            images.append(cv2.resize(frame.image, (WIDTH, HEIGHT),
                                     interpolation=cv2.INTER_CUBIC))
        times = sc.frame_times[:len(images)]
        positions, quats = sc.trajectory.at_many(times)
    return images, positions, quats


def write_stray(folder: Path, images: list[np.ndarray], positions: np.ndarray,
                quats: np.ndarray, fps: int = 30) -> None:
    folder.mkdir(parents=True)
    with av.open(str(folder / "rgb.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for image in images:
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    rows = ["timestamp, frame, x, y, z, qx, qy, qz, qw"]
    boot = 81234.5  # ARFrame.timestamp: seconds since the phone booted
    for i, (p, q) in enumerate(zip(positions, quats, strict=True)):
        # the app writes the camera turned to OpenCV axes: q * (half turn about x)
        qx, qy, qz, qw = q
        cv = (qw, qz, -qy, -qx)  # (x y z w) of q * (1, 0, 0, 0), Hamilton product
        rows.append(f"{boot + i / fps:.6f}, {i:06d}, {p[0]:.6f}, {p[1]:.6f}, {p[2]:.6f}, "
                    f"{cv[0]:.9f}, {cv[1]:.9f}, {cv[2]:.9f}, {cv[3]:.9f}")
    (folder / "odometry.csv").write_text("\n".join(rows) + "\n")
    f = 0.8 * WIDTH
    (folder / "camera_matrix.csv").write_text(
        f"{f}, 0.0, {WIDTH / 2}\n0.0, {f}, {HEIGHT / 2}\n0.0, 0.0, 1.0\n")
    (folder / "imu.csv").write_text("timestamp, a_x, a_y, a_z, alpha_x, alpha_y, alpha_z\n")


def write_transforms(folder: Path, images: list[np.ndarray], positions: np.ndarray,
                     quats: np.ndarray) -> None:
    (folder / "images").mkdir(parents=True)
    frames = []
    for i, (image, p, q) in enumerate(zip(images, positions, quats, strict=True)):
        name = f"images/frame_{i + 1:05d}.jpg"
        cv2.imwrite(str(folder / name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 92])
        matrix = np.eye(4)
        qx, qy, qz, qw = q
        matrix[:3, :3] = [
            [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
            [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
            [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)],
        ]
        matrix[:3, 3] = p
        frames.append({"file_path": name, "transform_matrix": matrix.tolist()})
    meta = {"camera_model": "OPENCV", "w": WIDTH, "h": HEIGHT, "fl_x": 0.8 * WIDTH,
            "fl_y": 0.8 * WIDTH, "cx": WIDTH / 2, "cy": HEIGHT / 2, "k1": -0.08, "k2": 0.02,
            "p1": 0.0, "p2": 0.0, "frames": frames}
    (folder / "transforms.json").write_text(json.dumps(meta))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenarios/orbit-desk")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="bench/import_speed.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="arsim-import-bench-"))
    try:
        images, positions, quats = source_frames(Path(args.scenario), args.frames)
        stray, nerf = work / "stray", work / "nerf"
        write_stray(stray, images, positions, quats)
        write_transforms(nerf, images, positions, quats)
        kept = max(1, len(images) - 1)
        cases: dict[str, tuple[Path, ImportOptions, int]] = {
            "stray_scanner_video_carried": (stray, ImportOptions(), len(images)),
            "stray_scanner_reencoded": (stray, ImportOptions(max_frames=kept), kept),
            "transforms_json_jpeg_copied": (nerf, ImportOptions(fps=30, up="+y"), len(images)),
            "transforms_json_undistorted": (nerf, ImportOptions(fps=30, up="+y",
                                                                undistort=True), len(images)),
        }
        walls: dict[str, list[float]] = {name: [] for name in cases}
        for round_ in range(args.repeats):
            for name, (src, options, _) in cases.items():
                out = work / f"out-{name}-{round_}"
                walls[name].append(timed(lambda s=src, o=out, op=options:
                                         import_recording(s, o, "auto", op)))
                shutil.rmtree(out)
        results = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "frame_size": [WIDTH, HEIGHT],
            "repeats": args.repeats,
            "cases": {
                name: {
                    "frames": frames,
                    "wall_s": [round(w, 3) for w in walls[name]],
                    "frames_per_s_median": round(frames / statistics.median(walls[name]), 1),
                    "frames_per_s_range": [round(frames / max(walls[name]), 1),
                                           round(frames / min(walls[name]), 1)],
                }
                for name, (_, _, frames) in cases.items()
            },
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


def timed(job: Callable[[], object]) -> float:
    started = time.perf_counter()
    job()
    return time.perf_counter() - started


if __name__ == "__main__":
    sys.exit(main())
