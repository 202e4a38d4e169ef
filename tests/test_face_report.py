"""Face detections in report.json (time, frame, box, score) and drawn in report.html."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from simulator.pipeline.face import FaceTracker, FaceTrackerSettings
from simulator.pipeline.settings import FaceSettings, PipelineSettings
from simulator.run import RunSettings, run_scenario

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def face_run(tmp_path_factory: pytest.TempPathFactory):
    settings = RunSettings(pipeline=PipelineSettings(face=FaceSettings(enabled=True)))
    return run_scenario(ROOT / "scenarios" / "orbit-desk", settings,
                        tmp_path_factory.mktemp("face"))


def test_every_detection_is_listed_with_a_box_inside_the_frame(face_run) -> None:
    report = face_run.report
    listed = report["face_detections"]
    width, height = report["scenario"]["width"], report["scenario"]["height"]
    assert listed
    for entry in listed:
        x, y, w, h = entry["box"]
        assert x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= width and y + h <= height
        assert entry["t"] == report["frames"][entry["frame"]]["t_capture"]
        assert 0 < entry["score"] <= 1 and entry["kind"] in ("detection", "cached")
        assert (entry["detector_box"] is not None) == (entry["kind"] == "detection")
        assert (entry["age"] == 0) == (entry["kind"] == "detection")
    fresh = [e for e in listed if e["kind"] == "detection"]
    assert len(fresh) == report["face"]["found"]  # every detector hit, no more
    frames = [e["frame"] for e in listed]
    assert frames == sorted(set(frames))  # one entry per frame, in order


def test_the_html_draws_the_boxes_and_a_detection_timeline(face_run) -> None:
    html = face_run.paths["html"].read_text()
    boxes = re.findall(r'<svg class="face-box"[^>]*><rect x="([\d.]+)" y="([\d.]+)"', html)
    assert boxes and len(boxes) % 2 == 0  # on the input and on the output thumbnail
    listed = {(round(e["box"][0], 1), round(e["box"][1], 1))
              for e in face_run.report["face_detections"]}
    assert {(float(x), float(y)) for x, y in boxes} <= listed
    fresh = [e for e in face_run.report["face_detections"] if e["kind"] == "detection"]
    assert html.count('class="dot"') == len(fresh)
    assert f"Face detections ({len(fresh)} detector hits" in html


def test_without_face_priority_the_list_is_empty(tmp_path: Path) -> None:
    report = run_scenario(ROOT / "scenarios" / "orbit-desk", RunSettings(timing_only=True),
                          tmp_path).report
    assert report["face_detections"] == [] and report["face"] is None


def test_the_confined_worker_reports_the_detector_box_too() -> None:
    from simulator.engine.worker import InferenceWorker
    from simulator.scenario.synth import FACE_ASSET

    photo = cv2.cvtColor(cv2.imread(str(FACE_ASSET)), cv2.COLOR_BGR2RGB)
    frame = np.full((240, 320, 3), 90, np.uint8)
    frame[32 : 32 + photo.shape[0], 72 : 72 + photo.shape[1]] = photo
    settings = FaceTrackerSettings(detect_every=2)
    with FaceTracker(settings) as tracker:
        local = tracker.update(0.0, frame, 0)
    assert local is not None and local.detection_box is not None
    with InferenceWorker("ar-lite") as worker:
        got = worker.track(0.0, frame, 0, settings)
        assert got is not None and got.detected
        assert np.allclose(got.detection_box, local.detection_box, atol=2.0)
        cached = worker.track(0.1, frame, 1, settings)  # no detector run on this frame
        assert cached is not None and not cached.detected and cached.detection_box is None
