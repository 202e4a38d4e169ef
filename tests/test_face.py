"""Face tracking (mediapipe BlazeFace on real photos) and face-priority rendering."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from simulator.errors import InputError
from simulator.pipeline.face import FaceTrack, FaceTracker, FaceTrackerSettings
from simulator.pipeline.face_priority import FacePriority, FacePrioritySettings, feather_mask
from simulator.pipeline.stylize import Stylizer
from simulator.scenario.load import load_scenario
from simulator.scenario.synth import FACE_ASSET, PHOTO_CENTER, PHOTO_SIZE_M
from simulator.zoo.registry import resolve_model

ORBIT_DESK = Path(__file__).resolve().parents[1] / "scenarios" / "orbit-desk"
# The face in face.png (176 x 176), annotated by hand: cheek to cheek, hairline to chin.
FACE_IN_PHOTO = (55, 57, 70, 86)
Box = tuple[float, float, float, float]


def iou(a: Box, b: Box) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(FACE_ASSET)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def background() -> np.ndarray:
    rng = np.random.default_rng(5)
    coarse = rng.integers(40, 200, (16, 28, 3), dtype=np.uint8)
    return cv2.resize(coarse, (640, 360), interpolation=cv2.INTER_CUBIC)


def paste(background: np.ndarray, photo: np.ndarray, x: int, y: int) -> np.ndarray:
    frame = background.copy()
    frame[y : y + photo.shape[0], x : x + photo.shape[1]] = photo
    return frame


def true_face(x: int, y: int) -> Box:
    fx, fy, fw, fh = FACE_IN_PHOTO
    return (x + fx, y + fy, fw, fh)


@pytest.fixture(scope="module")
def tracker() -> FaceTracker:
    with FaceTracker(FaceTrackerSettings(detect_every=1)) as made:
        yield made


# --- tracking ------------------------------------------------------------------------------


def test_finds_the_pasted_photo(
    tracker: FaceTracker, background: np.ndarray, photo: np.ndarray
) -> None:
    for k, (x, y) in enumerate([(300, 100), (20, 170), (450, 10)]):
        track = tracker.update(float(k), paste(background, photo, x, y), k)
        assert track is not None and track.detected and track.age == 0
        assert iou(track.box, true_face(x, y)) > 0.5
        assert track.keypoints.shape == (6, 2)
        right_eye, left_eye = track.keypoints[0], track.keypoints[1]
        assert right_eye[0] < left_eye[0]  # the subject's right eye is on the image's left
        assert 0.5 <= track.confidence <= 1.0


def test_finds_the_billboard_face_in_orbit_desk(tracker: FaceTracker) -> None:
    tracker.reset()
    half = PHOTO_SIZE_M / 2
    corners = PHOTO_CENTER + np.array(
        [[sx * half, sy * half, 0.016] for sx in (-1, 1) for sy in (-1, 1)]
    )
    with load_scenario(ORBIT_DESK) as scenario:
        for frame in itertools.islice(scenario.frames(), 0, 60, 12):
            track = tracker.update(frame.time, frame.image, frame.index)
            assert track is not None and track.detected
            quad, _ = scenario.camera.project(frame.pose, corners)
            (qx0, qy0), (qx1, qy1) = quad.min(axis=0), quad.max(axis=0)
            cx, cy = track.center
            assert qx0 < cx < qx1 and qy0 < cy < qy1  # on the photo
            assert 0.25 < track.box[2] / (qx1 - qx0) < 0.9  # a face, not the whole photo


def test_detects_every_fifth_frame(background: np.ndarray, photo: np.ndarray) -> None:
    frame = paste(background, photo, 200, 80)
    with FaceTracker(FaceTrackerSettings(detect_every=5)) as five:
        tracks = [five.update(i / 30, frame, i) for i in range(20)]
        assert five.detections == 4 and five.frames == 20
        assert five.detections_per_s == pytest.approx(4 / (20 / 30))
        assert five.ms_per_detection > 0
        again = [five.update(i / 30, frame, i) for i in range(10)]  # a new sequence
        assert five.detections == 6 and again[0].detected and again[0].age == 0
        assert five.span_s == pytest.approx(30 / 30)
    assert all(t is not None for t in tracks)
    assert [t.detected for t in tracks] == [i % 5 == 0 for i in range(20)]
    assert [t.age for t in tracks] == [i % 5 for i in range(20)]


def test_cached_track_stays_close_to_per_frame_detection(
    background: np.ndarray, photo: np.ndarray
) -> None:
    frames = [paste(background, photo, 150 + 2 * i, 60 + i) for i in range(25)]  # 67 px/s
    boxes = {}
    for every in (1, 5):
        with FaceTracker(FaceTrackerSettings(detect_every=every)) as t:
            boxes[every] = [t.update(i / 30, f, i) for i, f in enumerate(frames)]
    gaps = [math.dist(a.center, b.center) for a, b in zip(boxes[1], boxes[5], strict=True)]
    sizes = [abs(a.box[2] - b.box[2]) for a, b in zip(boxes[1], boxes[5], strict=True)]
    assert np.mean(gaps) < 4.0 and max(gaps) < 10.0
    assert max(sizes) < 8.0
    # the cached boxes move with the face between detections (velocity prediction)
    carried = [boxes[5][i].center[0] for i in range(5, 10)]
    assert all(a < b for a, b in itertools.pairwise(carried))
    assert carried[-1] > carried[0] + 2


def test_track_expires_after_max_age(background: np.ndarray, photo: np.ndarray) -> None:
    face = paste(background, photo, 200, 80)
    with FaceTracker(FaceTrackerSettings(detect_every=1, max_age=3)) as t:
        assert t.update(0.0, face, 0) is not None
        ages = [getattr(t.update(i / 30, background, i), "age", None) for i in range(1, 6)]
        assert ages == [1, 2, 3, None, None]
        assert t.found == 1 and t.detections == 6


@pytest.mark.parametrize(
    "settings",
    [
        FaceTrackerSettings(detect_every=0),
        FaceTrackerSettings(model_selection=2),
        FaceTrackerSettings(min_confidence=1.5),
        FaceTrackerSettings(min_cutoff=0.0),
        FaceTrackerSettings(beta=-0.1),
        FaceTrackerSettings(max_age=-1),
        FaceTrackerSettings(detect_max_side=10),
    ],
)
def test_tracker_settings_validation(settings: FaceTrackerSettings) -> None:
    with pytest.raises(InputError) as raised:
        settings.validate()
    assert raised.value.where == "face"


# --- face priority -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stylizer() -> Stylizer:
    return Stylizer(resolve_model("toon-classic"), 256)


def face_track(box: Box) -> FaceTrack:
    return FaceTrack(box=box, keypoints=np.zeros((6, 2)), confidence=0.9, detected=True, age=0)


@pytest.fixture(scope="module")
def scene(background: np.ndarray, photo: np.ndarray) -> tuple[np.ndarray, FaceTrack]:
    return paste(background, photo, 300, 100), face_track(true_face(300, 100))


def outside(mask_box: tuple[int, int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    x, y, w, h = mask_box
    keep = np.ones(shape[:2], dtype=bool)
    keep[y : y + h, x : x + w] = False
    return keep


def test_face_priority_stylized_background(
    stylizer: Stylizer, scene: tuple[np.ndarray, FaceTrack]
) -> None:
    rgb, track = scene
    result = FacePriority(stylizer).render(rgb, track)
    assert result.image.shape == rgb.shape and result.image.dtype == np.uint8
    assert (result.face_size, result.background_size) == (256, 160)
    x, y, side, side_y = result.face_box
    assert side == side_y == round(86 * 2.2)  # longer side of the face box, margin 0.6 each side
    background_only = stylizer.stylize(rgb, 160)
    keep = outside(result.face_box, rgb.shape)
    np.testing.assert_array_equal(result.image[keep], background_only[keep])
    inner = (slice(y + side // 4, y + 3 * side // 4), slice(x + side // 4, x + 3 * side // 4))
    crop = stylizer.stylize(rgb[y : y + side, x : x + side], 256)
    core = result.image[inner].astype(int)
    np.testing.assert_array_equal(core, crop[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4])
    assert np.abs(core - background_only[inner]).mean() > 3  # the face got more detail
    flops = stylizer.model.flops
    # the background is the whole frame at 160, at its real input shape (--fit aspect)
    background = flops(stylizer.input_shape(rgb.shape[1], rgb.shape[0], 160))
    assert background != flops(160)
    assert result.face_flops_share == pytest.approx(flops(256) / (flops(256) + background))
    assert result.flops == flops(256) + background


def test_face_priority_passthrough_and_feathered_edge(
    stylizer: Stylizer, scene: tuple[np.ndarray, FaceTrack]
) -> None:
    rgb, track = scene
    priority = FacePriority(stylizer, FacePrioritySettings(background="passthrough"))
    result = priority.render(rgb, track)
    keep = outside(result.face_box, rgb.shape)
    np.testing.assert_array_equal(result.image[keep], rgb[keep])
    assert result.face_flops_share == 1.0 and result.background_size is None
    x, y, side, _ = result.face_box
    face = stylizer.stylize(rgb[y : y + side, x : x + side], 256).astype(float)
    region = rgb[y : y + side, x : x + side].astype(float)
    mask = feather_mask(side, 0.15 * side)[:, :, None]
    np.testing.assert_allclose(
        result.image[y : y + side, x : x + side], region + mask * (face - region), atol=0.51
    )
    ramp = mask[side // 2, : int(0.15 * side), 0]
    assert 0 < ramp[0] < ramp[-1] < 1 and np.all(np.diff(ramp) > 0)  # smooth, rising edge
    edge = result.image[y + side // 2, x + 3].astype(float)
    inner_edge, outer_edge = face[side // 2, 3], region[side // 2, 3]
    assert np.any(np.abs(edge - inner_edge) > 2) and np.any(np.abs(edge - outer_edge) > 2)


def test_feather_mask_shape() -> None:
    mask = feather_mask(40, 10, hard=(True, False, False, False))
    assert mask.shape == (40, 40) and mask.dtype == np.float32
    assert mask[20, 20] == 1.0 and mask[20, 0] == 1.0  # centre, hard left edge
    assert 0 < mask[20, 39] < 0.05 and 0 < mask[0, 20] < 0.05  # soft right and top edges
    np.testing.assert_array_equal(feather_mask(8, 0), np.ones((8, 8), np.float32))


def test_face_at_the_frame_border(stylizer: Stylizer, background: np.ndarray) -> None:
    priority = FacePriority(stylizer, FacePrioritySettings(background="passthrough"))
    height, width = background.shape[:2]
    result = priority.render(background, face_track((width - 40, height - 30, 80, 80)))
    x, y, side, _ = result.face_box
    assert (x + side, y + side) == (width, height) and side == 176  # shifted inside, square
    corner = stylizer.stylize(background[y:, x:], 256)[-1, -1]
    np.testing.assert_array_equal(result.image[-1, -1], corner)  # no feather at the border
    huge = priority.render(background, face_track((100, -50, 500, 500)))
    assert huge.face_box == (170, 0, height, height)  # as large as the frame allows
    gone = priority.render(background, face_track((width + 10, 20, 50, 50)))
    assert gone.face_box is None and gone.face_flops_share == 0.0
    plain = priority.render(background, None)
    np.testing.assert_array_equal(plain.image, stylizer.stylize(background))
    assert plain.background_size == 256 and plain.face_box is None


@pytest.mark.parametrize(
    "settings",
    [
        FacePrioritySettings(margin=-0.1),
        FacePrioritySettings(background="blur"),
        FacePrioritySettings(feather=0.9),
        FacePrioritySettings(crop_size=100),
        FacePrioritySettings(background_size=40),
    ],
)
def test_face_priority_settings_validation(
    stylizer: Stylizer, settings: FacePrioritySettings
) -> None:
    with pytest.raises(InputError) as raised:
        FacePriority(stylizer, settings)
    assert raised.value.where == "face"


def test_face_priority_with_shared_read_only_results(
    stylizer: Stylizer, scene: tuple[np.ndarray, FaceTrack]
) -> None:
    """Through the work cache model calls return shared, read-only arrays: the face is
    pasted on a copy, and the cached background stays as it was."""
    from simulator.work_cache import WorkCache, key_of

    rgb, track = scene
    cache = WorkCache(None)

    def cached(image: np.ndarray, size: int) -> np.ndarray:
        return cache.get_or_compute("stylized", key_of(size, image),
                                    lambda: stylizer.stylize(image, size))

    first = FacePriority(stylizer).render(rgb, track, cached)
    background = cached(rgb, 160)
    assert not background.flags.writeable
    np.testing.assert_array_equal(background, stylizer.stylize(rgb, 160))
    again = FacePriority(stylizer).render(rgb, track, cached)
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.image, FacePriority(stylizer).render(rgb, track).image)
