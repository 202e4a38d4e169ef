"""Distillation recipe for the AR-lite student (:mod:`simulator.zoo.lite`).

``python -m simulator.zoo.train_lite --out models [--teacher NAME|PATH] [--steps N] [--seed S]``

1. Training images: frames rendered by :func:`simulator.scenario.synth.synthesize` for every
   preset with seeds 1.. (the bundled samples all use seed 0), squashed to the model input
   size exactly as the Stylizer does (``shrink_to_square``). Each frame is kept as rendered
   and once more with a seeded brightness/contrast jitter.
2. Teacher targets: the teacher (any ONNX image model, run by ONNX Runtime through the
   Stylizer's own pre/post-processing) is run once per image; inputs and targets are cached
   in an ``.npz`` keyed by the recipe and the teacher file's hash.
3. Training: random square crops (multiples of 8 in ``crop_min..crop_max``), horizontal
   flips; loss = L1 + ``grad_weight`` * L1 of the image gradients (+ optional SSIM term);
   Adam with cosine decay, seeded, CPU, ``threads`` torch threads. Progress on stderr.
4. Hold-out: SSIM/PSNR of the student against the teacher, both through the full Stylizer
   (640x360 frame -> size -> back), on frames of the bundled scenarios (never trained on).
5. Output: ``ar-lite.onnx`` (built by :func:`simulator.zoo.lite.build_lite` from the
   state dict, no torch export), ``ar-lite.card.json`` and ``ar-lite.train.json``.

PyTorch is the optional ``train`` extra: it is imported inside the functions that need it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.zoo import graph_stats
from simulator.zoo.card import BYTES_PER_MB, ImageSpec, InputSpec, ModelCard, save_card
from simulator.zoo.lite import NAME, LiteConfig, build_lite, conv_specs, forward, init_state
from simulator.zoo.registry import ResolvedModel, resolve_model

REPO_ROOT = Path(__file__).resolve().parents[2]
HOLDOUT_SCENARIOS = ("scenarios/orbit-desk", "scenarios/pan-fast", "scenarios/walk-events")
CARD_SIZES = (256, 512)
DATA_VERSION = 1  # bump when the dataset construction changes (invalidates caches)


@dataclass(frozen=True)
class Recipe:
    """Every setting of one distillation run (written verbatim to ``ar-lite.train.json``)."""

    teacher: str = "toon-classic"
    seed: int = 0
    steps: int = 1500
    batch: int = 8
    crop_min: int = 96
    crop_max: int = 128
    lr: float = 2e-3
    lr_final: float = 2e-5
    grad_weight: float = 0.5
    ssim_weight: float = 0.0
    size: int = 256
    presets: tuple[str, ...] = ("orbit", "pan-fast", "handheld-shake", "walk", "low-light")
    scene_seeds: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    frames_fps: float = 1.5
    brightness_jitter: float = 0.25
    contrast_jitter: float = 0.25
    threads: int = 2
    log_every: int = 50
    eval_every: int = 500
    holdout_stride: int = 20
    config: LiteConfig = field(default_factory=LiteConfig)


@dataclass
class Dataset:
    """Model-size RGB uint8 images (N, S, S, 3) and the teacher's outputs for them."""

    inputs: np.ndarray
    targets: np.ndarray


# ---------------------------------------------------------------------------------------
# Data


def jitter(image: np.ndarray, brightness: float, contrast: float) -> np.ndarray:
    """RGB uint8 with contrast scaled about the mean by ``contrast`` and brightness by
    ``brightness`` (both factors, 1 = unchanged), saturated to 0..255."""
    values = image.astype(np.float32)
    mean = values.mean()
    values = ((values - mean) * contrast + mean) * brightness
    return np.clip(values + 0.5, 0, 255).astype(np.uint8)


