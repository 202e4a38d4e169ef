"""Reading a user's JSON file: every problem is one InputError line naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simulator.errors import InputError


def read_json(path: str | Path, what: str) -> Any:
    """The parsed contents of ``path``; ``what`` names the kind of file in messages
    ("report", "model card", ...)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, f"no such {what} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot read {what}: {exc.__class__.__name__}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
