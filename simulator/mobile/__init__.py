"""The mobile test bench: device harness (Appium), web target, contract helpers."""
