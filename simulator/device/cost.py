"""Stage latencies on the simulated phone: pure functions of the profile and the work size."""

from __future__ import annotations

import math

from simulator.device.profile import BackendProfile, DeviceProfile, resolve_backend


class CostModel:
    """Latency of each pipeline stage on one device and inference backend.

    Inference = (per-call overhead + FLOPs / effective throughput) x thermal factor, where the
    throughput is derived from the seed FPS, so the reference model at 256 takes exactly
    1000 / seed_fps ms when cool. Pre-processing (camera thread) scales with camera pixels,
    post-processing and compositing (render thread) with input and screen pixels.
    """

    def __init__(self, profile: DeviceProfile, backend: BackendProfile | str) -> None:
        self.profile = profile
        self.backend = resolve_backend(profile, backend)

    @property
    def throughput_gflops(self) -> float:
        """Effective GFLOP/s of the backend (derived from its seed FPS and overhead)."""
        return self.backend.throughput_gflops

    def inference_ms(self, flops: float, thermal_factor: float = 1.0,
                     input_pixels: float = 0.0) -> float:
        """Latency of one model run of `flops` FLOPs (1 multiply-add = 2 FLOPs) on an input
        of `input_pixels` pixels (charged at the backend's `input_ns_per_px`)."""
        _require(flops, "flops", minimum=0.0)
        _require(thermal_factor, "thermal_factor", minimum=1.0)
        compute_ms = flops / (self.throughput_gflops * 1e9) * 1000.0
        area_ms = self.backend.input_ns_per_px * input_pixels / 1e6
        return (self.backend.overhead_ms + compute_ms + area_ms) * thermal_factor

    def preprocess_ms(self, cam_w: int, cam_h: int) -> float:
        """Resize + normalise one camera frame to the input tensor (camera thread)."""
        return self.backend.preprocess_ns_per_px * _pixels(cam_w, cam_h) / 1e6

    def postprocess_ms(self, input_size: int, screen_w: int, screen_h: int) -> float:
        """Denormalise the model output and resize it to the screen (render thread)."""
        pixels = _pixels(input_size, input_size) + _pixels(screen_w, screen_h)
        return self.backend.postprocess_ns_per_px * pixels / 1e6

    def compose_ms(self, screen_w: int, screen_h: int) -> float:
        """Draw camera background, stylized layer, anchors and HUD (render thread)."""
        render = self.profile.render
        pixels = _pixels(screen_w, screen_h)
        return render.compose_fixed_ms + render.compose_ns_per_px * pixels / 1e6

    def warp_ms(self, screen_w: int, screen_h: int) -> float:
        """Re-project the last result to a new camera pose (render thread)."""
        return self.profile.stages.warp_ns_per_px * _pixels(screen_w, screen_h) / 1e6

    def smooth_ms(self, method: str, colour: bool, screen_w: int, screen_h: int) -> float:
        """Temporal smoothing of one new result (render thread): a blend, plus a warp of the
        previous output for the motion-compensated methods, plus optical flow for "flow"."""
        if method == "none":
            return self.profile.stages.colour_ms if colour else 0.0
        stages = self.profile.stages
        ms = stages.blend_ns_per_px * _pixels(screen_w, screen_h) / 1e6
        if method in ("flow", "pose"):
            ms += self.warp_ms(screen_w, screen_h)
        if method == "flow":
            ms += stages.flow_ms
        return ms + (stages.colour_ms if colour else 0.0)

    def change_ms(self) -> float:
        """The skip decision's input-change test (camera thread)."""
        return self.profile.stages.change_ms

    def face_detect_ms(self) -> float:
        """One face detection (camera thread)."""
        return self.profile.stages.face_detect_ms


def _require(value: float, name: str, *, minimum: float) -> None:
    # Callers are the engine, not the user: a bad value here is a programming error.
    if not (math.isfinite(value) and value >= minimum):
        raise ValueError(f"{name} must be a finite number >= {minimum:g}, got {value!r}")


def _pixels(width: int, height: int) -> int:
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    return width * height
