"""An avatar's ONNX graph run by PyTorch: each node becomes the PyTorch call that computes it, so the exact graph
that passed the export's parity check renders on a PyTorch GPU host (CUDA graphs, fp16), for any avatar, with no
second export and no checkpoint.

Only the operators our exports use are implemented (paper / cpu / warp models, the fp16 and yuv420p variants);
any other is refused when the graph is loaded, naming it. Integer tensors (shape arithmetic) stay on the CPU, and
their device copies are made once and kept, so that a CUDA graph can be captured around a run.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Set

import numpy as np
import torch
import torch.nn.functional as F

try:  # onnx is only needed to read the graph
    import onnx
    from onnx import numpy_helper
except ImportError:  # pragma: no cover - reported when a graph is loaded
    onnx = None  # type: ignore[assignment]

# ONNX TensorProto data types → torch dtypes
_DTYPES = {1: torch.float32, 2: torch.uint8, 3: torch.int8, 6: torch.int32, 7: torch.int64, 9: torch.bool,
           10: torch.float16, 11: torch.float64, 16: torch.bfloat16}
_INTEGER = (torch.int64, torch.int32, torch.int8, torch.uint8, torch.bool)
SMALL_CONSTANT = 16  # constants of at most this many values stay on the CPU
# inputs that an operator reads as numbers (sizes, scales, bounds), not as data: they stay on the CPU
PARAMETER_INPUTS = {"Resize": (1, 2, 3), "Clip": (1, 2), "Pad": (1, 2, 3), "Reshape": (1,), "Slice": (1, 2, 3, 4),
                    "Unsqueeze": (1,), "ReduceSum": (1,), "ReduceMean": (1,)}


class OnnxTorchError(Exception):
    pass


def _attrs(node: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else v
    return out


def _ints(t: Optional[torch.Tensor]) -> List[int]:
    return [] if t is None else [int(v) for v in t.reshape(-1).tolist()]


def _pads_to_torch(pads: Sequence[int]) -> List[int]:
    """ONNX pads [b0, b1, …, e0, e1, …] → torch's F.pad order (last axis first: b_last, e_last, …)."""
    n = len(pads) // 2
    out: List[int] = []
    for ax in reversed(range(n)):
        out += [int(pads[ax]), int(pads[ax + n])]
    return out


class Node:
    __slots__ = ("op", "inputs", "outputs", "attrs", "fn")

    def __init__(self, op: str, inputs: List[str], outputs: List[str], attrs: Dict[str, Any], fn: Callable[..., Any]):
        self.op, self.inputs, self.outputs, self.attrs, self.fn = op, inputs, outputs, attrs, fn