def render_frames(recipe: Recipe, work_dir: Path) -> list[np.ndarray]:
    """Frames of synthetic scenarios for every (preset, scene seed) of the recipe."""
    from simulator.scenario.load import load_scenario
    from simulator.scenario.synth import synthesize

    if 0 in recipe.scene_seeds:
        raise InputError("scene_seeds", "seed 0 renders the bundled samples (the hold-out set)")
    frames = []
    for preset in recipe.presets:
        for seed in recipe.scene_seeds:
            path = synthesize(work_dir / f"{preset}-{seed}", preset, seed, fps=recipe.frames_fps)
            with load_scenario(path) as scenario:
                frames += [frame.image for frame in scenario.frames()]
    return frames


def teacher_outputs(
    teacher: ResolvedModel, images: Sequence[np.ndarray], size: int, threads: int = 2
) -> np.ndarray:
    """The teacher's RGB uint8 output at ``size x size`` for each ``size x size`` image."""
    from simulator.pipeline.stylize import Stylizer

    stylizer = Stylizer(teacher, size, threads)
    return np.stack([stylizer.stylize(image) for image in images])


def build_dataset(recipe: Recipe, teacher: ResolvedModel, log: Callable[[str], None]) -> Dataset:
    """Render, squash, jitter and run the teacher once per image."""
    from simulator.pipeline.stylize import shrink_to_square

    rng = np.random.default_rng([recipe.seed, 1])
    with tempfile.TemporaryDirectory(prefix="ar-lite-data-") as work:
        frames = render_frames(recipe, Path(work))
    inputs = []
    for frame in frames:
        small = shrink_to_square(frame, recipe.size)
        b = 1 + rng.uniform(-recipe.brightness_jitter, recipe.brightness_jitter)
        c = 1 + rng.uniform(-recipe.contrast_jitter, recipe.contrast_jitter)
        inputs += [small, jitter(small, b, c)]
    log(f"dataset: {len(frames)} rendered frames -> {len(inputs)} images; running the teacher")
    images = np.stack(inputs)
    return Dataset(images, teacher_outputs(teacher, images, recipe.size, recipe.threads))


def _dataset_key(recipe: Recipe, teacher: ResolvedModel) -> str:
    settings = {
        k: getattr(recipe, k)
        for k in (
            "seed",
            "size",
            "presets",
            "scene_seeds",
            "frames_fps",
            "brightness_jitter",
            "contrast_jitter",
        )
    }
    digest = hashlib.sha256(json.dumps([DATA_VERSION, settings], default=list).encode())
    digest.update(teacher.path.read_bytes())
    return digest.hexdigest()[:16]


def cached_dataset(
    recipe: Recipe, teacher: ResolvedModel, cache_dir: Path | None, log: Callable[[str], None]
) -> Dataset:
    """The dataset from ``cache_dir`` when it was built for the same settings and teacher
    file, else built (and stored there when a cache folder is given)."""
    path = cache_dir / f"ar-lite-data-{_dataset_key(recipe, teacher)}.npz" if cache_dir else None
    if path is not None and path.is_file():
        with np.load(path) as data:
            log(f"dataset: cached {path}")
            return Dataset(data["inputs"], data["targets"])
    dataset = build_dataset(recipe, teacher, log)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, inputs=dataset.inputs, targets=dataset.targets)
    return dataset


# ---------------------------------------------------------------------------------------
# The PyTorch student


