"""fp16 variant of an exported graph, for GPU providers (WebGPU, CUDA): weights and compute in float16, the
graph's inputs and outputs unchanged (float32 "cond" in; float32 "rgb" out, or uint8 "yuv420p" when the colour
conversion is appended afterwards, which then runs in float32 on the float32 RGB).

Rule: a node computes in fp16 when it is a heavy op (MatMul, Gemm, Conv, ConvTranspose) or when any of its float
inputs is already fp16; everything before the first heavy op (normalisation, clipping, the sin/cos encoding of the
conditioning, whose large arguments fp16 would blur) stays float32, and so do the FP32_OPS and what follows them. Casts are inserted where the two regions
meet; float constants are stored in the precision of the nodes that read them; Resize's roi/scales stay float32.
Positions stay float32 too: every op on the way from a learned map or the pose to a table index or a sampling grid
(`_position_cone`), so that float16 neither moves pixels nor indexes past a table.
onnxruntime's CPU provider runs such a graph too: it wraps ops without an fp16 kernel in Casts itself (slowly)."""
from __future__ import annotations

from typing import Dict, List, Set

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HEAVY_OPS = {"MatMul", "Gemm", "Conv", "ConvTranspose"}
# (op, input index) that must stay float32 whatever the data precision
FP32_ONLY_INPUTS = {("Resize", 1), ("Resize", 2)}
# ops that compute in float32 whatever their inputs: onnxruntime's CPU provider refuses an fp16 ScatterElements
# with reduction "add" (variant W's colour layers, added into the frame), and the frame after it is cheap
FP32_OPS = {"ScatterElements"}
FLOAT, HALF = TensorProto.FLOAT, TensorProto.FLOAT16
# where a float becomes a position: an integer Cast or Floor (an index into a table), GridSample's grid
INDEX_SINKS = {("Floor", 0), ("GridSample", 1)}
_INT_TYPES = {TensorProto.INT64, TensorProto.INT32, TensorProto.INT16, TensorProto.INT8, TensorProto.UINT8}
# the learned maps feeding positions (flows, displacements) may be fp16: small values; the cone stops there
CONE_STOPS = {"Conv", "ConvTranspose"}


def _position_cone(g: onnx.GraphProto, floats: Set[str]) -> Set[int]:
    """Nodes (by index) whose float output reaches a position (INDEX_SINKS, an integer Cast) through float ops
    other than CONE_STOPS: pixel coordinates and flat table indices (up to W*H = 65536 at 256^2). In float16 they
    lose whole pixels and run out of range: on the H200 the default avatar's fp16 graph indexed past its tables
    (30 Nov 2026); onnxruntime's CPU provider hid it by computing runs of such ops in float32."""
    producer = {o: i for i, n in enumerate(g.node) for o in n.output}
    todo = []
    for n in g.node:
        for i, x in enumerate(n.input):
            int_cast = n.op_type == "Cast" and any(a.name == "to" and a.i in _INT_TYPES for a in n.attribute)
            if x in floats and ((n.op_type, i) in INDEX_SINKS or int_cast):
                todo.append(x)
    cone: Set[int] = set()
    while todo:
        k = producer.get(todo.pop())
        if k is None or k in cone or g.node[k].op_type in CONE_STOPS:
            continue
        cone.add(k)
        todo.extend(x for x in g.node[k].input if x in floats)
    return cone


def _float_tensors(model: onnx.ModelProto) -> Set[str]:
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    names = {v.name for v in list(g.value_info) + list(g.input) + list(g.output) if v.type.tensor_type.elem_type == FLOAT}
    names |= {t.name for t in g.initializer if t.data_type == FLOAT}
    for n in g.node:
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value" and n.attribute[0].t.data_type == FLOAT:
            names.add(n.output[0])
    return names


def convert_to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    floats = _float_tensors(model)
    inits = {t.name: t for t in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant"}
    half: Set[str] = set()  # float tensors computed in fp16
    new_nodes: List[onnx.NodeProto] = []
    casts: Dict[str, str] = {}  # (tensor -> its cast copy), per direction
    half_consts: Dict[str, str] = {}
    cone = _position_cone(g, floats)

    def cast(name: str, to: int) -> str:
        key = f"{name}->{'fp16' if to == HALF else 'fp32'}"
        if key not in casts:
            casts[key] = f"{name}__{'fp16' if to == HALF else 'fp32'}"
            new_nodes.append(helper.make_node("Cast", [name], [casts[key]], to=to, name=f"cast/{key}"))
        return casts[key]

    def half_const(name: str) -> str:
        if name not in half_consts:
            src = inits[name] if name in inits else consts[name].attribute[0].t
            arr = numpy_helper.to_array(src).astype(np.float16)
            half_consts[name] = f"{name}__fp16"
            g.initializer.append(numpy_helper.from_array(arr, half_consts[name]))
        return half_consts[name]

    for k, node in enumerate(list(g.node)):
        if node.op_type == "Constant" and node.output[0] in floats:
            new_nodes.append(node)  # kept (float32); fp16 readers get their own converted copy
            continue
        data_inputs = [(i, x) for i, x in enumerate(node.input)
                       if x and x in floats and (node.op_type, i) not in FP32_ONLY_INPUTS]
        is_half = (node.op_type not in FP32_OPS and k not in cone
                   and (node.op_type in HEAVY_OPS or any(x in half for _, x in data_inputs)))
        if is_half:
            for i, x in data_inputs:
                if x in half:
                    continue
                node.input[i] = half_const(x) if (x in inits or x in consts) else cast(x, HALF)
            for o in node.output:
                if o in floats:
                    half.add(o)
            for a in node.attribute:
                if node.op_type == "Cast" and a.name == "to" and a.i == FLOAT:
                    a.i = HALF
                    half.add(node.output[0])
                if node.op_type == "ConstantOfShape" and a.name == "value" and a.t.data_type == FLOAT:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
        else:
            for i, x in data_inputs:
                if x in half:
                    node.input[i] = cast(x, FLOAT)
        new_nodes.append(node)
    # graph outputs keep their float32 type
    for out in g.output:
        if out.name in half:
            internal = f"{out.name}__fp16out"
            for n in new_nodes:
                n.output[:] = [internal if o == out.name else o for o in n.output]
                n.input[:] = [internal if x == out.name else x for x in n.input]
            new_nodes.append(helper.make_node("Cast", [internal], [out.name], to=FLOAT, name=f"cast/{out.name}-out"))
    del g.node[:]
    g.node.extend(new_nodes)
    del g.value_info[:]  # stale element types; onnxruntime infers them again
    # drop float32 constants nobody reads any more
    used = {x for n in g.node for x in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    onnx.checker.check_model(model)
    return model


def precision_of(model: onnx.ModelProto) -> str:
    """"fp16" when most weight bytes are float16, else "fp32"."""
    sizes = {FLOAT: 0, HALF: 0}
    for t in model.graph.initializer:
        if t.data_type in sizes:
            sizes[t.data_type] += int(np.prod(t.dims)) if t.dims else 1
    return "fp16" if sizes[HALF] > sizes[FLOAT] else "fp32"