class OnnxTorch:
    """Loads an ONNX model file; `run(x)` computes its (single) output for input `x` on `device`."""

    def __init__(self, path: str, device: torch.device, autocast: Optional[torch.dtype] = None,
                 half_as_float: Optional[bool] = None, round_half: bool = False):
        if onnx is None:
            raise OnnxTorchError("the Python package onnx is needed to read the avatar's graph (Debian: python3-onnx)")
        model = onnx.load(path)
        g = model.graph
        self.device = render_device(device)
        self.autocast = autocast
        # PyTorch has few float16 kernels on the CPU: there an fp16 graph computes in float32 (its weights widened)
        self.half_as_float = device.type == "cpu" if half_as_float is None else half_as_float
        self.consts: Dict[str, torch.Tensor] = {}
        for init in g.initializer:
            self.consts[init.name] = self._place(torch.from_numpy(numpy_helper.to_array(init).copy()))
        known = {i.name for i in g.initializer}
        self.inputs = [i for i in g.input if i.name not in known]
        self.outputs = list(g.output)
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise OnnxTorchError(f"{path}: expected one input and one output, found {len(self.inputs)} and {len(self.outputs)}")
        self.input_name, self.output_name = self.inputs[0].name, self.outputs[0].name
        self.nodes: List[Node] = []
        missing = sorted({n.op_type for n in g.node if n.op_type != "Constant" and not hasattr(self, "op_" + n.op_type)})
        if missing:
            raise OnnxTorchError(f"{path}: operators not supported by the PyTorch renderer: {', '.join(missing)}")
        for n in g.node:
            attrs = _attrs(n)
            if n.op_type == "Constant":
                self.consts[n.output[0]] = self._place(torch.from_numpy(numpy_helper.to_array(attrs["value"]).copy()))
                continue
            self.nodes.append(Node(n.op_type, list(n.input), list(n.output), attrs, getattr(self, "op_" + n.op_type)))
        # round_half (tests): with half_as_float, every value the graph types float16 is rounded to float16 after
        # the node that makes it, as a GPU computing in float16 would (the CPU widens them to float32 otherwise)
        self._rounded: Set[str] = set()
        if round_half and self.half_as_float:
            g_typed = onnx.shape_inference.infer_shapes(model).graph
            self._rounded = {v.name for v in list(g_typed.value_info) + list(g_typed.output)
                             if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT16}
        self._const_ids = {id(t) for t in self.consts.values()}
        self.device_copies = 0  # copies of run-time CPU values to the device (each one a transfer in every run)
        self._captured_inputs: List[torch.Tensor] = []
        self._on_device: Dict[int, torch.Tensor] = {}

    def _place(self, t: torch.Tensor) -> torch.Tensor:
        """Weights go to the render device; integers and small constants (an operator's scales, bounds, pad
        value: read as numbers while the graph runs) stay on the CPU, so no value is read back from the device."""
        if t.dtype == torch.float16 and self.half_as_float:
            t = t.float()
        return t if t.dtype in _INTEGER or t.numel() <= SMALL_CONSTANT else t.to(self.device)

    def dev(self, t: torch.Tensor) -> torch.Tensor:
        """`t` on the render device; a constant's copy is made once and kept (nothing is copied during capture)."""
        if t.device == self.device:
            return t
        key = id(t)
        if key not in self._const_ids:  # computed on the CPU while the graph runs (from shapes, small constants)
            self.device_copies += 1
            if self.device.type == "cuda" and torch.cuda.is_current_stream_capturing():
                # a CUDA graph replays this copy: from page-locked memory that lives as long as this graph
                pinned = t.pin_memory()
                self._captured_inputs.append(pinned)
                return pinned.to(self.device, non_blocking=True)
            return t.to(self.device)
        c = self._on_device.get(key)
        if c is None:
            c = self._on_device[key] = t.to(self.device)
        return c

    def io_metadata(self) -> Dict[str, Any]:
        def meta(v: Any) -> Dict[str, Any]:
            tt = v.type.tensor_type
            dims: List[Any] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "batch") for d in tt.shape.dim]
            names = {1: "float32", 2: "uint8", 10: "float16", 7: "int64"}
            return {"name": v.name, "isTensor": True, "type": names.get(tt.elem_type, str(tt.elem_type)), "shape": dims}
        return {"inputs": [meta(self.inputs[0])], "outputs": [meta(self.outputs[0])]}

    @torch.no_grad()
    def run(self, x: torch.Tensor) -> torch.Tensor:
        env: Dict[str, Optional[torch.Tensor]] = dict(self.consts)
        env[""] = None
        env[self.input_name] = x
        ctx = (torch.autocast(device_type=self.device.type, dtype=self.autocast) if self.autocast is not None
               else contextlib.nullcontext())
        with ctx:
            for n in self.nodes:
                args = [env[i] if i else None for i in n.inputs]
                for k, v in enumerate(args):  # float data on the device; an operator's parameters as they are
                    if (v is not None and v.device != self.device and v.dim() > 0 and v.dtype.is_floating_point
                            and k not in PARAMETER_INPUTS.get(n.op, ())):
                        args[k] = self.dev(v)
                out = n.fn(n.attrs, *args)
                if self._rounded and isinstance(out, torch.Tensor) and n.outputs[0] in self._rounded:
                    out = out.half().float()
                if isinstance(out, tuple):
                    for name, v in zip(n.outputs, out):
                        env[name] = v
                else:
                    env[n.outputs[0]] = out
        y = env[self.output_name]
        assert y is not None
        return y

    # --- the operators -------------------------------------------------------------------------------------
    def _same(self, *ts: torch.Tensor) -> List[torch.Tensor]:
        """Elementwise operands on one device: the render device if any of them is there."""
        if any(t.device == self.device for t in ts) and any(t.device != self.device for t in ts):
            return [t if t.device == self.device or t.dim() == 0 else self.dev(t) for t in ts]
        return list(ts)

    def op_Add(self, a: Dict[str, Any], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = self._same(x, y)
        return x + y

    def op_Sub(self, a: Dict[str, Any], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = self._same(x, y)
        return x - y

    def op_Mul(self, a: Dict[str, Any], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = self._same(x, y)
        return x * y

    def op_Div(self, a: Dict[str, Any], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = self._same(x, y)
        return torch.div(x, y, rounding_mode="trunc") if x.dtype in _INTEGER else x / y

    def op_Neg(self, a: Dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        return -x

    def op_Identity(self, a: Dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        return x

    def op_Relu(self, a: Dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    def op_Sigmoid(self, a: Dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x)

    def op_Sin(self, a: Dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)

    def op_Cos(self, a: Dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        return torch.cos(x)

    def op_Floor(self, a: Dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        return torch.floor(x)

    def op_Clip(self, a: Dict[str, Any], x: torch.Tensor, lo: Optional[torch.Tensor] = None,
                hi: Optional[torch.Tensor] = None) -> torch.Tensor:
        lo_v = a.get("min") if lo is None else float(lo.item()) if lo.device.type == "cpu" else lo
        hi_v = a.get("max") if hi is None else float(hi.item()) if hi.device.type == "cpu" else hi
        return torch.clamp(x, min=lo_v, max=hi_v)

    def op_Cast(self, a: Dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        dt = _DTYPES[int(a["to"])]
        if dt == torch.float16 and self.half_as_float:
            dt = torch.float32
        if dt in _INTEGER and x.dtype.is_floating_point:
            x = torch.trunc(x)  # ONNX casts float → int by truncation (torch does too; explicit for clarity)
        return x.to(dt)

    def op_Shape(self, a: Dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        s = list(x.shape)[a.get("start", 0):a.get("end", None)]
        return torch.tensor(s, dtype=torch.int64)

    def op_Gather(self, a: Dict[str, Any], x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        axis = int(a.get("axis", 0)) % x.dim()
        i = (idx if idx.device == x.device else self.dev(idx)).long()
        i = torch.where(i < 0, i + x.shape[axis], i)
        out = torch.index_select(x, axis, i.reshape(-1))
        return out.reshape(list(x.shape[:axis]) + list(idx.shape) + list(x.shape[axis + 1:]))

    def op_GatherElements(self, a: Dict[str, Any], x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        axis = int(a.get("axis", 0)) % x.dim()
        i = (idx if idx.device == x.device else self.dev(idx)).long()
        return torch.gather(x, axis, torch.where(i < 0, i + x.shape[axis], i))

    def op_Range(self, a: Dict[str, Any], start: torch.Tensor, limit: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        # from scalars on the CPU (Shape's), made on the render device: its values (the batch's row offsets in the
        # head-aligned maps' table) go into device arithmetic, and a CUDA graph replays a kernel, not a host copy
        return torch.arange(start.item(), limit.item(), delta.item(), dtype=start.dtype, device=self.device)

    def op_Unsqueeze(self, a: Dict[str, Any], x: torch.Tensor, axes: Optional[torch.Tensor] = None) -> torch.Tensor:
        ax = _ints(axes) if axes is not None else list(a["axes"])
        rank = x.dim() + len(ax)
        for d in sorted(v % rank for v in ax):
            x = x.unsqueeze(d)
        return x

    def op_Concat(self, a: Dict[str, Any], *xs: torch.Tensor) -> torch.Tensor:
        ts = self._same(*[t for t in xs if t is not None])
        return torch.cat(ts, dim=int(a["axis"]))

    def op_Reshape(self, a: Dict[str, Any], x: torch.Tensor, shape: torch.Tensor) -> torch.Tensor:
        s = _ints(shape)
        if not a.get("allowzero", 0):
            s = [x.shape[i] if v == 0 else v for i, v in enumerate(s)]
        return x.reshape(s)

    def op_Transpose(self, a: Dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        perm = a.get("perm") or list(reversed(range(x.dim())))
        return x.permute(*perm)

    def op_Slice(self, a: Dict[str, Any], x: torch.Tensor, starts: torch.Tensor, ends: torch.Tensor,
                 axes: Optional[torch.Tensor] = None, steps: Optional[torch.Tensor] = None) -> torch.Tensor:
        st, en = _ints(starts), _ints(ends)
        ax = _ints(axes) if axes is not None else list(range(len(st)))
        sp = _ints(steps) if steps is not None else [1] * len(st)
        idx: List[Any] = [slice(None)] * x.dim()
        for s, e, axis, step in zip(st, en, ax, sp):
            if step != 1:
                raise OnnxTorchError("Slice with a step other than 1 is not supported")
            n = x.shape[axis % x.dim()]
            s = max(0, min(n, s + n if s < 0 else s))
            e = max(0, min(n, e + n if e < 0 else e))
            idx[axis % x.dim()] = slice(s, e)
        return x[tuple(idx)]

    def op_Gemm(self, a: Dict[str, Any], x: torch.Tensor, w: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        if a.get("transA", 0):
            x = x.t()
        if a.get("transB", 0):
            w = w.t()
        y = torch.matmul(x, w) * float(a.get("alpha", 1.0))
        return y if c is None else y + float(a.get("beta", 1.0)) * c

    def op_MatMul(self, a: Dict[str, Any], x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, w)

    def op_Conv(self, a: Dict[str, Any], x: torch.Tensor, w: torch.Tensor, b: Optional[torch.Tensor] = None) -> torch.Tensor:
        if a.get("auto_pad", "NOTSET") not in ("NOTSET", ""):
            raise OnnxTorchError("Conv with auto_pad is not supported")
        pads = list(a.get("pads", [0] * (2 * (w.dim() - 2))))
        n = len(pads) // 2
        stride, dil, groups = a.get("strides", [1] * n), a.get("dilations", [1] * n), int(a.get("group", 1))
        if pads[:n] == pads[n:]:
            return F.conv2d(x, w, b, stride=stride, padding=pads[:n], dilation=dil, groups=groups)
        return F.conv2d(F.pad(x, _pads_to_torch(pads)), w, b, stride=stride, dilation=dil, groups=groups)

    def op_AveragePool(self, a: Dict[str, Any], x: torch.Tensor) -> torch.Tensor:
        k = list(a["kernel_shape"])
        pads = list(a.get("pads", [0] * (2 * len(k))))
        n = len(k)
        if pads[:n] != pads[n:]:
            raise OnnxTorchError("AveragePool with asymmetric pads is not supported")
        return F.avg_pool2d(x, k, stride=a.get("strides", k), padding=pads[:n], ceil_mode=bool(a.get("ceil_mode", 0)),
                            count_include_pad=bool(a.get("count_include_pad", 0)))

    def op_Pad(self, a: Dict[str, Any], x: torch.Tensor, pads: torch.Tensor, value: Optional[torch.Tensor] = None,
               axes: Optional[torch.Tensor] = None) -> torch.Tensor:
        if axes is not None:
            raise OnnxTorchError("Pad with axes is not supported")
        mode = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}[a.get("mode", "constant")]
        p = _pads_to_torch(_ints(pads))
        if mode == "constant":
            return F.pad(x, p, mode="constant", value=0.0 if value is None else float(value.item()))
        return F.pad(x, p, mode=mode)

    def op_ReduceMean(self, a: Dict[str, Any], x: torch.Tensor, axes: Optional[torch.Tensor] = None) -> torch.Tensor:
        ax = _ints(axes) if axes is not None else list(a.get("axes", range(x.dim())))
        return torch.mean(x, dim=ax, keepdim=bool(a.get("keepdims", 1)))

    def op_ReduceSum(self, a: Dict[str, Any], x: torch.Tensor, axes: Optional[torch.Tensor] = None) -> torch.Tensor:
        ax = _ints(axes) if axes is not None else list(a.get("axes", []))
        if not ax:
            if a.get("noop_with_empty_axes", 0):
                return x
            ax = list(range(x.dim()))
        return torch.sum(x, dim=ax, keepdim=bool(a.get("keepdims", 1)))

    def op_ScatterElements(self, a: Dict[str, Any], x: torch.Tensor, index: torch.Tensor,
                           updates: torch.Tensor) -> torch.Tensor:
        axis, reduction = int(a.get("axis", 0)), a.get("reduction", "none")
        x, updates = self._same(x, updates)
        index = index.to(x.device)
        if reduction == "add":
            return x.scatter_add(axis, index, updates)
        if reduction == "none":
            return x.scatter(axis, index, updates)
        raise OnnxTorchError(f"ScatterElements reduction {reduction} is not supported")

    def op_GridSample(self, a: Dict[str, Any], x: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
        mode = {"bilinear": "bilinear", "linear": "bilinear", "nearest": "nearest", "bicubic": "bicubic",
                "cubic": "bicubic"}[a.get("mode", "bilinear")]
        if self.autocast is not None:  # sampling positions in fp16 move pixels (variant W's warp): keep them float32
            x, grid = x.float(), grid.float()
        return F.grid_sample(x, grid.to(x.dtype), mode=mode, padding_mode=a.get("padding_mode", "zeros"),
                             align_corners=bool(a.get("align_corners", 0)))

    def op_Resize(self, a: Dict[str, Any], x: torch.Tensor, roi: Optional[torch.Tensor] = None,
                  scales: Optional[torch.Tensor] = None, sizes: Optional[torch.Tensor] = None) -> torch.Tensor:
        ctm = a.get("coordinate_transformation_mode", "half_pixel")
        mode = a.get("mode", "nearest")
        if sizes is not None and sizes.numel():
            out = _ints(sizes)[2:]
        else:
            sc = [float(v) for v in scales.reshape(-1).tolist()]  # type: ignore[union-attr]
            out = [int(np.floor(x.shape[2 + i] * s)) for i, s in enumerate(sc[2:])]
        if mode == "nearest":
            if ctm not in ("asymmetric", "tf_half_pixel_for_nn") or a.get("nearest_mode", "round_prefer_floor") != "floor":
                if not all(o % i == 0 for o, i in zip(out, x.shape[2:])):
                    raise OnnxTorchError(f"Resize nearest with {ctm} is not supported")
            return F.interpolate(x, size=out, mode="nearest")
        if mode == "linear":
            if ctm == "align_corners":
                return F.interpolate(x, size=out, mode="bilinear", align_corners=True)
            if ctm in ("half_pixel", "pytorch_half_pixel"):
                return F.interpolate(x, size=out, mode="bilinear", align_corners=False)
        raise OnnxTorchError(f"Resize mode {mode} with {ctm} is not supported")


def render_device(device: torch.device) -> torch.device:
    """`cuda` as the tensors on it report it (`cuda:0`): every "is it on the render device?" is an equality, and
    torch.device("cuda") != torch.device("cuda", 0) (on the H200 every tensor looked off-device, nothing was moved,
    and graphs that mix small CPU integers into device arithmetic failed, 30 Nov 2026)."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def load(path: str, device: str = "cpu", autocast: Optional[str] = None) -> OnnxTorch:
    dt = {"fp16": torch.float16, "bf16": torch.bfloat16, None: None, "off": None}[autocast]
    return OnnxTorch(path, torch.device(device), dt)
