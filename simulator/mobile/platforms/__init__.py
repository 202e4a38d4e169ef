"""Platform adapters of the device harness: how Appium reaches each kind of app build."""

from __future__ import annotations

from simulator.mobile.platforms.android import AndroidPlatform
from simulator.mobile.platforms.base import DeviceDied, Platform
from simulator.mobile.platforms.ios import IosPlatform
from simulator.mobile.platforms.web import WebPlatform

PLATFORMS: dict[str, type[Platform]] = {
    "android": AndroidPlatform, "ios": IosPlatform, "web": WebPlatform,
}

__all__ = ["PLATFORMS", "DeviceDied", "Platform"]
