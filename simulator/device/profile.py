"""Device profiles (`profiles/*.toml`): what is known of a phone, every number with its source.

A profile file holds plain data; every number is an inline table
``{ value = ..., source = "..." }`` whose source starts with ``seed table``, ``published:``,
``estimate:`` or ``measured:``. Numbers that follow from others (throughput, app base memory)
are derived in code, so recalibrating a device means changing one measured number.
Each TOML section maps onto one dataclass below, key for key; the validation rule of a key
sits next to its field.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

from simulator.errors import InputError

PROFILE_FORMAT = "arsim-device/1"
PROFILES_DIR = Path(__file__).with_name("profiles")
SOURCE_KINDS = ("seed table", "published:", "estimate:", "measured:")
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_TEXT_KEYS = ("format", "id", "name", "soc")


@dataclass(frozen=True)
class ReferenceModel:
    """The calibration anchor: the model and input size the seed table was measured with."""

    name: str
    input_size: int
    flops: float
    parameters: int
    activation_mb_fp32: float

    @property
    def weights_bytes_fp32(self) -> int:
        """FP32 weight bytes (4 per parameter)."""
        return self.parameters * 4


REFERENCE_MODEL = ReferenceModel(
    name="AnimeGANv2 generator",
    input_size=256,
    flops=52.6e9,
    parameters=2_143_552,
    # Peak of live tensors at 256x256 (estimate, see docs/device-model.md): in the last decoder
    # block the 128-channel map upsampled to full size and the 64-channel output of the conv
    # reading it are alive together: (128 + 64) x 256 x 256 x 4 B = 48 MiB.
    activation_mb_fp32=(128 + 64) * 256 * 256 * 4 / 2**20,
)


@dataclass(frozen=True)
class _Rule:
    """What a profile value must be; `expected` is the text shown when it is not."""

    kind: str  # "int", "float" or "text"
    low: float = 0.0
    high: float = math.inf
    low_inclusive: bool = False

    @property
    def expected(self) -> str:
        if self.kind == "text":
            return "a non-empty string"
        noun = "an integer" if self.kind == "int" else "a number"
        low_op = ">=" if self.low_inclusive else ">"
        if math.isinf(self.high):
            return f"{noun} {low_op} {self.low:g}"
        return f"{noun} {low_op} {self.low:g} and <= {self.high:g}"

    def accepts(self, value: object) -> bool:
        if self.kind == "text":
            return isinstance(value, str) and value.strip() != ""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        above = value >= self.low if self.low_inclusive else value > self.low
        return math.isfinite(value) and above and value <= self.high


def _key(
    kind: str = "float", low: float = 0.0, high: float = math.inf, *, zero_ok: bool = False,
    default: float | None = None,
) -> Any:
    """A dataclass field read from the profile under its own name, checked by a `_Rule`
    (``default``: the key may be left out, e.g. one that calibration adds)."""
    metadata = {"rule": _Rule(kind, low, high, low_inclusive=zero_ok)}
    if default is None:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class HardwareSpec:
    """Published hardware of the device."""

    ram_mb: int = _key("int")
    display_hz: int = _key("int")
    screen_width: int = _key("int")
    screen_height: int = _key("int")


@dataclass(frozen=True)
class CameraSpec:
    """The camera stream the AR framework delivers to the app."""

    fps: float = _key()
    width: int = _key("int")
    height: int = _key("int")


@dataclass(frozen=True)
class AppSpec:
    """App-level behaviour."""

    cold_start_ms: float = _key(zero_ok=True)


@dataclass(frozen=True)
class RenderSpec:
    """Compositing cost on the render thread (independent of the inference backend)."""

    compose_fixed_ms: float = _key(zero_ok=True)
    compose_ns_per_px: float = _key(zero_ok=True)


@dataclass(frozen=True)
class StageSpec:
    """Phone cost of the temporal-quality stages (frame skip, reuse warp, smoothing, face)."""

    warp_ns_per_px: float = _key(zero_ok=True)  # re-projecting a result with a homography
    blend_ns_per_px: float = _key(zero_ok=True)  # EMA blend of two layers
    flow_ms: float = _key(zero_ok=True)  # low-resolution optical flow, both directions
    colour_ms: float = _key(zero_ok=True)  # per-channel statistics + a colour transform
    change_ms: float = _key(zero_ok=True)  # thumbnail difference for the skip decision
    face_detect_ms: float = _key(zero_ok=True)  # one BlazeFace-class face detection


@dataclass(frozen=True)
class MemorySpec:
    """Memory calibration, budget, kill limit and frame buffers."""

    seed_memory_mb: float = _key()
    seed_backend: str = _key("text")
    budget_fraction: float = _key(high=1.0)
    kill_limit_mb: float = _key()
    camera_buffers: int = _key("int", 1, zero_ok=True)
    camera_bytes_per_px: float = _key()
    display_buffers: int = _key("int", 1, zero_ok=True)
    display_bytes_per_px: float = _key()


@dataclass(frozen=True)
class ThermalSpec:
    """Lumped thermal model: temperature rise above ambient, in degC."""

    tau_s: float = _key()
    heating_c_per_s: float = _key()
    throttle_above_c: float = _key(zero_ok=True)
    max_factor: float = _key("float", 1.0, zero_ok=True)


@dataclass(frozen=True)
class BackendProfile:
    """One inference backend of a device, calibrated by its seed-table FPS."""

    name: str
    seed_fps: float = _key()
    overhead_ms: float = _key(zero_ok=True)
    precision_bytes: int = _key("int", high=8)  # bytes per weight and activation element
    preprocess_ns_per_px: float = _key(zero_ok=True)
    postprocess_ns_per_px: float = _key(zero_ok=True)
    # per pixel of the model input, each inference: what scales with the input's area but not
    # its FLOPs (memory-bound layers, a one-thread app's tensor copies); `arsim calibrate`
    # fits it from runs at two or more input sizes of a model. Not part of seed_fps.
    input_ns_per_px: float = _key(zero_ok=True, default=0.0)

    @property
    def seed_latency_ms(self) -> float:
        """Inference latency of the reference model implied by the seed FPS."""
        return 1000.0 / self.seed_fps

    @property
    def throughput_gflops(self) -> float:
        """Effective GFLOP/s, derived: reference FLOPs over (seed latency - per-call overhead)."""
        compute_s = (self.seed_latency_ms - self.overhead_ms) / 1000.0
        return REFERENCE_MODEL.flops / compute_s / 1e9


@dataclass(frozen=True)
class DeviceProfile:
    """A simulated phone; `sources` maps each dotted key (``memory.kill_limit_mb``) to a source."""

    id: str
    name: str
    soc: str
    path: Path
    hardware: HardwareSpec
    camera: CameraSpec
    app: AppSpec
    render: RenderSpec
    stages: StageSpec
    memory: MemorySpec
    thermal: ThermalSpec
    backends: Mapping[str, BackendProfile]
    sources: Mapping[str, str]
    # standard errors of fitted values (``arsim calibrate``: ``{ value, source, stderr }``)
    stderrs: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def backend_names(self) -> list[str]:
        """Names of the backends this device offers, in file order."""
        return list(self.backends)

    def backend(self, name: str) -> BackendProfile:
        """The named backend; an unknown name is an InputError listing the available ones."""
        try:
            return self.backends[name]
        except KeyError:
            available = ", ".join(self.backends)
            raise InputError(
                "backend", f"unknown backend '{name}' for device {self.id} (available: {available})"
            ) from None


_SECTIONS: dict[str, type] = {
    "hardware": HardwareSpec,
    "camera": CameraSpec,
    "app": AppSpec,
    "render": RenderSpec,
    "stages": StageSpec,
    "memory": MemorySpec,
    "thermal": ThermalSpec,
}


class _ProfileReader:
    """Validates one parsed profile file and records the source of every value."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sources: dict[str, str] = {}
        self.stderrs: dict[str, float] = {}

    def fail(self, key: str, problem: str) -> InputError:
        return InputError(self.path, f"key '{key}': {problem}")

    def table(self, parent: Mapping[str, Any], key: str, dotted: str) -> Mapping[str, Any]:
        if key not in parent:
            raise self._missing(dotted, "a table")
        value = parent[key]
        if not isinstance(value, dict):
            raise self.fail(dotted, "expected a table")
        return value

    def _missing(self, dotted: str, what: str) -> InputError:
        return InputError(self.path, f"missing key '{dotted}' ({what})")

    def text(self, data: Mapping[str, Any], key: str) -> str:
        if key not in data:
            raise self._missing(key, "a string")
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "expected a non-empty string")
        return value

    def sourced(self, data: Mapping[str, Any], key: str, dotted: str, rule: _Rule) -> Any:
        """A `{ value = ..., source = "..." }` entry, checked against `rule` (a fitted value
        may add its standard error: `stderr = ...`, a number >= 0)."""
        shape = f'{{ value = {rule.expected}, source = "..." }}'
        if key not in data:
            raise self._missing(dotted, shape)
        entry = data[key]
        if not isinstance(entry, dict) or not {"value", "source"} <= set(entry) \
                or not set(entry) <= {"value", "source", "stderr"}:
            raise self.fail(dotted, f"expected {shape}")
        if "stderr" in entry:
            stderr = entry["stderr"]
            if isinstance(stderr, bool) or not isinstance(stderr, int | float) \
                    or not math.isfinite(stderr) or stderr < 0:
                raise self.fail(f"{dotted}.stderr", f"expected a number >= 0, got {stderr!r}")
            self.stderrs[dotted] = float(stderr)
        source = entry["source"]
        if not isinstance(source, str) or not source.startswith(SOURCE_KINDS):
            kinds = ", ".join(f"'{kind}'" for kind in SOURCE_KINDS)
            raise self.fail(f"{dotted}.source", f"expected a string starting with one of {kinds}")
        value = entry["value"]
        if not rule.accepts(value):
            raise self.fail(f"{dotted}.value", f"expected {rule.expected}, got {value!r}")
        self.sources[dotted] = source
        return float(value) if rule.kind == "float" else value

    def record(self, cls: type, data: Mapping[str, Any], prefix: str, **extra: Any) -> Any:
        """Builds dataclass `cls` from table `data`: every ruled field, no unknown key."""
        ruled = [f for f in fields(cls) if "rule" in f.metadata]
        unknown = sorted(set(data) - {f.name for f in ruled})
        if unknown:
            known = ", ".join(f.name for f in ruled)
            raise self.fail(f"{prefix}.{unknown[0]}", f"unknown key (expected one of: {known})")
        values = {
            f.name: self.sourced(data, f.name, f"{prefix}.{f.name}", f.metadata["rule"])
            for f in ruled if f.name in data or f.default is MISSING
        }
        for f in ruled:  # a key the profile may leave out still has a source: its default
            if f.name not in values:
                self.sources[f"{prefix}.{f.name}"] = \
                    f"estimate: left out of the profile, so the default {f.default:g}"
        return cls(**extra, **values)


