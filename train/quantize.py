"""Optional int8 export for CPU (static quantisation, QDQ format, written by hand with the onnx package: there is
no onnxruntime.quantization on Debian).

What is quantised: the decoder's 3x3 convolutions except the last one (the one before the output sigmoid stays
float), with int8 symmetric per-output-channel weights, int32 biases, and uint8 activations (per tensor, ranges
calibrated on the training conditioning in PyTorch); the bilinear resizes run on uint8 between them. The MLP stays
float. onnxruntime fuses the DequantizeLinear -> Conv -> QuantizeLinear groups into integer convolutions.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import onnx
from onnx import helper, numpy_helper
import torch
import torch.nn.functional as Fn

from .model import PortraitModel
from .onnx_check import ort_time, run_onnx

MAX_PSNR_COST_DB = 0.2


@torch.no_grad()
def decoder_ranges(model: PortraitModel, latent: "torch.Tensor | None", cond: torch.Tensor) -> List[Tuple[float, float]]:
    """(min, max) of the decoder's input feature map and of every stage's ReLU output, over `cond` [N, 60]."""
    model = model.eval()
    pix = model.per_pixel()
    if model.sw.latents and latent is not None:
        pix = pix + model.latent_contribution(latent)
    ranges: List[Tuple[float, float]] = []
    for i in range(0, cond.shape[0], 8):
        h = pix[None] + model.per_frame(cond[i:i + 8])[:, None]
        h = torch.relu(h)
        for layer in model.hidden:
            h = torch.relu(layer(h))
        assert model.feat_head is not None
        x = model._to_map(model.feat_head(h))
        acts = [x]
        for conv in model.convs:
            x = torch.relu(conv(Fn.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)))
            acts.append(x)
        r = [(float(a.min()), float(a.max())) for a in acts]
        ranges = r if not ranges else [(min(a[0], b[0]), max(a[1], b[1])) for a, b in zip(ranges, r)]
    return ranges


def _qparams(lo: float, hi: float) -> Tuple[float, int]:
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-8) / 255.0
    zp = int(np.clip(round(-lo / scale), 0, 255))
    return scale, zp


def quantize_decoder(fp32_path: Path, out_path: Path, model: PortraitModel, ranges: List[Tuple[float, float]]) -> None:
    m = onnx.load(str(fp32_path))
    g = m.graph
    inits: Dict[str, onnx.TensorProto] = {t.name: t for t in g.initializer}
    nodes = list(g.node)
    resizes = [n for n in nodes if n.op_type == "Resize"]
    convs = [n for n in nodes if n.op_type == "Conv"]
    if len(convs) != len(model.convs) + 1 or len(resizes) != len(model.convs) or len(ranges) != len(model.convs) + 1:
        raise ValueError("unexpected decoder graph: cannot quantise")
    consumers: Dict[str, List[onnx.NodeProto]] = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    new_inits: List[onnx.TensorProto] = []
    extra: List[Tuple[str, List[onnx.NodeProto]]] = []  # (after tensor, nodes to insert)

    def const(name: str, arr: np.ndarray) -> str:
        new_inits.append(numpy_helper.from_array(arr, name))
        return name

    def qdq(tensor: str, scale: float, zp: int, tag: str) -> None:
        """tensor -> Q -> DQ, every consumer re-wired to the DQ output."""
        s = const(f"{tag}_scale", np.array(scale, np.float32))
        z = const(f"{tag}_zp", np.array(zp, np.uint8))
        q_out, dq_out = f"{tag}_q", f"{tag}_dq"
        for c in consumers.get(tensor, []):
            for k, name in enumerate(c.input):
                if name == tensor:
                    c.input[k] = dq_out
        extra.append((tensor, [helper.make_node("QuantizeLinear", [tensor, s, z], [q_out], name=f"{tag}_Q"),
                               helper.make_node("DequantizeLinear", [q_out, s, z], [dq_out], name=f"{tag}_DQ")]))

    act_scales = [_qparams(lo, hi) for lo, hi in ranges]
    # activations: the decoder input (Resize 0 input) and every quantised conv's ReLU output (the next Resize input);
    # each Resize output gets the same parameters as its input
    for k, rz in enumerate(resizes):
        s, z = act_scales[k]
        qdq(rz.input[0], s, z, f"dq_act{k}_in")
        qdq(rz.output[0], s, z, f"dq_act{k}_rs")
    # the ReLU after the last quantised conv feeds the float output conv: quantise it too (conv output group)
    last_relu_out = None
    for n in nodes:
        if n.op_type == "Relu" and convs[-2].output[0] in n.input:
            last_relu_out = n.output[0]
    if last_relu_out is not None and len(convs) >= 2:
        s, z = act_scales[len(model.convs)]
        qdq(last_relu_out, s, z, "dq_act_last")
    # weights and biases of every conv but the last
    for k, conv in enumerate(convs[:-1]):
        w = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float32)
        ws = np.maximum(np.abs(w).reshape(w.shape[0], -1).max(1), 1e-12) / 127.0
        wq = np.clip(np.round(w / ws[:, None, None, None]), -127, 127).astype(np.int8)
        wname = f"dq_w{k}"
        const(wname + "_q", wq)
        const(wname + "_scale", ws.astype(np.float32))
        const(wname + "_zp", np.zeros(w.shape[0], np.int8))
        dq_w = helper.make_node("DequantizeLinear", [wname + "_q", wname + "_scale", wname + "_zp"], [wname + "_dq"],
                                name=wname + "_DQ", axis=0)
        conv.input[1] = wname + "_dq"
        pre = [dq_w]
        if len(conv.input) > 2 and conv.input[2]:
            b = numpy_helper.to_array(inits[conv.input[2]]).astype(np.float32)
            x_scale = act_scales[k][0]
            bs = (ws * x_scale).astype(np.float32)
            bq = np.round(b / bs).astype(np.int32)
            bname = f"dq_b{k}"
            const(bname + "_q", bq)
            const(bname + "_scale", bs)
            const(bname + "_zp", np.zeros(b.shape[0], np.int32))
            pre.append(helper.make_node("DequantizeLinear", [bname + "_q", bname + "_scale", bname + "_zp"],
                                        [bname + "_dq"], name=bname + "_DQ", axis=0))
            conv.input[2] = bname + "_dq"
        extra.append(("__before__" + conv.name, pre))
    # rebuild the node list in topological order
    out_nodes: List[onnx.NodeProto] = []
    for n in nodes:
        for key, ins in extra:
            if key == "__before__" + n.name:
                out_nodes.extend(ins)
        out_nodes.append(n)
        for o in n.output:
            for key, ins in extra:
                if key == o:
                    out_nodes.extend(ins)
    del g.node[:]
    g.node.extend(out_nodes)
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep + new_inits)
    onnx.checker.check_model(m)
    onnx.save(m, str(out_path))


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = ((a.astype(np.float64) - b) ** 2).reshape(a.shape[0], -1).mean(1)
    return float(np.mean(-10 * np.log10(np.maximum(mse, 1e-10))))


def try_int8(model: PortraitModel, latent: "torch.Tensor | None", out_dir: Path, calib_cond: torch.Tensor,
             eval_cond: np.ndarray, eval_gt: np.ndarray, runs: int = 40) -> Dict[str, Any]:
    """Quantises out_dir/avatar.onnx; keeps the int8 model as avatar.onnx (fp32 kept as avatar.fp32.onnx) only if
    onnxruntime-node runs it faster on one thread and it costs <= 0.2 dB PSNR on the given frames."""
    if not model.sw.decoder or len(model.convs) < 1:
        return {"used": False, "reason": "no decoder convolutions to quantise"}
    fp32 = out_dir / "avatar.onnx"
    tmp = out_dir / "avatar.int8.onnx.tmp"
    try:
        quantize_decoder(fp32, tmp, model, decoder_ranges(model, latent, calib_cond))
        outs = []
        for path in (fp32, tmp):
            ys = [run_onnx(path, "cond", eval_cond[i:i + 8])[0] for i in range(0, len(eval_cond), 8)]
            outs.append(np.concatenate(ys))
        p_f, p_q = _psnr(outs[0], eval_gt), _psnr(outs[1], eval_gt)
        t_f, t_q = ort_time(fp32, 1, runs)["median"], ort_time(tmp, 1, runs)["median"]
        facts: Dict[str, Any] = {"psnrFp32Db": p_f, "psnrInt8Db": p_q, "psnrCostDb": p_f - p_q, "msFp32": t_f,
                                 "msInt8": t_q, "frames": int(len(eval_cond)), "threads": 1,
                                 "scheme": "decoder convs except the last: int8 per-channel weights, uint8 activations (QDQ)"}
        ok = p_f - p_q <= MAX_PSNR_COST_DB and t_q < t_f
        facts["used"] = bool(ok)
        if ok:
            os.replace(fp32, out_dir / "avatar.fp32.onnx")
            os.replace(tmp, fp32)
        else:
            facts["reason"] = "slower" if t_q >= t_f else f"costs more than {MAX_PSNR_COST_DB} dB"
        return facts
    finally:
        if tmp.exists():
            tmp.unlink()
