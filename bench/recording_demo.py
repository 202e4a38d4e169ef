"""Recordings end to end, as a user runs them: import, place an anchor, replay on the three
seed phones, and look at ``output.mp4``.

1. The real iPhone clip in ``tests/data/real/phone-video`` (HEVC stored 1280x720 with a
   display matrix: portrait when shown) is imported and replayed on each seed device: the
   output video must stay 720x1280 and the model input keep the 9:16 aspect.
2. A portrait session as the bench's iOS app records it (mobile/CONTRACT.md §6: the sensor's
   landscape image, a rotation in the MP4, ARKit poses and intrinsics of the stored image),
   rendered from the synthetic desk scene so that where the desk cube really is is known.
   It is imported, an anchor is triangulated with ``arsim scenario anchor add`` from the
   cube's pixel on two frames (as a user clicks it), and the scenario is replayed on each
   seed device with ``--output-video``. The anchor's distance from the cube's true centre and
   the drawn box's offset from the cube in the output frames are measured.

Writes ``bench/recording_demo.json`` and the picture ``docs/recording-demo.png`` (the output
frames of the portrait session on the three phones, first / middle / last frame).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from simulator.scenario.importers.arsim_app import IOS_FORMAT, IOS_HEADER
from simulator.scenario.importers.convert import matrix_to_quat
from simulator.scenario.load import load_scenario
from simulator.scenario.synth import synthesize
from simulator.scenario.video import iter_frames
from simulator.types import Pose

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the tests' MP4 writer (rotation in the tkhd)
from mp4_fixtures import write_arcore_mp4  # noqa: E402

REAL_CLIP = ROOT / "tests" / "data" / "real" / "phone-video" / "dolbyVision-hdr.MOV"
DEVICES = ("redmi-note-10", "iphone-se-2020", "ipad-pro-m1")
ARSIM = [sys.executable, "-m", "simulator"]
# a quarter turn about the camera's z: the stored (sensor) camera of a phone held upright
_QUARTER = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])


def arsim(*args: str) -> None:
    subprocess.run([*ARSIM, *args], check=True, cwd=ROOT)


def replay(scenario: Path, device: str, out: Path) -> dict:
    proc = subprocess.run([*ARSIM, "run", str(scenario), "--device", device, "--out", str(out),
                           "--output-video", "--quiet"], cwd=ROOT)
    if proc.returncode not in (0, 1):  # 1: a budget failed, the run itself is fine
        raise SystemExit(f"arsim run failed with {proc.returncode}")
    return json.loads((out / "report.json").read_text())


def video_size(path: Path) -> tuple[int, int]:
    capture = cv2.VideoCapture(str(path))
    size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    capture.release()
    return size


def real_clip(work: Path) -> tuple[dict, list[np.ndarray]]:
    scenario = work / "iphone-clip"
    arsim("scenario", "import", str(REAL_CLIP), str(scenario))
    rows, last_frames = {}, []
    for device in DEVICES:
        out = work / f"run-clip-{device}"
        report = replay(scenario, device, out)
        rows[device] = {
            "output_video": list(video_size(out / "output.mp4")),
            "input_shape": report["input_shape"],
            "display_fps": report["metrics"]["display_fps"],
        }
        last_frames.append(label(list(iter_frames(out / "output.mp4"))[-1],
                                 f"real iPhone clip, {device}"))
    return rows, last_frames


def ios_portrait_recording(folder: Path, width: int, height: int, seconds: float) -> dict:
    """Render the desk scene upright in portrait (``width`` x ``height``), then store it as
    the iOS app does: frames turned back to the sensor's landscape, poses and intrinsics of
    that stored image, a 90 degree rotation in the MP4. Returns the desk cube (the truth)."""
    rendered = synthesize(folder.parent / "rendered", "orbit", 0, width=width, height=height,
                          fps=15.0, duration_s=seconds, supersample=1.0)
    truth = json.loads((rendered / "scenario.json").read_text())["anchors"][0]
    with load_scenario(rendered) as sc:
        # turned a quarter counter-clockwise: a quarter clockwise (the MP4's) shows it upright
        images = [np.ascontiguousarray(np.rot90(im, k=1)) for im in iter_frames(sc.root / sc.video)]
        times = sc.frame_times - sc.frame_times[0]
        positions, quats = sc.trajectory.at_many(sc.frame_times)
        cam = sc.camera
    folder.mkdir(parents=True)
    write_arcore_mp4(folder / "video.mp4", [(images, [round(t * 1e6) for t in times])], [],
                     rotation_cw=90)
    # the stored image's pixel (u, v) is the upright one's (y, width - x): its camera matrix,
    # and its camera turned a quarter about z (undone by the importer's rotate_camera_cw)
    k = [cam.fy, cam.fx, cam.cy, width - cam.cx]
    rotations = np.array([Pose(p, q).rotation() for p, q in zip(positions, quats, strict=True)])
    stored = matrix_to_quat(rotations @ _QUARTER.T)
    lines = [json.dumps({"t": round(700.0 + float(t), 9), "p": [float(v) for v in p],
                         "q": [float(v) for v in q], "k": k, "tracking": "normal"})
             for t, p, q in zip(times, positions, stored, strict=True)]
    (folder / "frames.jsonl").write_text("\n".join(lines) + "\n")
    (folder / IOS_HEADER).write_text(json.dumps({
        "format": IOS_FORMAT, "video": "video.mp4", "frames": "frames.jsonl",
        "width": height, "height": width, "device": "rendered (synthetic desk scene)",
        "app": "arsim bench recording_demo", "recorded": "2026-12-04T00:00:00Z"}))
    return truth


def cube_pixel(scenario: Path, frame: int, point: list[float]) -> tuple[float, float]:
    """Where the cube's centre is seen on ``frame`` (what a user clicks)."""
    with load_scenario(scenario) as sc:
        p, q = sc.trajectory.at_many(sc.frame_times[frame:frame + 1])
        pixels, _ = sc.camera.project(Pose(p[0], q[0]), np.asarray([point], dtype=np.float64))
    return float(pixels[0, 0]), float(pixels[0, 1])