def parse_profile(path: Path) -> DeviceProfile:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise InputError(path, f"cannot read device profile: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not a valid TOML file: {exc}") from None

    reader = _ProfileReader(path)
    unknown = sorted(set(data) - set(_TEXT_KEYS) - set(_SECTIONS) - {"backends"})
    if unknown:
        raise reader.fail(unknown[0], "unknown key")
    text = {key: reader.text(data, key) for key in _TEXT_KEYS}
    if text["format"] != PROFILE_FORMAT:
        raise reader.fail("format", f"expected '{PROFILE_FORMAT}', got '{text['format']}'")
    if not _NAME_RE.fullmatch(text["id"]):
        raise reader.fail("id", "expected 1-64 chars of [a-z0-9-], starting with a letter or digit")

    sections = {
        name: reader.record(cls, reader.table(data, name, name), name)
        for name, cls in _SECTIONS.items()
    }
    backend_tables = reader.table(data, "backends", "backends")
    if not backend_tables:
        raise reader.fail("backends", "expected at least one backend table")
    backends: dict[str, BackendProfile] = {}
    for name in backend_tables:
        dotted = f"backends.{name}"
        if not _NAME_RE.fullmatch(name):
            raise reader.fail(dotted, "expected a backend name of [a-z0-9-]")
        table = reader.table(backend_tables, name, dotted)
        backend = reader.record(BackendProfile, table, dotted, name=name)
        if backend.overhead_ms >= backend.seed_latency_ms:
            raise reader.fail(
                f"{dotted}.overhead_ms",
                f"expected less than the seed latency 1000/seed_fps = {backend.seed_latency_ms:.1f}"
                " ms (the rest is compute time)",
            )
        backends[name] = backend
    if sections["memory"].seed_backend not in backends:
        raise reader.fail(
            "memory.seed_backend.value", f"expected one of the backends: {', '.join(backends)}"
        )
    return DeviceProfile(
        id=text["id"],
        name=text["name"],
        soc=text["soc"],
        path=path,
        backends=MappingProxyType(backends),
        sources=MappingProxyType(reader.sources),
        stderrs=MappingProxyType(reader.stderrs),
        **sections,
    )


def resolve_backend(profile: DeviceProfile, backend: BackendProfile | str) -> BackendProfile:
    """`backend` itself, or the profile's backend of that name."""
    return profile.backend(backend) if isinstance(backend, str) else backend
