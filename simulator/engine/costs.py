"""What each stage of one stylized frame costs on the simulated phone, as the replay charges
it: the one place the replay's timeline and the app's stage chart take these numbers from.

Camera pre-processing runs on the camera thread for every frame; inference at the model
input shape (``--fit``) on a cool phone; post-processing at the input size, composing and
smoothing at the device's screen size on the render thread; the re-projection of a result
(warped reuse) at the screen size.
"""

from __future__ import annotations

from dataclasses import dataclass

from simulator.device.cost import CostModel
from simulator.device.profile import DeviceProfile
from simulator.pipeline.settings import PipelineSettings
from simulator.pipeline.stylize import input_shape, resolve_fit
from simulator.zoo.registry import ResolvedModel


@dataclass(frozen=True)
class StageCosts:
    """Phone milliseconds per stage (see the module docstring)."""

    preprocess: float
    inference: float
    postprocess: float
    compose: float
    smoothing: float
    warp: float
    reuse_warp: bool  # whether the pipeline re-projects results (warped reuse)

    @property
    def render(self) -> float:
        """Render-thread work after post-processing: compose + smoothing."""
        return self.compose + self.smoothing

    def chart(self) -> dict[str, float]:
        """The app's stage bars: post-processing and compose together; warp 0 unless the
        pipeline re-projects results."""
        return {"preprocess": self.preprocess, "inference": self.inference,
                "post_compose": self.postprocess + self.compose, "smoothing": self.smoothing,
                "warp": self.warp if self.reuse_warp else 0.0}


def stage_costs(cost: CostModel, pipeline: PipelineSettings, *, camera: tuple[int, int],
                screen: tuple[int, int], input_size: int,
                inference_flops: float, input_pixels: float = 0.0) -> StageCosts:
    """The stages' phone milliseconds for a ``camera`` (w, h) frame shown on ``screen``
    (w, h), the model run at ``input_size`` costing ``inference_flops`` on ``input_pixels``."""
    smoothing = pipeline.smoothing
    return StageCosts(
        preprocess=cost.preprocess_ms(*camera),
        inference=cost.inference_ms(inference_flops, input_pixels=input_pixels),
        postprocess=cost.postprocess_ms(input_size, *screen),
        compose=cost.compose_ms(*screen),
        smoothing=cost.smooth_ms(smoothing.method, smoothing.colour != "none", *screen),
        warp=cost.warp_ms(*screen),
        reuse_warp=pipeline.skip.reuse == "warp",
    )


def device_stage_costs(profile: DeviceProfile, backend: str, model: ResolvedModel,
                       input_size: int, fit: str | None, pipeline: PipelineSettings,
                       camera: tuple[int, int]) -> StageCosts:
    """``stage_costs`` of a device, model, size and fit for a camera: what the app shows
    before (and while) it replays."""
    shape = input_shape(model.card, input_size, *camera, resolve_fit(model.card, fit))
    screen = (profile.hardware.screen_width, profile.hardware.screen_height)
    return stage_costs(CostModel(profile, backend), pipeline, camera=camera, screen=screen,
                       input_size=input_size, inference_flops=model.flops(shape),
                       input_pixels=shape[0] * shape[1])
