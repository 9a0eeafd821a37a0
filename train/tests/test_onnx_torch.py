"""The PyTorch renderer (train/onnx_torch.py, train/render_process.py): an exported avatar's ONNX graph, run node by
node in PyTorch, gives what onnxruntime gives (the export's parity tolerance), for each variant and output format;
an unknown operator is refused by name; the render process speaks its pipe protocol and fails clearly."""
import json
import struct
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from train.export import ExportFormat, export_avatar, untrained_conditioning
from train.model import PortraitModel
from train.model_warp import WarpModel, untrained_warp_init
from train.onnx_check import run_onnx
from train.onnx_torch import OnnxTorch, OnnxTorchError, load, render_device

from .conftest import ROOT, tiny_model_config
from .one_device import OneDevice

X = np.random.default_rng(5).normal(size=(3, 60)).astype(np.float32)


def _avatar(tmp_path, variant="F", fmt=ExportFormat()):
    torch.manual_seed(2)
    if variant in ("W", "W+layers"):
        # W+layers: the default avatar's kind, with the eye and mouth layers (sizes 128 and up, drawing something)
        # and the head-aligned maps (sampled by row offsets per batch item: a Range)
        layers = variant == "W+layers"
        cfg = tiny_model_config("W", n_latents=1, size=128 if layers else 64)
        cfg.warp_grid, cfg.warp_channels, cfg.refine_channels = 16, [8, 8], 8
        cfg.warp_eyes = cfg.warp_mouth = cfg.warp_aligned = layers
        m = WarpModel(cfg.validate()).eval()
        untrained_warp_init(m, 0)
        with torch.no_grad():
            for layer in (m.eye_patch, m.mouth_patch):
                if layer is not None:
                    layer.head.weight.normal_(0, 0.05)
    else:
        m = PortraitModel(tiny_model_config(variant, n_latents=4)).eval()
        if hasattr(m, "latents"):
            torch.nn.init.normal_(m.latents.weight)
    c = untrained_conditioning()
    export_avatar(m, m.mean_latent(), tmp_path, "t", 25, c["mean"], c["std"], c["neutral"], {"provenance": "test"}, fmt=fmt)
    return tmp_path / "avatar.onnx"


@pytest.mark.parametrize("variant", ["F", "A", "W", "W+layers"])
def test_float32_graphs_match_onnxruntime(tmp_path, variant):
    path = _avatar(tmp_path, variant)
    y = load(str(path)).run(torch.from_numpy(X)).numpy()
    ref, _ = run_onnx(path, "cond", X)
    assert y.shape == ref.shape
    assert np.abs(y - ref).max() < 1e-4


def test_shipped_default_avatar_matches_onnxruntime():
    # the shipped avatar has what no untrained test avatar has (the head geometry's dense warp: GatherElements);
    # the server's `torch` device refused it by operator name until 30 Nov 2026
    path = ROOT / "avatars" / "default" / "avatar.onnx"
    g = load(str(path))
    y = g.run(torch.from_numpy(X)).numpy()
    ref, _ = run_onnx(path, "cond", X)
    assert np.abs(y - ref).max() < 1e-4
    meta = OnnxTorch(str(path), torch.device("meta"), half_as_float=False)
    assert meta.run(torch.zeros(2, 60, device="meta")).shape[0] == 2 and meta.device_copies == 0


@pytest.mark.parametrize("variant", ["W+layers", "F"])
def test_fp16_graphs_computed_in_float16_stay_in_range_and_close(tmp_path, variant):
    # as a GPU computes it: every value the graph types float16 rounded to float16 after each node. Variant W's
    # table indices and sampling positions computed in fp16 ran past its tables on the H200 (30 Nov 2026); the
    # export now keeps them float32, so the result stays within a few levels of onnxruntime's
    path = _avatar(tmp_path, variant, ExportFormat("yuv420p", "fp16"))
    y = OnnxTorch(str(path), torch.device("cpu"), half_as_float=True, round_half=True).run(torch.from_numpy(X)).numpy()
    ref, _ = run_onnx(path, "cond", X)
    d = np.abs(y.astype(np.int16) - ref.astype(np.int16))
    assert d.max() <= 6 and (d > 1).mean() < 0.02, (d.max(), (d > 1).mean())
    # and the positions are float32 in the graph itself (a grid in [-1, 1] may be rounded once, last, for an fp16
    # GridSample: 1/2048 of the frame)
    m = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    types = {v.name: v.type.tensor_type.elem_type for v in m.graph.value_info}
    made_by = {o: n for n in m.graph.node for o in n.output}
    for n in m.graph.node:
        if n.op_type in ("Floor", "GridSample"):
            x = n.input[0 if n.op_type == "Floor" else 1]
            if n.op_type == "GridSample" and made_by[x].op_type == "Cast":
                x = made_by[x].input[0]
            assert types.get(x, TensorProto.FLOAT) == TensorProto.FLOAT, (n.op_type, x)


def test_the_render_device_is_named_as_its_tensors_name_it(monkeypatch):
    # torch.device("cuda") != a CUDA tensor's device (cuda:0): the interpreter compares devices to decide what to move
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    assert render_device(torch.device("cuda")) == torch.device("cuda", 0)
    assert render_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    assert render_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("variant", ["W+layers", "F"])
