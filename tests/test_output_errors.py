"""An output that cannot be written is one line and exit code 4 — never a traceback, never
exit 1 (which means "a budget failed") — checked before any work (issue 13, item 1)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from simulator.cli import EXIT_OUTPUT, main

ROOT = Path(__file__).resolve().parents[1]
ORBIT = str(ROOT / "scenarios" / "orbit-desk")


@pytest.mark.parametrize("where", ["/proc/arsim-out", "FILE/sub"])
def test_unwritable_out_is_one_line_and_exit_4(tmp_path, capsys, where: str) -> None:
    regular = tmp_path / "a-file"
    regular.write_text("x")
    out = where.replace("FILE", str(regular))
    assert main(["run", ORBIT, "--timing-only", "--quiet", "--out", out]) == EXIT_OUTPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"arsim: error: {out}: --out: cannot create")


def test_model_import_to_unwritable_path_is_exit_4(capsys) -> None:
    model = ROOT / "models" / "toon-classic.onnx"
    code = main(["models", "import", str(model), "--name", "x", "--out", "/proc/x.onnx"])
    assert code == EXIT_OUTPUT
    assert capsys.readouterr().err.startswith("arsim: error: /proc: --out: folder is not writ")


def test_full_disk_keeps_complete_files_only(tmp_path, capsys) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=176k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    try:
        out = mount / "r"
        assert main(["run", ORBIT, "--timing-only", "--quiet", "--out", str(out)]) == EXIT_OUTPUT
        err = capsys.readouterr().err
        assert "cannot write: no space left on the device" in err
        left = sorted(p.name for p in out.iterdir())
        assert all(not name.startswith(".") for name in left)  # no temporary file stays
        for name in left:  # what is there is complete
            if name.endswith(".json"):
                assert json.loads((out / name).read_text())["schema"]
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_sweep_to_an_unwritable_out_is_exit_4_before_any_run(tmp_path, capsys) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["sweep", "--out", str(blocker / "sub")]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sweep:" not in err[0]  # refused before the first run
