"""The ONNX generator built without torch matches a PyTorch AnimeGANv2 generator, end to end:
torch.save -> importer (torch-free checkpoint reader + ONNX builder) -> ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from simulator.zoo.card import load_card
from simulator.zoo.importer import import_model

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

TOLERANCE = 1e-4


class _ConvNormAct(nn.Sequential):
    """Reflection pad, conv, one-group GroupNorm, LeakyReLU(0.2) - indices as in the port."""

    def __init__(
        self, cin: int, cout: int, k: int = 3, stride: int = 1, pad=1, groups: int = 1,
        bias: bool = False,
    ) -> None:  # fmt: skip
        super().__init__(
            nn.ReflectionPad2d(pad),
            nn.Conv2d(cin, cout, k, stride, 0, groups=groups, bias=bias),
            nn.GroupNorm(1, cout),
            nn.LeakyReLU(0.2),
        )


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        width = 2 * cin
        self.residual = cin == cout
        self.layers = nn.Sequential(
            _ConvNormAct(cin, width, k=1, pad=0),
            _ConvNormAct(width, width, groups=width, bias=True),
            nn.Conv2d(width, cout, 1, bias=False),
            nn.GroupNorm(1, cout),
        )

    def forward(self, x):
        y = self.layers(x)
        return x + y if self.residual else y


class _Generator(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        down = (0, 1, 0, 1)
        self.block_a = nn.Sequential(
            _ConvNormAct(3, 32, k=7, pad=3), _ConvNormAct(32, 64, stride=2, pad=down),
            _ConvNormAct(64, 64),
        )  # fmt: skip
        self.block_b = nn.Sequential(
            _ConvNormAct(64, 128, stride=2, pad=down), _ConvNormAct(128, 128)
        )
        self.block_c = nn.Sequential(
            _ConvNormAct(128, 128), _InvertedResidual(128, 256),
            *(_InvertedResidual(256, 256) for _ in range(3)), _ConvNormAct(256, 128),
        )  # fmt: skip
        self.block_d = nn.Sequential(_ConvNormAct(128, 128), _ConvNormAct(128, 128))
        self.block_e = nn.Sequential(
            _ConvNormAct(128, 64), _ConvNormAct(64, 64), _ConvNormAct(64, 32, k=7, pad=3)
        )
        self.out_layer = nn.Sequential(nn.Conv2d(32, 3, 1, bias=False), nn.Tanh())

    def forward(self, x):
        half = self.block_a(x)
        y = self.block_c(self.block_b(half))
        y = F.interpolate(y, half.shape[-2:], mode="bilinear", align_corners=True)
        y = F.interpolate(self.block_d(y), x.shape[-2:], mode="bilinear", align_corners=True)
        return self.out_layer(self.block_e(y))


@pytest.fixture(scope="module")
def generator() -> nn.Module:
    torch.manual_seed(0)
    model = _Generator().eval()
    with torch.no_grad():  # non-trivial norm affines, so their broadcasting is tested too
        for module in model.modules():
            if isinstance(module, nn.GroupNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
    return model


def _outputs(generator: nn.Module, onnx_path: Path, height: int, width: int) -> tuple:
    image = np.random.default_rng(height * width).uniform(-1, 1, (1, 3, height, width))
    image = image.astype(np.float32)
    with torch.no_grad():
        expected = generator(torch.from_numpy(image)).numpy()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": image})[0], expected


def test_torch_saved_checkpoint_imports_and_matches(generator: nn.Module, tmp_path: Path) -> None:
    checkpoint = tmp_path / "face_paint.pt"
    torch.save(generator.state_dict(), checkpoint)
    onnx_path = import_model(checkpoint, "parity", models_dir=tmp_path / "models")
    card = load_card(onnx_path.with_name("parity.card.json"))
    assert card.parameters == sum(p.numel() for p in generator.parameters()) == 2_143_552
    assert "face_paint.pt (sha256 " in card.provenance
    for height, width in ((256, 256), (264, 200)):
        got, expected = _outputs(generator, onnx_path, height, width)
        assert got.shape == expected.shape == (1, 3, height, width)
        assert np.abs(expected).max() > 0.05  # a real picture, not a flat one
        assert np.abs(got - expected).max() <= TOLERANCE, (height, width)


def test_wrapped_prefixed_checkpoint_imports_the_same(generator: nn.Module, tmp_path: Path) -> None:
    plain, wrapped = tmp_path / "plain.pth", tmp_path / "wrapped.pth"
    torch.save(generator.state_dict(), plain)
    prefixed = {f"module.{k}": v for k, v in generator.state_dict().items()}
    torch.save({"state_dict": prefixed, "epoch": 3}, wrapped)
    models = tmp_path / "models"
    first = import_model(plain, "plain", models_dir=models)
    second = import_model(wrapped, "wrapped", models_dir=models)
    assert first.read_bytes() == second.read_bytes()
