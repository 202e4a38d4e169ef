"""The PyQt6 desktop app (``arsim gui``): replay and live tuning on the one engine.

The app is a view on :func:`simulator.run.run_scenario`: a worker thread drives the replay
paced against wall time, the window shows what the simulated phone displays and charts its
metrics against the device's budgets. See docs/app.md.
"""

from simulator.app.main import run_gui

__all__ = ["run_gui"]