def portrait_session(work: Path) -> tuple[dict, list[np.ndarray]]:
    truth = ios_portrait_recording(work / "ios-session", 360, 640, 3.0)
    scenario = work / "portrait-session"
    arsim("scenario", "import", str(work / "ios-session"), str(scenario))
    with load_scenario(scenario) as sc:
        size, frames = (sc.camera.width, sc.camera.height), len(sc.frame_times)
    a, b = 5, frames - 6
    pa, pb = cube_pixel(scenario, a, truth["position"]), cube_pixel(scenario, b, truth["position"])
    arsim("scenario", "anchor", "add", str(scenario), "--frame", str(a),
          "--pixel", f"{pa[0]:.1f},{pa[1]:.1f}", "--frame2", str(b),
          "--pixel2", f"{pb[0]:.1f},{pb[1]:.1f}", "--id", "cube", "--size", "0.15")
    placed = json.loads((scenario / "scenario.json").read_text())["anchors"][0]["position"]
    # how far the placed anchor is seen from the true point, over the whole session
    drift = max(float(np.hypot(*np.subtract(cube_pixel(scenario, i, placed),
                                            cube_pixel(scenario, i, truth["position"]))))
                for i in range(frames))
    rows, strips = {}, []
    for device in DEVICES:
        out = work / f"run-portrait-{device}"
        report = replay(scenario, device, out)
        shown = [f.copy() for f in iter_frames(out / "output.mp4")]
        picks = [len(shown) // 6, len(shown) // 2, len(shown) - 1]  # the first is still black
        strips.append(np.concatenate([label(shown[i], f"{device}  frame {i}") for i in picks],
                                     axis=1))
        rows[device] = {"output_video": list(video_size(out / "output.mp4")),
                        "input_shape": report["input_shape"],
                        "display_fps": report["metrics"]["display_fps"]}
    result = {
        "decoded_size": list(size),
        "frames": frames,
        "clicked": {"frame": a, "pixel": [round(v, 1) for v in pa],
                    "frame2": b, "pixel2": [round(v, 1) for v in pb]},
        "anchor_error_mm": round(1000 * float(np.linalg.norm(
            np.subtract(placed, truth["position"]))), 2),
        "anchor_reprojection_max_px": round(drift, 3),
        "devices": rows,
    }
    return result, strips


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    y = out.shape[0] - 12
    cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA)
    cv2.putText(out, text, (8, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                cv2.LINE_AA)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/recording_demo.json")
    parser.add_argument("--picture", default="docs/recording-demo.png")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="arsim-recording-demo-"))
    try:
        portrait, strips = portrait_session(work)
        clip, clip_frames = real_clip(work)
        results = {"real_iphone_clip": clip, "portrait_session": portrait}
        rows = [np.concatenate([strip, cv2.resize(frame, (strip.shape[0] * 9 // 16,
                                                          strip.shape[0]))], axis=1)
                for strip, frame in zip(strips, clip_frames, strict=True)]
        picture = cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR)
        picture = cv2.resize(picture, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(args.picture), picture)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
