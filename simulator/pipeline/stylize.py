"""Stylizer stage: camera frame (RGB uint8) -> model input -> ONNX Runtime -> RGB uint8.

Pre- and post-processing are a handful of vectorised OpenCV calls so that the host time
is dominated by the model itself.

How a frame becomes the model input (``fit``, ``--fit`` of ``arsim run``):
- ``aspect`` (the default for fully convolutional models, card ``input.fully_convolutional``):
  the whole frame resized keeping its aspect to the model's pixel budget, about size x size
  pixels (each side the nearest multiple of ``size_multiple``, within min..max); the output
  is resized back to the frame;
- ``crop``: the centre square of the frame at size x size; the stylized square is put back
  in the centre of the frame and the sides outside it stay as the camera saw them
  (unstylized: what a user expects of a square filter on a wide frame, and anchors stay
  where the camera geometry puts them);
- ``letterbox``: the whole frame resized keeping its aspect into size x size, the rest
  padded black; the padding is cut off the output, which is resized back to the frame;
- ``squash``: the frame resized to size x size whatever its aspect (distorted; the only
  choice, and the default, for models that take square inputs only).
``input_shape`` gives the (width, height) of the tensor for any of them: the one place the
stylizer, the cost and memory models and the report take it from.

Host runtimes (``runtime``, ``--host-runtime``): what runs the model on *this* machine, never
what the simulated phone's timeline is (the cost model decides that):
- ``ort-cpu``: ONNX Runtime's CPU provider (the default);
- ``openvino``: Intel's OpenVINO runtime on the CPU (optional extra ``fast``; fp32 precision
  forced, so outputs stay within rounding of ONNX Runtime's);
- ``cuda``: ONNX Runtime's CUDA provider, where a GPU and an onnxruntime build with it exist.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from simulator.errors import InputError
from simulator.zoo.card import ModelCard
from simulator.zoo.registry import ResolvedModel

if TYPE_CHECKING:
    import onnxruntime as ort


def _ort():
    """ONNX Runtime, imported when a model is first loaded (a timing-only run never is)."""
    import onnxruntime

    return onnxruntime

FITS = ("aspect", "crop", "letterbox", "squash")
RUNTIMES = ("ort-cpu", "openvino", "cuda")


class _OpenVino:
    """The model compiled by OpenVINO for the CPU, behind ONNX Runtime's ``run`` call."""

    def __init__(self, path: str, threads: int) -> None:
        try:
            import openvino
        except ImportError:
            raise InputError("--host-runtime", "openvino is not installed (pip install "
                             "'arsim[fast]'; `make setup-train` installs it)") from None
        self.version = openvino.__version__.split("-")[0]
        compiled = openvino.Core().compile_model(path, "CPU", {
            "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_PRECISION_HINT": "f32"})
        self._request = compiled.create_infer_request()
        self._names = (compiled.inputs[0].get_any_name(), compiled.outputs[0].get_any_name())

    def io_names(self) -> tuple[str, str]:
        """The model's input and output names (as ONNX Runtime's session would give)."""
        return self._names

    def run(self, _outputs: object, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        result = self._request.infer(next(iter(feeds.values())))
        return [np.array(result[0])]  # a copy: the request reuses its buffer


def resolve_fit(card: ModelCard, fit: str | None) -> str:
    """The fit mode a model runs with: ``fit`` checked against the card, or the card's
    default (``aspect`` for fully convolutional models, else ``squash``) when None."""
    if fit is None:
        return "aspect" if card.input.fully_convolutional else "squash"
    if fit not in FITS:
        raise InputError("--fit", f"expected one of {', '.join(FITS)}, got {fit!r}")
    if fit == "aspect" and not card.input.fully_convolutional:
        raise InputError("--fit", f"aspect needs a fully convolutional model; {card.name}'s "
                         "card does not say input.fully_convolutional (use crop, letterbox "
                         "or squash)")
    return fit


def input_shape(card: ModelCard, size: int, frame_w: int, frame_h: int,
                fit: str) -> tuple[int, int]:
    """(width, height) of the model input for a ``frame_w`` x ``frame_h`` frame at ``size``
    under ``fit``: size x size, except ``aspect``: the frame's aspect at about size*size
    pixels, each side the nearest multiple of the card's ``size_multiple`` within
    min_size..max_size (first scaled down, keeping the aspect, when the longer side would
    pass max_size)."""
    if fit != "aspect" or frame_w == frame_h:
        return size, size
    spec = card.input
    aspect = frame_w / frame_h
    width, height = size * math.sqrt(aspect), size / math.sqrt(aspect)
    longer = max(width, height)
    if longer > spec.max_size:
        width, height = width * spec.max_size / longer, height * spec.max_size / longer
    step = spec.size_multiple
    lowest = math.ceil(spec.min_size / step) * step
    highest = spec.max_size // step * step

    def side(value: float) -> int:
        return min(max(round(value / step) * step, lowest), highest)

    return side(width), side(height)


def centre_square(width: int, height: int) -> tuple[int, int, int]:
    """(x0, y0, side) of the largest centred square of a ``width`` x ``height`` frame."""
    side = min(width, height)
    return (width - side) // 2, (height - side) // 2, side


class Stylizer:
    """Runs one model in a single ONNX Runtime CPU session, at ``input_size`` by default or
    at any other size the model card allows (per call: dynamic resolution, face crops),
    fitting frames to the model input by ``fit`` (None: the card's default; see above)."""

    def __init__(self, model: ResolvedModel, input_size: int, threads: int = 1,
                 fit: str | None = None, arena: bool = True, runtime: str = "ort-cpu") -> None:
        self.model = model
        self.check_size(input_size)
        if threads < 1:
            raise InputError("threads", f"expected a thread count >= 1, got {threads}")
        if runtime not in RUNTIMES:
            raise InputError("--host-runtime", f"expected one of {', '.join(RUNTIMES)}, got "
                             f"{runtime!r}")
        self.input_size = input_size
        self.threads = threads
        self.runtime = runtime
        self.fit = resolve_fit(model.card, fit)
        self.session = self._open_session(arena)
        self.input_name, self.output_name = self.session.io_names() \
            if isinstance(self.session, _OpenVino) else (
                self.session.get_inputs()[0].name, self.session.get_outputs()[0].name)

        spec_in, spec_out = model.card.input, model.card.output
        low, high = spec_in.value_range
        self._in_low = low
        self._in_scale = (high - low) / 255.0
        self._in_nchw = spec_in.layout == "NCHW"
        self._in_swap = spec_in.channels == "BGR"
        out_low, out_high = spec_out.value_range
        self._out_low, self._out_high = out_low, out_high
        self._out_scale = 255.0 / (out_high - out_low)
        self._out_nchw = spec_out.layout == "NCHW"
        self._out_swap = spec_out.channels == "BGR"

    def _open_session(self, arena: bool) -> ort.InferenceSession | _OpenVino:
        if self.runtime == "openvino":
            try:
                return _OpenVino(str(self.model.path), self.threads)
            except RuntimeError as exc:  # OpenVINO's own errors
                raise InputError(self.model.path,
                                 f"OpenVINO cannot compile the model: {exc}") from None
        providers = ["CPUExecutionProvider"]
        if self.runtime == "cuda":
            if "CUDAExecutionProvider" not in _ort().get_available_providers():
                raise InputError("--host-runtime", "cuda needs a GPU and an onnxruntime build "
                                 "with the CUDA provider (onnxruntime-gpu); this one has "
                                 f"{', '.join(_ort().get_available_providers())}")
            providers.insert(0, "CUDAExecutionProvider")
        ort = _ort()
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        # spinning threads burn CPU while waiting, which skews timing under a CPU quota
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.enable_cpu_mem_arena = arena  # False: no pooled buffers kept between runs
        try:
            return ort.InferenceSession(str(self.model.path), options, providers=providers)
        except Exception as exc:  # ORT has its own exception hierarchy
            raise InputError(self.model.path,
                             f"ONNX Runtime cannot load the model: {exc}") from None

    @property
    def runtime_id(self) -> str:
        """The host runtime that computes the outputs, with its version (part of a cached
        result's key, and the report's ``host.runtime``)."""
        if isinstance(self.session, _OpenVino):
            return f"openvino {self.session.version} CPU"
        return f"onnxruntime-{'cuda' if self.runtime == 'cuda' else 'cpu'} {_ort().__version__}"

    def reopen(self, arena: bool, before: Callable[[], None] | None = None) -> None:
        """Drop the session and its pooled buffers and open a new one (``arena``: whether
        it pools); ``before`` runs in between, when the old session is gone (gc, trim)."""
        del self.session
        if before is not None:
            before()
        self.session = self._open_session(arena)

    def check_size(self, size: int) -> None:
        """InputError unless the model accepts ``size``."""
        problem = self.model.card.input.size_problem(size)
        if problem:
            raise InputError("input size", f"{problem} (model {self.model.name})")

    def input_shape(self, width: int, height: int, size: int | None = None) -> tuple[int, int]:
        """(width, height) of the model input for a ``width`` x ``height`` frame."""
        return input_shape(self.model.card, size or self.input_size, width, height, self.fit)

    def _layout(self, width: int, height: int, size: int):
        """(input (w, h), frame region (x, y, w, h) fed to the model, content region
        (x, y, w, h) of the input that holds it: smaller than the input when letterboxed)."""
        in_w, in_h = self.input_shape(width, height, size)
        region = (0, 0, width, height)
        content = (0, 0, in_w, in_h)
        if self.fit == "crop" and width != height:
            x0, y0, side = centre_square(width, height)
            region = (x0, y0, side, side)
        elif self.fit == "letterbox" and width != height:
            scale = size / max(width, height)
            cw = min(size, max(1, round(width * scale)))
            ch = min(size, max(1, round(height * scale)))
            content = ((size - cw) // 2, (size - ch) // 2, cw, ch)
        return (in_w, in_h), region, content

    def preprocess(self, rgb: np.ndarray, size: int | None = None) -> np.ndarray:
        """RGB uint8 H x W x 3 -> float32 model input [1, ...] at ``input_shape`` (size x
        size, or the frame's aspect with ``fit`` aspect; default size ``input_size``),
        contiguous."""
        size = size or self.input_size
        height, width = rgb.shape[:2]
        (in_w, in_h), (rx, ry, rw, rh), (cx, cy, cw, ch) = self._layout(width, height, size)
        source = rgb[ry : ry + rh, rx : rx + rw]
        small = shrink_to_square(source, size) if self.fit == "squash" else shrink_to(
            source, cw, ch)
        if (cw, ch) != (in_w, in_h):  # letterbox: black bars around the frame
            padded = np.zeros((in_h, in_w, 3), dtype=np.uint8)
            padded[cy : cy + ch, cx : cx + cw] = small
            small = padded
        scale = np.float32(self._in_scale)
        if self._in_nchw:
            # per-plane scaling into the NCHW buffer: ~10x faster than cv2.dnn.blobFromImage
            tensor = np.empty((1, 3, in_h, in_w), dtype=np.float32)
            planes = cv2.split(small)
            for channel, plane in enumerate(planes[::-1] if self._in_swap else planes):
                np.multiply(plane, scale, out=tensor[0, channel], casting="unsafe")
        else:
            tensor = np.multiply(small[None, :, :, ::-1] if self._in_swap else small[None], scale)
        if self._in_low:
            tensor += np.float32(self._in_low)
        return tensor

    def run(self, tensor: np.ndarray) -> np.ndarray:
        """The bare model call."""
        return self.session.run([self.output_name], {self.input_name: tensor})[0]

    def postprocess(self, out: np.ndarray, width: int, height: int) -> np.ndarray:
        """Model output [1, ...] -> RGB uint8 height x width x 3 (may clip ``out`` in place)."""
        image = out[0]
        if self._out_nchw:
            image = cv2.merge(list(image))  # C planes -> H x W x C, contiguous
        image = np.clip(image, self._out_low, self._out_high, out=image)
        # (v - low) * 255 / (high - low), rounded and saturated to uint8 in one pass
        image = cv2.convertScaleAbs(
            image, alpha=self._out_scale, beta=-self._out_low * self._out_scale
        )
        if self._out_swap:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if image.shape[1] != width or image.shape[0] != height:
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
        return image

    def stylize(self, rgb: np.ndarray, size: int | None = None) -> np.ndarray:
        """A stylized RGB uint8 frame of the same size as ``rgb``, the model run at
        ``size`` (default ``input_size``; the caller checks other sizes with check_size),
        the frame fitted to the input by ``fit`` and the output mapped back to the frame."""
        height, width = rgb.shape[:2]
        size = size or self.input_size
        (in_w, in_h), (rx, ry, rw, rh), (cx, cy, cw, ch) = self._layout(width, height, size)
        out = self.run(self.preprocess(rgb, size))
        if (cw, ch) == (in_w, in_h) and (rw, rh) == (width, height):
            return self.postprocess(out, width, height)  # aspect, squash: the whole frame
        styled = self.postprocess(out, in_w, in_h)[cy : cy + ch, cx : cx + cw]
        if (rw, rh) == (width, height):  # letterbox: the bars cut off
            return cv2.resize(styled, (width, height), interpolation=cv2.INTER_LINEAR)
        frame = rgb.copy()  # crop: the stylized centre square, the sides as captured
        frame[ry : ry + rh, rx : rx + rw] = cv2.resize(
            styled, (rw, rh), interpolation=cv2.INTER_LINEAR
        )
        return frame


def shrink_to(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to width x height, area-averaging where it shrinks.

    OpenCV's INTER_AREA is fast only for an exact whole-number factor (about 2 ms for
    640x360 -> 256x256 with one thread, against 0.15 ms for an exact halving). So: bilinear
    to k*width x k*height, with k the whole-number part of the smaller axis' reduction
    (for an aspect-keeping resize both axes shrink alike, so each then shrinks by less than
    2, or grows, where bilinear does not alias), then an exact k x k area average: ~0.4 ms,
    within 1 grey level of INTER_AREA on photographs.
    """
    h, w = rgb.shape[:2]
    if (w, h) == (width, height):
        return rgb
    k = max(1, min(w // width, h // height))
    if k == 1:
        return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    big = cv2.resize(rgb, (k * width, k * height), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(big, (width, height), interpolation=cv2.INTER_AREA)


def shrink_to_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize to size x size whatever the aspect (``squash``), as ``shrink_to`` does;
    the k of the square case is the larger axis' reduction, as it always was."""
    h, w = rgb.shape[:2]
    k = max(1, max(w, h) // size)
    if k == 1:
        return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR)
    big = cv2.resize(rgb, (k * size, k * size), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
