"""Static cost of an ONNX image model at an input size: FLOPs, parameters, memory.

The image input is set to batch 1 and ``size x size``, or ``width x height`` when the size
is given as a ``(width, height)`` pair (its channel axis is the one of length 3), ONNX
shape inference gives every tensor's shape, and the graph is walked
once in topological order. When shape inference cannot resolve a shape (e.g. a
Reshape whose target is computed at run time), the graph is run once on a zero image
with ONNX Runtime to read the real shapes.

FLOP rules (one multiply-add = 2 FLOPs):
- Conv: 2 * (k_h*k_w*C_in/groups) * C_out * H_out*W_out, plus 1 per output element with bias.
- ConvTranspose: 2 * (k_h*k_w*C_out/groups) * C_in * H_in*W_in (every input pixel is
  scattered through the kernel: the true multiply-adds), plus 1 per output element with bias.
- MatMul: 2*M*N*K per batch; Gemm: 2*M*N*K plus M*N when C is given.
- Per output element (``ELEMENT_COST``): 1 for arithmetic, comparisons and ReLU, 2 for
  LeakyRelu/PRelu/BatchNormalization, 4 for transcendental activations (Exp, Tanh,
  Sigmoid, ...), 5 for Instance/Layer/Group normalisation and Softmax, Resize 1 (nearest),
  4 (linear), 16 (cubic).
- Per input element: 1 for reductions and global pooling; pooling: k_h*k_w per output element.
- Data movement (Reshape, Transpose, Concat, Slice, Pad, Gather, Cast, ...): 0.
- Any other op: 1 per output element.

Activation peak: tensors are live from the step that produces them (the image input
from the start) to the step of their last consumer (graph outputs to the end);
initializers and Constant outputs are weights, not activations. The peak is the
largest total of live bytes at any step, counting the running node's inputs and outputs.
"""

from __future__ import annotations

import copy
from collections import defaultdict, deque
from dataclasses import dataclass
from functools import reduce
from operator import mul
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simulator.errors import InputError

if TYPE_CHECKING:
    import onnx

# The onnx package is imported where a graph is read (it takes seconds to import here,
# ml_dtypes mostly): GraphStats and input_wh serve runs that find their figures cached.


def _names(text: str) -> list[str]:
    """Op names written as one space-separated string (easier to scan than a list)."""
    return text.split()


ELEMENT_COST: dict[str, int] = {
    **dict.fromkeys(
        _names(
            "Add Sub Mul Div Neg Abs Relu Max Min Clip Sqrt Reciprocal Pow Floor Ceil Round "
            "Sign Greater Less Equal GreaterOrEqual LessOrEqual Where Not And Or Xor Mod Sum Mean"
        ),
        1,
    ),
    **dict.fromkeys(_names("LeakyRelu PRelu BatchNormalization ThresholdedRelu"), 2),
    **dict.fromkeys(
        _names(
            "Exp Log Tanh Sigmoid Erf Softplus Softsign Elu Selu Celu Gelu HardSigmoid "
            "HardSwish Mish Sin Cos"
        ),
        4,
    ),
    **dict.fromkeys(
        _names("InstanceNormalization LayerNormalization GroupNormalization Softmax LogSoftmax"),
        5,
    ),
}
RESIZE_COST = {"nearest": 1, "linear": 4, "cubic": 16}
INPUT_ELEMENT_OPS = frozenset(
    _names(
        "ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceSumSquare "
        "ReduceLogSumExp GlobalAveragePool GlobalMaxPool"
    )
)
POOL_OPS = frozenset(("AveragePool", "MaxPool", "LpPool"))
DATA_MOVEMENT_OPS = frozenset(
    _names(
        "Reshape Transpose Concat Slice Pad Gather GatherElements GatherND Cast Identity "
        "Squeeze Unsqueeze Flatten Expand Tile Split Shape Size Constant ConstantOfShape Range "
        "DepthToSpace SpaceToDepth ScatterND ScatterElements NonZero TopK ArgMax ArgMin Dropout "
        # quantisation markers: precision changes, the arithmetic counted is the parent's
        "QuantizeLinear DequantizeLinear"
    )
)

