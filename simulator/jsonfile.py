"""Reading a user's JSON file: every problem is one InputError line naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simulator.errors import InputError
from simulator.safe_files import JSON_CAP, read_user_text


def read_json(path: str | Path, what: str) -> Any:
    """The parsed contents of ``path``; ``what`` names the kind of file in messages
    ("report", "model card", ...)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise InputError(path, f"no such {what} file")
    text = read_user_text(path, str(path), cap=JSON_CAP)  # regular file, size-capped
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise InputError(path, f"{what}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of thousands of digits
        raise InputError(path, f"{what}: a number is too long ({str(exc).split('(')[0].strip()})"
                         ) from None
