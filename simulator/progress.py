"""Progress on stderr for long work: a live bar on a terminal, sparse lines elsewhere (CI logs)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    """Callable as ``progress(done, total)``."""

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self._last_pct = -1
        self._last_draw = 0.0
        self._start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled or total <= 0:
            return
        pct = int(100 * done / total)
        if self.tty:
            now = time.monotonic()
            if done < total and now - self._last_draw < 0.1:
                return
            self._last_draw = now
            width = 30
            fill = int(width * done / total)
            rate = done / max(now - self._start, 1e-9)
            self.stream.write(
                f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} "
                f"({rate:.0f}/s)"
            )
            if done >= total:
                self.stream.write("\n")
            self.stream.flush()
        elif pct // 10 > self._last_pct // 10 or (done >= total and pct != self._last_pct):
            self.stream.write(f"{self.label}: {done}/{total} ({pct}%)\n")
            self.stream.flush()
        self._last_pct = pct

    def interrupted(self) -> None:
        if self.enabled and self.tty:
            self.stream.write("\n")
            self.stream.flush()
