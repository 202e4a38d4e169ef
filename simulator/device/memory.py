"""Memory footprint of the app on the simulated phone, its budget and the OS kill limit.

MB here means 2**20 bytes. The app base (runtime, AR framework, UI) is not stored in the
profile: it is derived so that the reference model at its input size, on the profile's
calibration backend and camera, reproduces the seed table's memory.
"""

from __future__ import annotations

import math

from simulator.device.profile import (
    REFERENCE_MODEL,
    BackendProfile,
    DeviceProfile,
    resolve_backend,
)

MB = float(2**20)
_FP32_BYTES = 4


def model_and_buffers_mb(
    profile: DeviceProfile,
    backend: BackendProfile,
    *,
    weights_bytes_fp32: int,
    activation_mb: float,
    camera_w: int,
    camera_h: int,
    input_size: int,
    input_shape: tuple[int, int] | None = None,
) -> dict[str, float]:
    """Everything but the app base, activations included, by component (the input tensor
    at ``input_shape`` (width, height) when given, else input_size x input_size)."""
    in_w, in_h = input_shape or (input_size, input_size)
    memory, hardware = profile.memory, profile.hardware
    precision = backend.precision_bytes / _FP32_BYTES
    screen_px = hardware.screen_width * hardware.screen_height
    camera_px = camera_w * camera_h
    return {
        "weights": weights_bytes_fp32 * precision / MB,
        "activations": activation_mb * precision,
        "camera_buffers": memory.camera_buffers * memory.camera_bytes_per_px * camera_px / MB,
        "display_buffers": memory.display_buffers * memory.display_bytes_per_px * screen_px / MB,
        # The camera thread writes the normalised RGB input as FP32 whatever the backend.
        "input_tensor": 3 * in_w * in_h * _FP32_BYTES / MB,
    }


def derived_app_base_mb(profile: DeviceProfile) -> float:
    """Seed memory minus the modelled reference model and buffers (the calibration)."""
    reference = model_and_buffers_mb(
        profile,
        profile.backend(profile.memory.seed_backend),
        weights_bytes_fp32=REFERENCE_MODEL.weights_bytes_fp32,
        activation_mb=REFERENCE_MODEL.activation_mb_fp32,
        camera_w=profile.camera.width,
        camera_h=profile.camera.height,
        input_size=REFERENCE_MODEL.input_size,
    )
    return profile.memory.seed_memory_mb - sum(reference.values())


class MemoryModel:
    """Footprint of one model on one device and backend, with budget and kill limit.

    `activation_mb` is the FP32 activation peak (as the model card gives it); weights and
    activations are scaled to the backend's precision. With `retain_arena` (the default) the
    activation arena stays allocated between runs, as ONNX Runtime's arena and the TFLite /
    Core ML tensor arenas do; without it, activations count only while inferring.
    ``input_shape`` (width, height) is the real model input when it is not input_size x
    input_size (``--fit aspect``); ``activation_mb`` is then the peak at that shape.
    """

    def __init__(
        self,
        profile: DeviceProfile,
        backend: BackendProfile | str,
        *,
        weights_bytes_fp32: int,
        activation_mb: float,
        camera_w: int,
        camera_h: int,
        input_size: int,
        retain_arena: bool = True,
        input_shape: tuple[int, int] | None = None,
    ) -> None:
        for name, value in (
            ("weights_bytes_fp32", weights_bytes_fp32),
            ("activation_mb", activation_mb),
        ):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        sizes = {"camera_w": camera_w, "camera_h": camera_h, "input_size": input_size}
        for name, value in sizes.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        self.profile = profile
        self.backend = resolve_backend(profile, backend)
        self.retain_arena = retain_arena
        self.app_base_mb = derived_app_base_mb(profile)
        self._components = model_and_buffers_mb(
            profile,
            self.backend,
            weights_bytes_fp32=weights_bytes_fp32,
            activation_mb=activation_mb,
            camera_w=camera_w,
            camera_h=camera_h,
            input_size=input_size,
            input_shape=input_shape,
        )

    def breakdown_mb(self, inferring: bool) -> dict[str, float]:
        """Footprint by component (app base, weights, activations, buffers, input tensor)."""
        parts = {"app_base": self.app_base_mb, **self._components}
        if not (inferring or self.retain_arena):
            parts["activations"] = 0.0
        return parts

    def footprint_mb(self, inferring: bool) -> float:
        """Total modelled footprint in MB, with or without a run in flight."""
        return sum(self.breakdown_mb(inferring).values())

    @property
    def budget_mb(self) -> float:
        """The app's memory budget (``app_budget_mb``)."""
        return app_budget_mb(self.profile)

    def kill_limit_mb(self, pressure_mb: float = 0.0) -> float:
        """Footprint at which the OS kills the app, lowered by other apps' `pressure_mb`."""
        if not (math.isfinite(pressure_mb) and pressure_mb >= 0):
            raise ValueError(f"pressure_mb must be a finite number >= 0, got {pressure_mb!r}")
        return max(0.0, self.profile.memory.kill_limit_mb - pressure_mb)


def app_budget_mb(profile: DeviceProfile) -> float:
    """The app's memory budget: a fraction of RAM (20 % by default); crossing it warns."""
    return profile.memory.budget_fraction * profile.hardware.ram_mb


def model_process_budget_mb(profile: DeviceProfile) -> float:
    """What the app's budget leaves to the model process (weights, runtime, arena,
    activations): budget_fraction x ram_mb - derived app base - camera and display buffers.
    The default memory limit of the confined worker under real throttling."""
    memory, hardware = profile.memory, profile.hardware
    buffers = (memory.camera_buffers * memory.camera_bytes_per_px
               * profile.camera.width * profile.camera.height
               + memory.display_buffers * memory.display_bytes_per_px
               * hardware.screen_width * hardware.screen_height) / MB
    budget = memory.budget_fraction * hardware.ram_mb
    return max(1.0, budget - derived_app_base_mb(profile) - buffers)
