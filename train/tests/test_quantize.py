import numpy as np
import torch

from train.export import export_onnx
from train.model import PortraitModel
from train.onnx_check import run_onnx
from train.quantize import decoder_ranges, quantize_decoder, try_int8

from .conftest import tiny_model_config


def _model():
    torch.manual_seed(2)
    m = PortraitModel(tiny_model_config("F", n_latents=4)).eval()
    return m


def test_int8_decoder_runs_in_onnxruntime_and_stays_close_to_fp32(tmp_path):
    m = _model()
    fp32 = tmp_path / "avatar.onnx"
    export_onnx(m, m.mean_latent(), fp32)
    calib = torch.randn(64, 60)
    quantize_decoder(fp32, tmp_path / "int8.onnx", m, decoder_ranges(m, m.mean_latent(), calib))
    import onnx
    ops = [n.op_type for n in onnx.load(str(tmp_path / "int8.onnx")).graph.node]
    assert ops.count("QuantizeLinear") == 5 and "DequantizeLinear" in ops  # 2 resizes x 2 + last ReLU
    x = np.random.default_rng(1).normal(size=(4, 60)).astype(np.float32)
    a, _ = run_onnx(fp32, "cond", x)
    b, _ = run_onnx(tmp_path / "int8.onnx", "cond", x)
    assert b.shape == a.shape and 0 <= b.min() and b.max() <= 1
    psnr = -10 * np.log10(((a - b) ** 2).mean())
    assert psnr > 35


def test_try_int8_reports_and_keeps_a_working_avatar_onnx(tmp_path):
    m = _model()
    export_onnx(m, m.mean_latent(), tmp_path / "avatar.onnx")
    cond = np.random.default_rng(2).normal(size=(6, 60)).astype(np.float32)
    gt, _ = run_onnx(tmp_path / "avatar.onnx", "cond", cond)
    facts = try_int8(m, m.mean_latent(), tmp_path, torch.randn(32, 60), cond, gt, runs=5)
    assert {"psnrCostDb", "msFp32", "msInt8", "used"} <= set(facts)
    assert (tmp_path / "avatar.fp32.onnx").exists() == facts["used"]
    y, _ = run_onnx(tmp_path / "avatar.onnx", "cond", cond)
    assert y.shape == (6, 3, 32, 32)
    assert not list(tmp_path.glob("*.tmp"))
