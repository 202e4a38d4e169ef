"""Untrusted files stay inside their folder and never hang or flood a reader (issue 13,
items 3, 4 and 8): FIFOs, endless devices, links out of the folder, a card's file path."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import pytest
from scenario_fixtures import make_scenario

from simulator.errors import InputError
from simulator.scenario.load import load_scenario, validate_scenario

ROOT = Path(__file__).resolve().parents[1]


def _problems(folder: Path) -> list[str]:
    result: list[list[str]] = []
    worker = threading.Thread(
        target=lambda: result.append([str(p) for p in validate_scenario(folder).problems]),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=30)  # a reader blocked on a FIFO would never return
    assert result, "the loader did not return"
    return result[0]


def test_fifo_as_frames_csv_is_refused_not_waited_on(tmp_path: Path) -> None:
    folder = make_scenario(tmp_path / "s")
    (folder / "frames.csv").unlink()
    os.mkfifo(folder / "frames.csv")
    assert any("frames.csv: not a regular file" in p for p in _problems(folder))


def test_link_to_an_endless_device_is_refused(tmp_path: Path) -> None:
    folder = make_scenario(tmp_path / "s")
    (folder / "poses.txt").unlink()
    (folder / "poses.txt").symlink_to("/dev/urandom")
    problems = _problems(folder)
    assert any("poses.txt: is a link that leads outside" in p for p in problems)


def test_link_out_of_the_folder_is_refused(tmp_path: Path) -> None:
    folder = make_scenario(tmp_path / "s")
    outside = tmp_path / "elsewhere.txt"
    shutil.move(folder / "poses.txt", outside)
    (folder / "poses.txt").symlink_to(outside)
    problems = _problems(folder)
    assert any("poses.txt: is a link that leads outside" in p and "copy the file" in p
               for p in problems)
    inside = folder / "real-poses.txt"  # a link that stays inside is fine
    shutil.move(outside, inside)
    (folder / "poses.txt").unlink()
    (folder / "poses.txt").symlink_to(inside.name)
    with load_scenario(folder) as scenario:
        assert scenario.frame_count == 12


def test_video_that_is_a_device_or_a_folder_is_named_as_such(tmp_path: Path) -> None:
    folder = make_scenario(tmp_path / "s")
    (folder / "video.mp4").unlink()
    (folder / "video.mp4").mkdir()
    assert any("video.mp4: is a folder, expected the video file" in p for p in _problems(folder))
    (folder / "video.mp4").rmdir()
    (folder / "video.mp4").symlink_to("/dev/zero")
    assert any("video.mp4" in p and ("outside" in p or "not a regular file" in p)
               for p in _problems(folder))


def test_huge_number_in_json_is_one_clear_line(tmp_path: Path) -> None:
    folder = make_scenario(tmp_path / "s")
    text = (folder / "scenario.json").read_text().replace('"fps": 30.0', '"fps": ' + "9" * 5000)
    (folder / "scenario.json").write_text(text)
    problems = _problems(folder)
    assert problems == [f"{folder / 'scenario.json'}: a number has too many digits (at most "
                        "4300); expected an ordinary number"]


def test_model_card_file_may_not_leave_its_folder(tmp_path: Path) -> None:
    from simulator.zoo.registry import resolve_model

    card = json.loads((ROOT / "models" / "toon-classic.card.json").read_text())
    card["file"] = "../../../../etc/passwd"
    path = tmp_path / "evil.card.json"
    path.write_text(json.dumps(card))
    with pytest.raises(InputError, match=r"field 'file'.*must be a file name in the card's"):
        resolve_model(str(path))
    shutil.copy(ROOT / "models" / "toon-classic.onnx", tmp_path / "real.onnx")
    (tmp_path / "linked.onnx").symlink_to("/etc/passwd")
    card["file"] = "linked.onnx"
    path.write_text(json.dumps(card))
    with pytest.raises(InputError, match="is a link that leads outside"):
        resolve_model(str(path))


def test_settings_file_that_is_a_fifo_is_refused(tmp_path: Path) -> None:
    from simulator.pipeline.settings import load_settings

    fifo = tmp_path / "settings.json"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        load_settings(fifo)


def test_onnx_with_external_weights_is_one_line_saying_so(tmp_path: Path) -> None:
    """Was a bare 'ValidationError' (issue 13, item 8)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from simulator.zoo.importer import import_model

    weight = numpy_helper.from_array(np.ones((3, 3, 3, 3), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, None, None])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, None, None])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save_model(model, str(tmp_path / "m.onnx"), save_as_external_data=True,
                    location="m.data", size_threshold=0)
    with pytest.raises(InputError) as caught:
        import_model(tmp_path / "m.onnx", "ext", models_dir=tmp_path / "models")
    assert str(caught.value).endswith("models with external weight files are not supported; "
                                      "inline them")
    assert not (tmp_path / "models").exists()
