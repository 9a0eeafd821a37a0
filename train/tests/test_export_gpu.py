"""GPU-friendly exports: the yuv420p output (colour conversion in the graph) and the fp16 variant, each run in
onnxruntime-node and compared with the float32 model; the numpy reference formula against the server's own
TypeScript conversion (server/src/media/rgb-to-yuv.ts)."""
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from train import export as export_mod
from train.export import ExportFormat, export_avatar, untrained_conditioning
from train.model import ExportModel, PortraitModel
from train.onnx_check import ParityError, node_binary, run_onnx
from train.onnx_fp16 import precision_of
from train.onnx_yuv import rgb_to_yuv420p, yuv420p_bytes

from .conftest import tiny_model_config
from .test_export import ROOT, _cli


def _model():
    torch.manual_seed(1)
    m = PortraitModel(tiny_model_config("F", n_latents=5)).eval()
    torch.nn.init.normal_(m.latents.weight)
    return m


def _export(tmp_path, fmt):
    m = _model()
    c = untrained_conditioning()
    man = export_avatar(m, m.mean_latent(), tmp_path, "tiny", 25, c["mean"], c["std"], c["neutral"], {"provenance": "test"},
                        fmt=fmt)
    return m, man


def _reference(m, x):
    with torch.no_grad():
        return ExportModel(m, m.mean_latent())(torch.from_numpy(x)).numpy()


X = np.random.default_rng(3).normal(size=(4, 60)).astype(np.float32)


def test_yuv420p_export_matches_the_converted_rgb(tmp_path):
    m, man = _export(tmp_path, ExportFormat(output="yuv420p"))
    assert man["model"]["outputFormat"] == "yuv420p" and man["model"]["precision"] == "fp32"
    assert man["model"]["outputs"] == [{"name": "yuv420p", "dtype": "uint8", "shape": ["batch", yuv420p_bytes(32, 32)]}]
    assert man["training"]["parityMaxByteDiff"] <= 1 and man["training"]["parityByteMismatch"] < 1e-3
    y, name = run_onnx(tmp_path / "avatar.onnx", "cond", X)  # another batch size: dynamic
    assert name == "yuv420p" and y.dtype == np.uint8 and y.shape == (4, 32 * 32 * 3 // 2)
    expect = rgb_to_yuv420p(_reference(m, X))
    diff = np.abs(y.astype(int) - expect.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    assert 16 <= y.min() and y[:, :32 * 32].max() <= 235 and y.max() <= 240


def test_fp16_export_is_within_tolerance_of_fp32(tmp_path):
    m, man = _export(tmp_path, ExportFormat(precision="fp16"))
    assert man["model"]["precision"] == "fp16" and man["model"]["outputs"][0]["dtype"] == "float32"
    graph = onnx.load(str(tmp_path / "avatar.onnx"))
    assert precision_of(graph) == "fp16"
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # I/O unchanged
    assert graph.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    y, name = run_onnx(tmp_path / "avatar.onnx", "cond", X)  # runs on onnxruntime's CPU provider
    ref = _reference(m, X)
    assert name == "rgb" and y.shape == ref.shape
    assert 0 < np.abs(y - ref).max() < export_mod.FP16_TOLERANCE  # really fp16 (not bit-equal), and close


def test_fp16_yuv420p_export(tmp_path):
    _, man = _export(tmp_path, ExportFormat(output="yuv420p", precision="fp16"))
    assert man["model"]["outputFormat"] == "yuv420p" and man["training"]["parityMaxByteDiff"] <= 1


def test_fp16_export_is_refused_beyond_its_tolerance(tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "FP16_TOLERANCE", 1e-7)
    with pytest.raises(ParityError, match="fp16 onnxruntime and float32 PyTorch differ"):
        _export(tmp_path, ExportFormat(precision="fp16"))
    assert not (tmp_path / "avatar.onnx").exists() and not (tmp_path / "avatar.json").exists()


def test_export_format_is_validated():
    with pytest.raises(ValueError, match="output must be one of"):
        ExportFormat(output="nv12")
    with pytest.raises(ValueError, match="precision must be one of"):
        ExportFormat(precision="int4")


def test_numpy_formula_is_the_servers(tmp_path):
    """rgb_to_yuv420p (the parity reference) gives the bytes of rgbPlanarToYuv420p, run by Node on the same floats."""
    rgb = np.random.default_rng(5).uniform(-0.1, 1.1, size=(1, 3, 8, 6)).astype(np.float32)
    (tmp_path / "rgb.bin").write_bytes(rgb.tobytes())
    script = ("import { readFileSync } from 'node:fs';"
              "import { rgbPlanarToYuv420p, yuv420pBytes } from './server/src/media/rgb-to-yuv.ts';"
              f"const b = readFileSync({json.dumps(str(tmp_path / 'rgb.bin'))});"
              "const rgb = new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);"
              "process.stdout.write(JSON.stringify([...rgbPlanarToYuv420p(rgb, 6, 8, new Uint8Array(yuv420pBytes(6, 8)))]));")
    r = subprocess.run([node_binary(), "--import", "tsx", "--input-type=module", "-e", script], cwd=str(ROOT),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == rgb_to_yuv420p(rgb)[0].tolist()
    white = rgb_to_yuv420p(np.ones((1, 3, 2, 2)))[0].tolist()
    black = rgb_to_yuv420p(np.zeros((1, 3, 2, 2)))[0].tolist()
    assert white == [235] * 4 + [128, 128] and black == [16] * 4 + [128, 128]


def test_exporter_options_ask_for_the_single_file_exporter():
    # PyTorch 2.x's dynamo exporter (seen on a GPU host, torch 2.11) wrote opset 18 and a second weights file
    def torch2_export(model, args, f, *, opset_version=None, dynamo=True, **kw):
        pass

    def torch1_export(model, args, f, opset_version=None, **kw):
        pass

    assert export_mod.exporter_options(torch2_export) == {"dynamo": False}
    assert export_mod.exporter_options(torch1_export) == {}


def test_export_passes_the_exporter_options_and_writes_one_file(tmp_path, monkeypatch):
    seen = {}
    real = torch.onnx.export

    def export(*args, **kw):
        seen.update(kw)
        kw.pop("dynamo", None)  # this torch's exporter has no such argument
        return real(*args, **kw)

    monkeypatch.setattr(export_mod, "exporter_options", lambda fn=None: {"dynamo": False})
    monkeypatch.setattr(torch.onnx, "export", export)
    _export(tmp_path, ExportFormat("rgb", "fp32"))
    assert seen.get("dynamo") is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["avatar.json", "avatar.onnx"]


def test_parity_summary_names_each_format():
    assert export_mod.parity_summary({"parityMaxAbsDiff": 3e-6}) == "3.0e-06"
    assert export_mod.parity_summary({"parityMaxByteDiff": 1, "parityByteMismatch": 0.0269}) == "bytes within 1, 2.690% differ"
    assert export_mod.parity_summary({}) == "not checked"


def test_export_cli_yuv_fp16(tmp_path):
    r = _cli("export", "--untrained", "--preset", "cpu", "--size", "64", "--out", str(tmp_path), "--yuv", "--fp16")
    assert r.returncode == 0, r.stderr
    assert "yuv420p fp16" in r.stderr
    man = json.loads((tmp_path / "avatar.json").read_text())
    assert man["model"]["outputFormat"] == "yuv420p" and man["model"]["precision"] == "fp16"
    r = _cli("export", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path), "--int8", "--fp16")
    assert r.returncode == 1 and "cannot be combined" in r.stderr


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