def student_module(
    config: LiteConfig | None = None, state: Mapping[str, np.ndarray] | None = None, seed: int = 0
):
    """The PyTorch student (an ``nn.Module``) whose ``state_dict`` keys are those
    :func:`simulator.zoo.lite.build_lite` reads; weights from ``state`` or
    :func:`simulator.zoo.lite.init_state` with ``seed``."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    config = config or LiteConfig()

    class TorchOps:
        def __init__(self, convs: nn.ModuleDict) -> None:
            self.convs = convs

        def conv(self, name: str, x: torch.Tensor, relu: bool) -> torch.Tensor:
            y = self.convs[name](x)
            return F.relu(y) if relu else y

        def add(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return a + b

        def upsample2(self, x: torch.Tensor) -> torch.Tensor:
            return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)

        def clip01(self, x: torch.Tensor) -> torch.Tensor:
            return x.clamp(0.0, 1.0)

    class LiteStudent(nn.Module):
        """AR-lite in PyTorch: RGB [0,1] NCHW in and out."""

        def __init__(self) -> None:
            super().__init__()
            self.config = config
            self.convs = nn.ModuleDict(
                {
                    s.name: nn.Conv2d(
                        s.cin, s.cout, s.kernel, s.stride, s.kernel // 2, groups=s.groups
                    )
                    for s in conv_specs(config)
                }
            )

        def forward(self, image: torch.Tensor, clip: bool = True) -> torch.Tensor:
            return forward(TorchOps(self.convs), image, self.config, clip)

    module = LiteStudent()
    weights = state if state is not None else init_state(config, seed)
    module.load_state_dict(numpy_to_torch_state(weights))
    return module


def _torch_key(key: str) -> str:
    return f"convs.{key}"


def numpy_to_torch_state(state: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """``build_lite`` keys -> the module's own ``state_dict`` keys (``convs.`` prefix)."""
    import torch

    return {
        _torch_key(k): torch.from_numpy(np.asarray(v, np.float32).copy()) for k, v in state.items()
    }


def numpy_state(module) -> dict[str, np.ndarray]:
    """The module's weights as the numpy state dict ``build_lite`` takes."""
    prefix = _torch_key("")
    return {
        k[len(prefix) :]: v.detach().cpu().numpy().astype(np.float32)
        for k, v in module.state_dict().items()
    }


# ---------------------------------------------------------------------------------------
# Training


