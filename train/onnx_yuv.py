"""Colour conversion inside the ONNX graph: float RGB [batch, 3, H, W] in [0, 1] -> one uint8 tensor
[batch, H*W*3/2] laid out as packed yuv420p (the Y plane, then U, then V), exactly the formula the server uses
(server/src/media/rgb-to-yuv.ts): BT.601 limited range, values clamped to [0, 1], chroma from the mean of each
2x2 block, each byte = floor(16.5 + ...) / floor(128.5 + ...). The host then copies bytes instead of converting
floats, and the model's output buffer is 8x smaller (1.5 bytes per pixel instead of 12).

`rgb_to_yuv420p` is the same formula in numpy (float64, as JavaScript computes it): the parity reference."""
from __future__ import annotations

from typing import List

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

YUV_OUTPUT = "yuv420p"
# Rows: Y; U, V. Columns: R, G, B. Offsets include the +0.5 of the rounding (then floor).
Y_COEF = np.array([[65.481, 128.553, 24.966]], np.float64)
Y_OFFSET = np.array([16.5])
UV_COEF = np.array([[-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], np.float64)
UV_OFFSET = np.array([128.5, 128.5])


def yuv420p_bytes(width: int, height: int) -> int:
    return width * height + 2 * (width // 2) * (height // 2)


def rgb_to_yuv420p(rgb: np.ndarray) -> np.ndarray:
    """[B, 3, H, W] float -> [B, H*W*3/2] uint8, as rgbPlanarToYuv420p does (float64 arithmetic)."""
    x = np.clip(rgb.astype(np.float64), 0.0, 1.0)
    b, _, h, w = x.shape
    y = np.floor(np.einsum("kc,bchw->bkhw", Y_COEF, x) + Y_OFFSET[None, :, None, None])
    blocks = 0.25 * (x[:, :, 0::2, 0::2] + x[:, :, 0::2, 1::2] + x[:, :, 1::2, 0::2] + x[:, :, 1::2, 1::2])
    uv = np.floor(np.einsum("kc,bchw->bkhw", UV_COEF, blocks) + UV_OFFSET[None, :, None, None])
    return np.concatenate([y.reshape(b, -1), uv.reshape(b, -1)], axis=1).astype(np.uint8)


def append_yuv420p(model: onnx.ModelProto, width: int, height: int, rgb_name: str = "rgb") -> onnx.ModelProto:
    """Replaces the graph output `rgb_name` (float32 [batch, 3, H, W]) by "yuv420p" (uint8 [batch, H*W*3/2]).
    Pointwise 1x1 convolutions do the colour matrix (one GEMM per plane on any provider)."""
    g = model.graph
    outs = [o for o in g.output if o.name == rgb_name]
    if len(outs) != 1:
        raise ValueError(f"the graph has no output named {rgb_name!r}")
    h, w = height, width
    if h <= 0 or w <= 0 or h % 2 or w % 2:
        raise ValueError(f"yuv420p needs an even frame size (got {w}x{h})")
    p = "yuv/"

    def const(name: str, arr: np.ndarray) -> str:
        g.initializer.append(numpy_helper.from_array(arr, p + name))
        return p + name

    nodes: List[onnx.NodeProto] = [
        helper.make_node("Clip", [rgb_name, const("zero", np.array(0, np.float32)), const("one", np.array(1, np.float32))],
                         [p + "rgb01"], name=p + "clip"),
        helper.make_node("Conv", [p + "rgb01", const("wy", Y_COEF.astype(np.float32).reshape(1, 3, 1, 1)),
                                  const("by", Y_OFFSET.astype(np.float32))], [p + "y_f"], name=p + "y"),
        helper.make_node("AveragePool", [p + "rgb01"], [p + "mean2x2"], kernel_shape=[2, 2], strides=[2, 2], name=p + "pool"),
        helper.make_node("Conv", [p + "mean2x2", const("wuv", UV_COEF.astype(np.float32).reshape(2, 3, 1, 1)),
                                  const("buv", UV_OFFSET.astype(np.float32))], [p + "uv_f"], name=p + "uv"),
    ]
    flat = const("flat", np.array([0, -1], np.int64))
    for plane in ("y", "uv"):
        nodes += [
            helper.make_node("Floor", [f"{p}{plane}_f"], [f"{p}{plane}_floor"], name=f"{p}{plane}_floor"),
            helper.make_node("Cast", [f"{p}{plane}_floor"], [f"{p}{plane}_u8"], to=TensorProto.UINT8, name=f"{p}{plane}_cast"),
            helper.make_node("Reshape", [f"{p}{plane}_u8", flat], [f"{p}{plane}_flat"], name=f"{p}{plane}_flat"),
        ]
    nodes.append(helper.make_node("Concat", [p + "y_flat", p + "uv_flat"], [YUV_OUTPUT], axis=1, name=p + "concat"))
    g.node.extend(nodes)
    dims = outs[0].type.tensor_type.shape.dim
    batch = (dims[0].dim_param if len(dims) else "") or "batch"
    g.output.remove(outs[0])
    g.output.append(helper.make_tensor_value_info(YUV_OUTPUT, TensorProto.UINT8, [batch, yuv420p_bytes(w, h)]))
    onnx.checker.check_model(model)
    return model
