"""The bundled device profiles and profile files: finding, loading (with the checks that
need the derived memory model) and describing them.

Kept apart from ``profile.py`` (the data and its parsing), which the memory, thermal and cost
models import: loading needs those models, so here nothing imports in a circle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from simulator.device.memory import derived_app_base_mb
from simulator.device.profile import PROFILES_DIR, REFERENCE_MODEL, DeviceProfile, parse_profile
from simulator.device.thermal import ThermalModel
from simulator.errors import InputError


def _checked(profile: DeviceProfile) -> DeviceProfile:
    """Cross-checks that need the derived memory model."""
    if derived_app_base_mb(profile) <= 0:
        raise InputError(
            profile.path,
            "key 'memory.seed_memory_mb': expected more than the modelled weights, activations"
            " and frame buffers of the reference model (the app base would be <= 0 MB)",
        )
    return profile


def bundled_profile_ids() -> list[str]:
    """Ids of the profiles shipped with the package, sorted."""
    return sorted(path.stem for path in PROFILES_DIR.glob("*.toml"))


def load_profile(id_or_path: str | Path) -> DeviceProfile:
    """A bundled profile by id (``redmi-note-10``) or a profile file by path (``my.toml``)."""
    text = str(id_or_path)
    if isinstance(id_or_path, Path) or text.endswith(".toml") or "/" in text or "\\" in text:
        path = Path(id_or_path)
        if not path.is_file():
            raise InputError(path, "no such device profile file")
        return _checked(parse_profile(path))
    known = bundled_profile_ids()
    if text not in known:
        raise InputError(
            "device",
            f"unknown device '{text}' (known: {', '.join(known)};"
            " or give the path of a .toml profile)",
        )
    profile = _checked(parse_profile(PROFILES_DIR / f"{text}.toml"))
    if profile.id != text:
        raise InputError(profile.path, f"key 'id': expected '{text}' (the file name)")
    return profile


def list_profiles() -> list[DeviceProfile]:
    """All bundled profiles, sorted by id."""
    return [load_profile(profile_id) for profile_id in bundled_profile_ids()]


def summary_line(profile: DeviceProfile) -> str:
    """One line for ``arsim devices list``."""
    backends = ", ".join(f"{b.name} {b.seed_fps:g} fps" for b in profile.backends.values())
    hw = profile.hardware
    return (
        f"{profile.id:<16} {profile.name}  |  {hw.ram_mb} MB RAM, {hw.display_hz} Hz,"
        f" {hw.screen_width}x{hw.screen_height}  |  {backends}"
    )


def describe(profile: DeviceProfile) -> str:
    """Human-readable, multi-line description with sources (``arsim devices show``)."""
    lines = [f"{profile.id}: {profile.name} ({profile.soc})", f"file: {profile.path}"]
    section = None
    for dotted, source in profile.sources.items():
        head, _, key = dotted.rpartition(".")
        if head != section:
            section = head
            lines.append(f"[{section}]")
        value = _lookup(profile, dotted)
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<22} {shown:>10}   {source}")

    ref = REFERENCE_MODEL
    lines.append(f"derived (reference: {ref.name} at {ref.input_size}, {ref.flops / 1e9:g} GFLOPs)")
    for backend in profile.backends.values():
        lines.append(
            f"  {backend.name:<22} {backend.throughput_gflops:>10.1f}   GFLOP/s effective ="
            f" FLOPs / (1000/seed_fps - overhead_ms)"
        )
    budget_mb = profile.memory.budget_fraction * profile.hardware.ram_mb
    throttle_s = ThermalModel(profile).time_to_throttle_s(busy_fraction=1.0)
    lines += [
        f"  {'app base memory':<22} {derived_app_base_mb(profile):>10.1f}   MB ="
        f" seed memory - modelled model and buffers on {profile.memory.seed_backend}",
        f"  {'memory budget':<22} {budget_mb:>10.1f}   MB = budget_fraction x ram_mb",
        f"  {'throttles after':<22} {throttle_s:>10.0f}   s of full load",
    ]
    return "\n".join(lines)


def _lookup(profile: DeviceProfile, dotted: str) -> Any:
    """The value behind a dotted source key (``backends.cpu.seed_fps``)."""
    parts = dotted.split(".")
    if parts[0] == "backends":
        return getattr(profile.backends[parts[1]], parts[2])
    return getattr(getattr(profile, parts[0]), parts[1])