Shape = tuple[int, ...]
ModelLike = "onnx.ModelProto | str | Path"


InputSize = int | tuple[int, int]  # size (a size x size square) or (width, height)


@dataclass(frozen=True)
class GraphStats:
    """Cost figures of one model at one input size (``size``: the square side, or 0 for a
    rectangular input; ``shape``: (width, height) in both cases)."""

    size: int
    flops: int
    parameters: int
    weights_bytes: int
    activation_peak_bytes: int
    shape: tuple[int, int] = (0, 0)


def input_wh(size: InputSize) -> tuple[int, int]:
    """(width, height) of an input size given as a square side or a (width, height) pair."""
    if isinstance(size, tuple | list):
        width, height = (int(v) for v in size)
        return width, height
    return int(size), int(size)


def flops(model: ModelLike, size: InputSize) -> int:
    """FLOPs of one inference at a ``size x size`` (or ``(width, height)``) input
    (multiply-add = 2)."""
    return analyze(model, size).flops


def activation_peak_bytes(model: ModelLike, size: InputSize) -> int:
    """Most bytes of activations alive at once during one inference at ``size x size``
    (or ``(width, height)``)."""
    return analyze(model, size).activation_peak_bytes


def parameter_count(model: ModelLike) -> int:
    """Number of values stored in the model's initializers."""
    return sum(_numel(tuple(t.dims)) for t in _load(model).graph.initializer)


def weights_bytes(model: ModelLike) -> int:
    """Bytes of the model's initializers at their stored precision."""
    return sum(_tensor_bytes(t) for t in _load(model).graph.initializer)


def analyze(model: ModelLike, size: InputSize) -> GraphStats:
    """All cost figures of ``model`` at a ``size x size`` input (or a ``(width, height)``
    one) in one pass."""
    proto, shapes, dtypes, nodes = _sized(model, size)
    graph = proto.graph
    width, height = input_wh(size)
    initializer_shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    total_flops = sum(_node_flops(node, shapes) for node in nodes)
    return GraphStats(
        size=width if width == height else 0,
        flops=int(total_flops),
        parameters=sum(_numel(s) for s in initializer_shapes.values()),
        weights_bytes=sum(_tensor_bytes(t) for t in graph.initializer),
        activation_peak_bytes=_activation_peak(graph, nodes, shapes, dtypes),
        shape=(width, height),
    )


def node_flops(model: ModelLike, size: InputSize) -> list[tuple[onnx.NodeProto, int]]:
    """Every node with its FLOPs at ``size``, in execution order (where the figures of
    ``analyze`` come from: a profile's time per node is set against them)."""
    _, shapes, _, nodes = _sized(model, size)
    return [(node, _node_flops(node, shapes)) for node in nodes]


def _sized(model: ModelLike, size: InputSize):
    """(model, tensor shapes with the initializers', dtypes, nodes in execution order)."""
    proto = _load(model)
    where = str(model) if isinstance(model, str | Path) else (proto.graph.name or "model")
    shapes, dtypes = _tensor_shapes(proto, input_wh(size), where)
    shapes = {**{t.name: tuple(t.dims) for t in proto.graph.initializer}, **shapes}
    return proto, shapes, dtypes, _topological_order(proto.graph)


def image_input(model: onnx.ModelProto) -> onnx.ValueInfoProto:
    """The graph input that is not an initializer (the image); exactly one is expected."""
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise ValueError(f"expected exactly one image input, found {len(inputs)}")
    return inputs[0]


