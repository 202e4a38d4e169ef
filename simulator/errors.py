"""One error type for bad input: it becomes one line on stderr and exit code 2."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """A problem with something the user gave us (file, field, option).

    The message is a single line: where (file, row or field) and what was expected.
    The CLI prints it as ``arsim: error: <message>`` and exits with code 2.
    """

    def __init__(self, where: str | Path, problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")


class OutputError(Exception):
    """An output that cannot be written (a path under a file, a read-only place, a full
    disk). The CLI prints one line and exits with code 4 — never 1, which means "a budget
    failed". Files already written are complete (atomic writes); the one that failed is not
    left behind."""

    def __init__(self, where: str | Path, problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")
