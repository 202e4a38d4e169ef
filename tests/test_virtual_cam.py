"""Virtual webcam sink, through pyvirtualcam's own backend registry.

No camera or v4l2loopback device exists on a CI box, so the tests register TEST BACKENDS
(the only fakes here, named as such): one that records what it is sent, one that has no
device. Everything above the backend (pyvirtualcam.Camera, its checks and its pacing) is
the real library.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import numpy as np
import pytest
import pyvirtualcam

from simulator.errors import InputError
from simulator.sinks import ShownFrame
from simulator.sinks.virtual_cam import (
    VirtualCamSink,
    install_hint,
    letterbox,
    open_virtual_cam,
)

RECORDING = "arsim-test-recording"
UNAVAILABLE = "arsim-test-unavailable"


class RecordingTestBackend:
    """Test backend: a pyvirtualcam backend with no device, keeping each frame it is sent."""

    last: RecordingTestBackend | None = None

    def __init__(self, *, width: int, height: int, fps: float, fourcc: int,
                 device: str | None, **kw: object) -> None:
        if fourcc != pyvirtualcam.util.encode_fourcc(pyvirtualcam.PixelFormat.RGB.value):
            raise RuntimeError("test backend takes RGB only")
        self.width, self.height, self.fps = width, height, fps
        self.frames: list[np.ndarray] = []
        self.times: list[float] = []
        self.closed = False
        RecordingTestBackend.last = self

    def send(self, frame: np.ndarray) -> None:
        self.frames.append(frame.reshape(self.height, self.width, 3).copy())
        self.times.append(time.perf_counter())

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return "test://recording"

    def native_fourcc(self) -> int | None:
        return None


class UnavailableTestBackend:
    """Test backend: what pyvirtualcam's backends do when no device is loaded."""

    def __init__(self, **kw: object) -> None:
        raise RuntimeError("no virtual camera device found")


@pytest.fixture
def test_backends() -> Iterator[None]:
    """Register the test backends in pyvirtualcam's registry for one test."""
    pyvirtualcam.register_backend(RECORDING, RecordingTestBackend)
    pyvirtualcam.register_backend(UNAVAILABLE, UnavailableTestBackend)
    RecordingTestBackend.last = None
    yield
    for name in (RECORDING, UNAVAILABLE):
        pyvirtualcam.camera.BACKENDS.pop(name, None)


def _pattern(width: int, height: int) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = 200
    image[..., 1] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    return image


def test_sink_sends_camera_sized_rgb_frames(test_backends: None) -> None:
    with VirtualCamSink(backend=RECORDING, fps=200) as sink:
        for _ in range(5):
            sink.send(ShownFrame(0.0, _pattern(640, 360)))
        backend = RecordingTestBackend.last
        assert backend is not None and sink.device == "test://recording"
    assert backend.closed
    assert len(backend.frames) == sink.frames_sent == 5
    frame = backend.frames[0]
    assert frame.shape == (720, 1280, 3) and frame.dtype == np.uint8
    # same aspect: scaled 2x with no bars, red stays in the R channel (RGB, not BGR)
    assert (frame[..., 0] == 200).all() and (frame[..., 2] == 0).all()
    assert frame[360, 20, 1] < 20 and frame[360, 1260, 1] > 235


def test_letterbox_keeps_aspect_with_black_bars() -> None:
    portrait = np.full((480, 360, 3), 255, np.uint8)
    out = letterbox(portrait, 1280, 720)
    assert out.shape == (720, 1280, 3)
    assert (out[:, :100] == 0).all() and (out[:, -100:] == 0).all()  # pillar-box bars
    assert (out[:, 640] == 255).all()  # the image fills the height
    grey = letterbox(np.full((72, 128), 9, np.uint8), 1280, 720)
    assert grey.shape == (720, 1280, 3) and (grey == 9).all()
    with pytest.raises(InputError, match="uint8"):
        letterbox(np.zeros((4, 4, 3), np.float32), 8, 8)


def test_sink_paces_to_the_camera_rate(test_backends: None, monkeypatch: pytest.MonkeyPatch
                                        ) -> None:
    fps, n = 50.0, 12
    sink = VirtualCamSink(320, 180, fps, backend=RECORDING)
    calls = []
    real_sleep = sink.camera.sleep_until_next_frame
    monkeypatch.setattr(sink.camera, "sleep_until_next_frame",
                        lambda: (calls.append(1), real_sleep()))
    frame = _pattern(320, 180)
    started = time.perf_counter()
    for _ in range(n):
        sink.send(ShownFrame(0.0, frame))
    elapsed = time.perf_counter() - started
    sink.close()
    backend = RecordingTestBackend.last
    assert backend is not None
    assert len(calls) == n  # one pacing sleep per frame
    assert 0.8 * n / fps <= elapsed <= 2.0 * n / fps
    gaps = np.diff(backend.times)
    assert statistics.median(gaps) == pytest.approx(1 / fps, rel=0.3)


def test_no_device_gives_none_and_one_line(test_backends: None,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert open_virtual_cam(backend=UNAVAILABLE) is None
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert "no virtual camera device found" in lines[0] and install_hint() in lines[0]


def test_install_hints_name_what_to_install() -> None:
    linux = install_hint("Linux")
    assert "modprobe v4l2loopback exclusive_caps=1" in linux and 'card_label="arsim"' in linux
    assert "v4l2loopback-dkms" in linux
    assert "OBS" in install_hint("Windows") and "OBS" in install_hint("Darwin")


def test_bad_backend_or_size_is_input_error(test_backends: None) -> None:
    with pytest.raises(InputError, match="unknown backend 'nope'"):
        VirtualCamSink(backend="nope")
    with pytest.raises(InputError, match="even size"):
        VirtualCamSink(641, 360, backend=RECORDING)