def channel_axis(value: onnx.ValueInfoProto) -> int | None:
    """1 (NCHW) or 3 (NHWC): the axis of length 3 in a rank-4 image; None if neither."""
    dims = value.type.tensor_type.shape.dim
    if len(dims) != 4:
        return None
    if dims[1].HasField("dim_value") and dims[1].dim_value == 3:
        return 1
    if dims[3].HasField("dim_value") and dims[3].dim_value == 3:
        return 3
    return None


def _load(model: ModelLike) -> onnx.ModelProto:
    import onnx

    if isinstance(model, onnx.ModelProto):
        return model
    try:
        return onnx.load(str(model), load_external_data=False)
    except Exception as exc:  # onnx raises several unrelated types for a bad file
        raise InputError(model, f"not a readable ONNX model ({exc.__class__.__name__})") from None


def _numel(shape: Shape) -> int:
    return reduce(mul, shape, 1)


def _tensor_bytes(tensor: onnx.TensorProto) -> int:
    from onnx import helper

    itemsize = helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    return _numel(tuple(tensor.dims)) * itemsize


def _with_input_size(model: onnx.ModelProto, size: InputSize) -> onnx.ModelProto:
    """A copy whose image input is [1, 3, height, width] (or NHWC) and whose other shapes
    are forgotten, so that shape inference starts fresh."""
    width, height = input_wh(size)
    sized = copy.deepcopy(model)
    image = image_input(sized)
    axis = channel_axis(image)
    if axis is None:
        raise ValueError("the image input is not a rank-4 tensor with 3 channels")
    dims = image.type.tensor_type.shape.dim
    wanted = [1, 3, height, width] if axis == 1 else [1, height, width, 3]
    for dim, value in zip(dims, wanted, strict=True):
        dim.Clear()
        dim.dim_value = value
    del sized.graph.value_info[:]
    for output in sized.graph.output:
        output.type.tensor_type.ClearField("shape")
    return sized


def _tensor_shapes(
    model: onnx.ModelProto, size: InputSize, where: str
) -> tuple[dict[str, Shape], dict[str, int]]:
    """Shape and element byte size of every non-weight tensor at the given input size."""
    import onnx
    from onnx import helper, shape_inference

    width, height = input_wh(size)
    named = f"{width}" if width == height else f"{width}x{height}"
    try:
        sized = _with_input_size(model, size)
        inferred = shape_inference.infer_shapes(sized, strict_mode=False, data_prop=True)
    except (ValueError, onnx.shape_inference.InferenceError) as exc:
        raise InputError(where, f"cannot infer tensor shapes at size {named}: {exc}") from None
    shapes: dict[str, Shape] = {}
    itemsizes: dict[str, int] = {}
    graph = inferred.graph
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField("shape"):
            continue
        dims = tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = tuple(d.dim_value for d in dims)
            itemsizes[value.name] = helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).itemsize
    produced = {name for node in graph.node for name in node.output if name}
    if not produced <= shapes.keys():
        return _run_for_shapes(sized, where)
    return shapes, itemsizes


