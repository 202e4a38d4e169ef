"""AR-lite: the PyTorch student and the ONNX graph built from its state dict agree, and the
distillation recipe trains (a few steps on a tiny dataset)."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")

from simulator.zoo.lite import LiteConfig, build_lite, init_state  # noqa: E402
from simulator.zoo.registry import resolve_model  # noqa: E402
from simulator.zoo.train_lite import (  # noqa: E402
    Dataset,
    Recipe,
    _batch,
    distillation_loss,
    jitter,
    main,
    numpy_state,
    student_module,
    teacher_outputs,
    train,
)


def _busy_state(config: LiteConfig) -> dict[str, np.ndarray]:
    """Seeded weights with the residual branches and head scaled up, so that the output is
    far from the input and every layer matters."""
    state = init_state(config, seed=11)
    rng = np.random.default_rng(5)
    for key in state:
        if key.endswith(".bias"):
            state[key] = rng.normal(0, 0.05, state[key].shape).astype(np.float32)
        elif key.startswith("head") or "project" in key:
            state[key] = state[key] * 3
    return state


@pytest.mark.parametrize("config", [LiteConfig(), LiteConfig((8, 16, 24), (1, 2, 3), 1)])
def test_torch_and_onnx_agree(config: LiteConfig) -> None:
    module = student_module(config, _busy_state(config)).eval()
    session = ort.InferenceSession(
        build_lite(numpy_state(module)).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    for height, width in ((64, 64), (96, 136)):
        image = torch.rand(1, 3, height, width, generator=torch.Generator().manual_seed(height))
        with torch.no_grad():
            expected = module(image).numpy()
        got = session.run(None, {"input": image.numpy()})[0]
        inside = (expected > 0) & (expected < 1)
        assert inside.mean() > 0.5  # the comparison is not of clipped constants
        assert np.abs(expected - image.numpy()).mean() > 0.05  # not a near-identity
        assert np.abs(got - expected).max() <= 1e-4


def test_state_dict_round_trip() -> None:
    state = init_state(seed=3)
    module = student_module(state=state)
    back = numpy_state(module)
    assert back.keys() == state.keys()
    assert all(np.array_equal(back[k], state[k]) for k in state)


def test_loss_and_jitter_basics() -> None:
    a = torch.rand(2, 3, 16, 16)
    assert float(distillation_loss(a, a, 0.5, 0.1)) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(a, 1 - a, 0.5, 0.1)) > 0.3
    image = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    assert np.array_equal(jitter(image, 1.0, 1.0), image)
    assert jitter(image, 1.2, 1.0).mean() > image.mean()
    assert jitter(image, 1.0, 0.5).std() < image.std()


def test_batches_are_crops_of_the_dataset() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    recipe = Recipe(batch=5, crop_min=24, crop_max=40)
    inputs, targets = _batch(Dataset(images, 255 - images), rng, recipe)
    assert inputs.shape[0] == 5 and inputs.shape[2] == inputs.shape[3]
    assert inputs.shape[2] % 8 == 0 and 24 <= inputs.shape[2] <= 40
    assert torch.allclose(targets, 1 - inputs, atol=1e-6)  # pairs stay aligned


def test_three_training_steps_reduce_the_loss() -> None:
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    base = np.kron(small, np.ones((16, 16, 1), np.uint8))  # 64x64 flat patches with edges
    teacher = resolve_model("toon-classic")
    images = np.stack([base, base[::-1]])
    dataset = Dataset(images, teacher_outputs(teacher, images, 64, threads=1))
    recipe = Recipe(steps=3, batch=2, crop_min=64, crop_max=64, log_every=1, threads=1,
                    config=LiteConfig((8, 16, 16), (1, 2, 2), 1))
    messages: list[str] = []
    state, record = train(recipe, dataset, messages.append)
    assert len(record.losses) == 3 and len(messages) == 3
    assert record.losses[-1] < record.losses[0]
    assert build_lite(state).graph.output[0].name == "output"


def test_unknown_teacher_is_exit_code_2(tmp_path, capsys) -> None:
    assert main(["--out", str(tmp_path), "--teacher", "no-such-teacher", "--cache", ""]) == 2
    assert "unknown model 'no-such-teacher'" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
