"""Small helpers shared by the project's own ONNX graph builders (toon, AnimeGANv2, AR-lite)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR version that goes with opset 17; keeps older runtimes able to load it


class GraphBuilder:
    """Collects nodes and constants; every call returns the name of the new tensor."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._consts: dict[tuple, str] = {}

    def _fresh(self, stem: str) -> str:
        return f"{stem}_{len(self.nodes) + len(self.initializers)}"

    def const(self, stem: str, value: np.ndarray | list | float) -> str:
        array = np.asarray(value)
        array = array.astype(np.int64 if array.dtype.kind in "iu" else np.float32)
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._consts:  # share equal constants
            self._consts[key] = self._fresh(stem)
            self.initializers.append(numpy_helper.from_array(array, self._consts[key]))
        return self._consts[key]

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        name = out or self._fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [name], name=name, **attrs))
        return name


def image_model(
    nodes: list[onnx.NodeProto], initializers: list[onnx.TensorProto], name: str
) -> onnx.ModelProto:
    """A checked opset-17 model from "input" [1,3,H,W] to "output" of the same shape."""
    image = [1, 3, "height", "width"]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, image)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, image)],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="arsim",
        producer_version="1",
        ir_version=IR_VERSION,
    )
    onnx.checker.check_model(model, full_check=True)
    return model