def _run_for_shapes(sized: onnx.ModelProto, where: str) -> tuple[dict[str, Shape], dict[str, int]]:
    """Shapes read from a real run on a zero image (for graphs shape inference cannot
    resolve statically)."""
    import onnx
    import onnxruntime as ort  # only needed on this fallback path
    from onnx import helper

    probe = copy.deepcopy(sized)
    listed = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in listed:
                probe.graph.output.append(onnx.ValueInfoProto(name=name))
                listed.add(name)
    image = image_input(probe)
    dims = [d.dim_value for d in image.type.tensor_type.shape.dim]
    dtype = helper.tensor_dtype_to_np_dtype(image.type.tensor_type.elem_type)
    try:
        session = ort.InferenceSession(
            probe.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        names = [o.name for o in session.get_outputs()]
        values = session.run(names, {image.name: np.zeros(dims, dtype=dtype)})
    except Exception as exc:  # ORT reports graph problems with its own exception types
        raise InputError(where, f"cannot determine tensor shapes: {exc}".splitlines()[0]) from None
    shapes = {image.name: tuple(dims)}
    itemsizes = {image.name: dtype.itemsize}
    for name, array in zip(names, values, strict=True):
        shapes[name] = tuple(np.shape(array))
        itemsizes[name] = np.asarray(array).dtype.itemsize
    return shapes, itemsizes


def _topological_order(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """Nodes in an order where every input is produced before it is consumed."""
    producer = {name: i for i, node in enumerate(graph.node) for name in node.output if name}
    waiting = [0] * len(graph.node)
    consumers: dict[int, list[int]] = defaultdict(list)
    for i, node in enumerate(graph.node):
        for source in {producer[name] for name in node.input if name in producer}:
            waiting[i] += 1
            consumers[source].append(i)
    ready = deque(i for i, count in enumerate(waiting) if count == 0)
    order = []
    while ready:
        i = ready.popleft()
        order.append(graph.node[i])
        for j in consumers[i]:
            waiting[j] -= 1
            if waiting[j] == 0:
                ready.append(j)
    if len(order) != len(graph.node):
        raise InputError(graph.name or "model", "the graph has a cycle")
    return order


def _attribute(node: onnx.NodeProto, name: str, default):
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _node_flops(node: onnx.NodeProto, shapes: dict[str, Shape]) -> int:
    op = node.op_type
    if op in DATA_MOVEMENT_OPS:
        return 0
    out = shapes.get(node.output[0], ()) if node.output else ()
    out_elements = _numel(out)
    has_bias = len(node.input) > 2 and bool(node.input[2])
    if op == "Conv":
        weight = shapes[node.input[1]]  # [C_out, C_in/groups, k...]
        return 2 * out_elements * _numel(weight[1:]) + (out_elements if has_bias else 0)
    if op == "ConvTranspose":
        weight = shapes[node.input[1]]  # [C_in, C_out/groups, k...]
        in_pixels = _numel(shapes[node.input[0]]) // weight[0]
        return 2 * in_pixels * _numel(weight) + (out_elements if has_bias else 0)
    if op == "MatMul":
        k = shapes[node.input[0]][-1]
        return 2 * out_elements * k
    if op == "Gemm":
        a = shapes[node.input[0]]
        k = a[0] if _attribute(node, "transA", 0) else a[1]
        return 2 * out_elements * k + (out_elements if has_bias else 0)
    if op in INPUT_ELEMENT_OPS:
        return _numel(shapes.get(node.input[0], ()))
    if op in POOL_OPS:
        return out_elements * _numel(tuple(_attribute(node, "kernel_shape", [1])))
    if op == "Resize":
        mode = _attribute(node, "mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        return out_elements * RESIZE_COST.get(mode, 4)
    return out_elements * ELEMENT_COST.get(op, 1)


def _activation_peak(
    graph: onnx.GraphProto,
    nodes: list[onnx.NodeProto],
    shapes: dict[str, Shape],
    itemsizes: dict[str, int],
) -> int:
    constants = {t.name for t in graph.initializer}
    constants |= {name for n in nodes if n.op_type == "Constant" for name in n.output}

    def nbytes(name: str) -> int:
        return _numel(shapes.get(name, ())) * itemsizes.get(name, 4)

    end = len(nodes)
    last_use: dict[str, int] = {}
    for step, node in enumerate(nodes):
        for name in node.input:
            if name and name not in constants:
                last_use[name] = step
    for output in graph.output:
        last_use[output.name] = end

    live = {i.name: nbytes(i.name) for i in graph.input if i.name not in constants}
    total = peak = sum(live.values())
    for step, node in enumerate(nodes):
        for name in node.output:
            if name and name not in constants and name not in live:
                live[name] = nbytes(name)
                total += live[name]
        peak = max(peak, total)
        for name in [n for n in live if last_use.get(n, step) <= step]:
            total -= live.pop(name)
    return peak