def _ssim_loss(pred, target):
    """1 - mean SSIM (11x11 Gaussian window, sigma 1.5, per channel) of [0,1] tensors."""
    import torch
    import torch.nn.functional as F

    coords = torch.arange(11, dtype=pred.dtype) - 5
    g = torch.exp(-(coords**2) / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(pred.shape[1], 1, 11, 11)

    def blur(x):
        return F.conv2d(x, window, groups=pred.shape[1])

    mu_p, mu_t = blur(pred), blur(target)
    var_p = blur(pred * pred) - mu_p**2
    var_t = blur(target * target) - mu_t**2
    cov = blur(pred * target) - mu_p * mu_t
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / (
        (mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)
    )
    return 1 - ssim.mean()


def distillation_loss(pred, target, grad_weight: float, ssim_weight: float):
    """L1 + grad_weight * L1 of x/y differences + ssim_weight * (1 - SSIM)."""
    loss = (pred - target).abs().mean()
    if grad_weight:
        for dim in (2, 3):
            loss = loss + grad_weight * (pred.diff(dim=dim) - target.diff(dim=dim)).abs().mean()
    if ssim_weight:
        loss = loss + ssim_weight * _ssim_loss(pred, target)
    return loss


@dataclass
class TrainLog:
    """What happened during training: per-step losses and timing."""

    losses: list[float] = field(default_factory=list)
    step_ms: list[float] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    wall_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        window = max(1, min(50, len(self.losses) // 10))
        return {
            "steps": len(self.losses),
            "loss_first": round(float(np.mean(self.losses[:window])), 5),
            "loss_last": round(float(np.mean(self.losses[-window:])), 5),
            "loss_window_steps": window,
            "ms_per_step_median": round(float(np.median(self.step_ms)), 1),
            "train_wall_s": round(self.wall_s, 1),
            "evaluations": self.evaluations,
        }


def _batch(dataset: Dataset, rng: np.random.Generator, recipe: Recipe):
    import torch

    size = dataset.inputs.shape[1]
    crop = int(rng.integers(recipe.crop_min // 8, recipe.crop_max // 8 + 1)) * 8
    crop = min(crop, size - size % 8)
    picks = rng.integers(0, len(dataset.inputs), recipe.batch)
    ys = rng.integers(0, size - crop + 1, recipe.batch)
    xs = rng.integers(0, size - crop + 1, recipe.batch)
    flips = rng.random(recipe.batch) < 0.5
    pairs = []
    for i, y, x, flip in zip(picks, ys, xs, flips, strict=True):
        step = -1 if flip else 1
        window = (slice(y, y + crop), slice(x, x + crop))
        a = dataset.inputs[i][window][:, ::step]
        b = dataset.targets[i][window][:, ::step]
        pairs.append((a, b))
    def to_tensor(arrays: list[np.ndarray]) -> torch.Tensor:
        stacked = np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))
        return torch.from_numpy(stacked).float().div_(255.0)

    return to_tensor([a for a, _ in pairs]), to_tensor([b for _, b in pairs])


def train(
    recipe: Recipe,
    dataset: Dataset,
    log: Callable[[str], None],
    evaluate: Callable[[dict[str, np.ndarray]], dict[str, Any]] | None = None,
) -> tuple[dict[str, np.ndarray], TrainLog]:
    """Train the student on ``dataset``; return its numpy state dict and the log.
    ``evaluate(state)`` (when given) runs every ``eval_every`` steps and at the end."""
    import math

    import torch

    torch.manual_seed(recipe.seed)
    torch.set_num_threads(recipe.threads)
    rng = np.random.default_rng([recipe.seed, 2])
    student = student_module(recipe.config, seed=recipe.seed)
    optimizer = torch.optim.Adam(student.parameters(), lr=recipe.lr)
    ratio = recipe.lr_final / recipe.lr

    def lr_factor(step: int) -> float:
        progress = step / max(1, recipe.steps - 1)
        return ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    record = TrainLog()
    started = time.perf_counter()
    for step in range(1, recipe.steps + 1):
        tick = time.perf_counter()
        inputs, targets = _batch(dataset, rng, recipe)
        loss = distillation_loss(
            student(inputs, clip=False), targets, recipe.grad_weight, recipe.ssim_weight
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        record.losses.append(loss.item())
        record.step_ms.append((time.perf_counter() - tick) * 1e3)
        if step % recipe.log_every == 0 or step == recipe.steps:
            recent = record.losses[-recipe.log_every :]
            log(
                f"step {step}/{recipe.steps}  loss {np.mean(recent):.4f}  "
                f"{np.median(record.step_ms[-recipe.log_every :]):.0f} ms/step  "
                f"lr {scheduler.get_last_lr()[0]:.2e}"
            )
        if evaluate and (step % recipe.eval_every == 0 or step == recipe.steps):
            result = {"step": step, **evaluate(numpy_state(student))}
            record.evaluations.append(result)
            log(f"hold-out at step {step}: {result}")
    record.wall_s = time.perf_counter() - started
    return numpy_state(student), record


# ---------------------------------------------------------------------------------------
# Evaluation, card and files


def holdout_frames(scenarios: Sequence[str | Path], stride: int) -> list[np.ndarray]:
    """Every ``stride``-th frame of each hold-out scenario (RGB uint8, camera size)."""
    from simulator.scenario.load import load_scenario

    frames = []
    for path in scenarios:
        with load_scenario(path) as scenario:
            frames += [f.image for f in scenario.frames() if f.index % stride == 0]
    return frames


def lite_card(
    model, holdout: Mapping[str, Any] | None, timing: Mapping[str, float] | None, recipe: Recipe
) -> ModelCard:
    """The card of an AR-lite graph; costs from graph_stats, the rest from the run."""
    stats = {size: graph_stats.analyze(model, size) for size in CARD_SIZES}
    first = stats[CARD_SIZES[0]]
    notes = [
        f"Student of teacher '{recipe.teacher}'; widths {recipe.config.widths}, "
        f"expand {recipe.config.expand}, {recipe.config.deep_blocks} bottleneck blocks."
    ]
    if holdout:
        notes.append(
            f"Hold-out vs teacher (bundled scenarios, never trained on, "
            f"{holdout['frames']} frames through the full Stylizer at "
            f"{recipe.size}): SSIM {holdout['ssim']:.3f}, PSNR {holdout['psnr']:.1f} dB."
        )
    if timing:
        notes.append(
            f"Host at {recipe.size}, {timing['threads']} ORT threads: "
            f"{timing['bare_ms']:.1f} ms bare session.run, "
            f"{timing['stylize_ms']:.1f} ms full stylize of a 640x360 frame."
        )
    notes.append("Settings and training log: ar-lite.train.json.")
    return ModelCard(
        name=NAME,
        file=f"{NAME}.onnx",
        description="Real-time student generator (MobileNetV2-style inverted residual "
        "encoder-decoder, 1/4-resolution bottleneck, residual to the input image), "
        f"distilled from '{recipe.teacher}'.",
        input=InputSpec("NCHW", (0.0, 1.0), "RGB", recipe.size, 8, 64, 1024,
                        fully_convolutional=True),
        output=ImageSpec("NCHW", (0.0, 1.0), "RGB"),
        parameters=first.parameters,
        weights_mb=round(first.weights_bytes / BYTES_PER_MB, 6),
        flops={size: s.flops for size, s in stats.items()},
        activation_mb={
            s: round(v.activation_peak_bytes / BYTES_PER_MB, 3) for s, v in stats.items()
        },
        provenance=f"distilled by simulator/zoo/train_lite.py from {recipe.teacher} with seed "
        f"{recipe.seed}, {recipe.steps} steps; synthetic training frames, no download",
        notes=" ".join(notes),
    )


def write_student(
    state: Mapping[str, np.ndarray],
    folder: Path,
    recipe: Recipe,
    holdout: Mapping[str, Any] | None = None,
    timing: Mapping[str, float] | None = None,
) -> ResolvedModel:
    """Write ``ar-lite.onnx`` and its card into ``folder``; return the resolved model."""
    folder.mkdir(parents=True, exist_ok=True)
    model = build_lite(state)
    (folder / f"{NAME}.onnx").write_bytes(model.SerializeToString())
    save_card(lite_card(model, holdout, timing, recipe), folder / f"{NAME}.card.json")
    return resolve_model(str(folder / f"{NAME}.card.json"))


class HoldoutEvaluator:
    """SSIM/PSNR of a student state against the teacher on fixed hold-out frames, both
    through the full Stylizer (the teacher's outputs are computed once)."""

    def __init__(
        self, teacher: ResolvedModel, recipe: Recipe, scenarios: Sequence[str | Path]
    ) -> None:
        from simulator.pipeline.stylize import Stylizer

        self.recipe = recipe
        self.frames = holdout_frames(scenarios, recipe.holdout_stride)
        teacher_stylizer = Stylizer(teacher, recipe.size, recipe.threads)
        self.references = [teacher_stylizer.stylize(frame) for frame in self.frames]

    def __call__(self, state: Mapping[str, np.ndarray]) -> dict[str, Any]:
        from simulator.pipeline.stylize import Stylizer
        from simulator.zoo.quality import psnr, ssim

        with tempfile.TemporaryDirectory(prefix="ar-lite-eval-") as folder:
            student = write_student(state, Path(folder), self.recipe)
            stylizer = Stylizer(student, self.recipe.size, self.recipe.threads)
            outputs = [stylizer.stylize(frame) for frame in self.frames]
        ssims = [float(ssim(o, r)) for o, r in zip(outputs, self.references, strict=True)]
        psnrs = [float(psnr(o, r)) for o, r in zip(outputs, self.references, strict=True)]
        return {
            "frames": len(self.frames),
            "ssim": round(float(np.mean(ssims)), 4),
            "ssim_min": round(min(ssims), 4),
            "psnr": round(float(np.mean(psnrs)), 2),
        }


def host_timing(
    model: ResolvedModel, size: int, threads: int, repeats: int = 60
) -> dict[str, float]:
    """Median host milliseconds of the bare session.run and of a full stylize of a
    640x360 frame at ``size``."""
    from simulator.pipeline.stylize import Stylizer

    stylizer = Stylizer(model, size, threads)
    frame = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    frame = cv2.GaussianBlur(frame, (0, 0), 2.0)
    tensor = stylizer.preprocess(frame)

    def median_ms(action: Callable[[], object]) -> float:
        for _ in range(5):
            action()
        times = []
        for _ in range(repeats):
            tick = time.perf_counter()
            action()
            times.append(time.perf_counter() - tick)
        return round(float(np.median(times)) * 1e3, 2)

    return {
        "threads": threads,
        "size": size,
        "bare_ms": median_ms(lambda: stylizer.run(tensor)),
        "stylize_ms": median_ms(lambda: stylizer.stylize(frame)),
    }


def _stderr(message: str) -> None:
    print(f"train-lite: {message}", file=sys.stderr, flush=True)


def run_recipe(
    recipe: Recipe,
    out_dir: Path,
    cache_dir: Path | None = None,
    log: Callable[[str], None] = _stderr,
    holdout_scenarios: Sequence[str | Path] | None = None,
) -> dict[str, Any]:
    """The whole recipe: data, training, hold-out, timing; writes the three files."""
    teacher = resolve_model(recipe.teacher)
    problem = teacher.card.input.size_problem(recipe.size)
    if problem:
        raise InputError("teacher", f"{problem} (model {teacher.name})")
    started = time.perf_counter()
    dataset = cached_dataset(recipe, teacher, cache_dir, log)
    data_s = time.perf_counter() - started
    scenarios = holdout_scenarios or [REPO_ROOT / s for s in HOLDOUT_SCENARIOS]
    evaluator = HoldoutEvaluator(teacher, recipe, scenarios)
    state, record = train(recipe, dataset, log, evaluator)
    holdout = record.evaluations[-1]
    student = write_student(state, out_dir, recipe, holdout)
    timing = host_timing(student, recipe.size, recipe.threads)
    write_student(state, out_dir, recipe, holdout, timing)
    log(f"wrote {out_dir / NAME}.onnx: hold-out {holdout}, host {timing}")
    summary = {
        "format": "arsim-train-lite/1",
        "recipe": asdict(recipe),
        "teacher_file": str(
            teacher.path.relative_to(REPO_ROOT)
            if teacher.path.is_relative_to(REPO_ROOT)
            else teacher.path
        ),
        "dataset": {
            "images": len(dataset.inputs),
            "size": recipe.size,
            "build_or_load_s": round(data_s, 1),
        },
        "holdout": {"scenarios": [Path(s).name for s in scenarios], **holdout},
        "host": timing,
        "log": record.summary(),
    }
    path = out_dir / f"{NAME}.train.json"
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry (see the module docstring)."""
    defaults = Recipe()
    parser = argparse.ArgumentParser(
        prog="python -m simulator.zoo.train_lite",
        description="Distil the AR-lite student from a teacher.",
    )
    parser.add_argument("--out", type=Path, default=Path("models"), help="output folder")
    parser.add_argument("--teacher", default=defaults.teacher, help="model name or .onnx path")
    parser.add_argument("--steps", type=int, default=defaults.steps)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("out/train-lite-cache"),
        help="dataset cache folder ('' for none)",
    )
    args = parser.parse_args(argv)
    if args.steps < 1:
        parser.error("--steps must be >= 1")
    recipe = replace(defaults, teacher=args.teacher, steps=args.steps, seed=args.seed)
    try:
        run_recipe(recipe, args.out, args.cache if str(args.cache) else None)
    except InputError as error:
        print(f"train-lite: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
