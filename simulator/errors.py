"""One error type for bad input: it becomes one line on stderr and exit code 2."""

from __future__ import annotations

from pathlib import Path


def first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line: its message's first line, or its type's name when the
    message is empty (a bare ``MemoryError``)."""
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:limit]


class InputError(Exception):
    """A problem with something the user gave us (file, field, option).

    The message is a single line: where (file, row or field) and what was expected.
    The CLI prints it as ``arsim: error: <message>`` and exits with code 2.
    """

    def __init__(self, where: str | Path, problem: str) -> None:
        # one line whatever the input held (a field name or file name with a line break)
        self.where = _one_line(str(where))
        self.problem = _one_line(problem)
        super().__init__(f"{self.where}: {self.problem}")


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


class OutputError(Exception):
    """An output that cannot be written (a path under a file, a read-only place, a full
    disk). The CLI prints one line and exits with code 4 — never 1, which means "a budget
    failed". Files already written are complete (atomic writes); the one that failed is not
    left behind."""

    def __init__(self, where: str | Path, problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")