def test_graphs_keep_device_arithmetic_on_the_device(tmp_path, variant):
    # op by op, as CUDA checks it (the meta device's kernels do not all check): no CPU tensor beside device tensors
    paths = [_avatar(tmp_path, variant)] + ([ROOT / "avatars" / "default" / "avatar.onnx"] if variant == "W+layers" else [])
    for path in paths:
        g = OnnxTorch(str(path), torch.device("meta"), half_as_float=False)
        with OneDevice(torch.device("meta")):
            assert g.run(torch.zeros(2, 60, device="meta")).shape[0] == 2


def test_fp16_yuv420p_graph_matches_onnxruntime_bytes(tmp_path):
    path = _avatar(tmp_path, "F", ExportFormat("yuv420p", "fp16"))
    y = load(str(path)).run(torch.from_numpy(X)).numpy()  # the CPU computes an fp16 graph in float32
    ref, _ = run_onnx(path, "cond", X)
    assert y.dtype == np.uint8 and y.shape == ref.shape
    diff = np.abs(y.astype(np.int16) - ref.astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.03


def test_fp16_graph_with_colour_layers_runs_in_onnxruntime_and_pytorch(tmp_path):
    """Variant W's colour layers are scatter-added into the frame; onnxruntime's CPU provider has no fp16
    ScatterElements with reduction "add", so the fp16 export keeps that step in float32 (the export's own parity
    check runs the graph in onnxruntime-node)."""
    path = _avatar(tmp_path, "W+layers", ExportFormat("rgb", "fp16"))
    y = load(str(path)).run(torch.from_numpy(X)).numpy()
    ref, _ = run_onnx(path, "cond", X)
    assert y.shape == ref.shape and np.abs(y - ref).max() < 0.02
    nodes = onnx.load(str(path)).graph.node
    scatter = next(n for n in nodes if n.op_type == "ScatterElements")
    producers = {o: n for n in nodes for o in n.output}
    assert producers[scatter.input[2]].op_type == "Cast"  # the layers' change of colour, widened to float32


def test_unknown_operators_are_refused_by_name(tmp_path):
    x = helper.make_tensor_value_info("cond", TensorProto.FLOAT, ["batch", 60])
    y = helper.make_tensor_value_info("rgb", TensorProto.FLOAT, ["batch", 60])
    g = helper.make_graph([helper.make_node("Tanh", ["cond"], ["rgb"]), ], "g", [x], [y])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "m.onnx"))
    with pytest.raises(OnnxTorchError, match="not supported by the PyTorch renderer: Tanh"):
        load(str(tmp_path / "m.onnx"))


def _process(path, *extra):
    return subprocess.Popen([sys.executable, "-m", "train.render_process", "--model", str(path), *extra], cwd=str(ROOT),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _read(p):
    kind, n = struct.unpack("<II", p.stdout.read(8))
    return kind, p.stdout.read(n)


def test_render_process_protocol(tmp_path):
    path = _avatar(tmp_path, "F")
    p = _process(path, "--device", "cpu")
    try:
        kind, payload = _read(p)
        ready = json.loads(payload)
        assert kind == 1 and ready["type"] == "ready" and ready["device"] == "cpu"
        assert ready["inputs"][0]["name"] == "cond" and ready["outputs"][0]["name"] == "rgb"
        p.stdin.write(struct.pack("<II", 1, 3) + X.tobytes())
        p.stdin.flush()
        kind, payload = _read(p)
        assert kind == 2
        ms, code, ndim = struct.unpack("<dII", payload[:16])
        dims = struct.unpack(f"<{ndim}I", payload[16:16 + 4 * ndim])
        y = np.frombuffer(payload[16 + 4 * ndim:], dtype="<f4").reshape(dims)
        assert code == 0 and ms > 0 and dims == (3, 3, 32, 32)
        ref, _ = run_onnx(path, "cond", X)
        assert np.abs(y - ref).max() < 1e-4
        p.stdin.write(struct.pack("<II", 9, 1))  # a malformed request ends the process with a reason
        p.stdin.flush()
        kind, payload = _read(p)
        assert kind == 1 and "malformed request" in json.loads(payload)["message"]
        assert p.wait(timeout=30) == 2
    finally:
        p.kill()
        p.wait()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answer of a host without CUDA")
def test_render_process_without_cuda_says_why(tmp_path):
    path = _avatar(tmp_path, "F")
    p = _process(path)  # --device cuda by default
    try:
        kind, payload = _read(p)
        msg = json.loads(payload)
        assert kind == 1 and msg["type"] == "error" and "sees no CUDA device" in msg["message"]
        assert p.wait(timeout=30) == 2
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("variant,fmt", [("F", ExportFormat()), ("W", ExportFormat()), ("W", ExportFormat("yuv420p", "fp32")),
                                         ("W+layers", ExportFormat()),
                                         ("F", ExportFormat("yuv420p", "fp16"))])
def test_graphs_read_nothing_back_from_the_device(tmp_path, variant, fmt):
    # What a CUDA graph capture needs, checked without a GPU: on PyTorch's meta device (no data) any value read
    # back from the device (.item(), .tolist()) raises, and copies of run-time CPU values to it are counted.
    # On the H200 the first version read Resize's scales back and every graph ran eagerly (29 Nov 2026).
    path = _avatar(tmp_path, variant, fmt)
    g = OnnxTorch(str(path), torch.device("meta"), half_as_float=False)
    y = g.run(torch.zeros(2, 60, device="meta"))
    assert y.device.type == "meta" and y.shape[0] == 2
    assert g.device_copies == 0
