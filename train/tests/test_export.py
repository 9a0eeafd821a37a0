import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from train import export as export_mod
from train.checkpoint import load_checkpoint
from train.export import export_avatar, untrained_conditioning
from train.model import ExportModel, PortraitModel
from train.onnx_check import ParityError, run_onnx

from .conftest import tiny_model_config

ROOT = Path(__file__).resolve().parents[2]


def _tiny_export(tmp_path):
    torch.manual_seed(1)
    m = PortraitModel(tiny_model_config("F", n_latents=5)).eval()
    torch.nn.init.normal_(m.latents.weight)
    c = untrained_conditioning()
    man = export_avatar(m, m.mean_latent(), tmp_path, "tiny", 25, c["mean"], c["std"], c["neutral"], {"provenance": "test"})
    return m, man


def test_export_matches_pytorch_in_onnxruntime(tmp_path):
    m, man = _tiny_export(tmp_path)
    assert man["training"]["parityMaxAbsDiff"] < 1e-4
    assert man["model"]["outputs"][0]["shape"] == ["batch", 3, 32, 32]
    x = np.random.default_rng(0).normal(size=(5, 60)).astype(np.float32)  # another batch size: dynamic
    y, name = run_onnx(tmp_path / "avatar.onnx", "cond", x)
    with torch.no_grad():
        ref = ExportModel(m, m.mean_latent())(torch.from_numpy(x)).numpy()
    assert name == "rgb" and y.shape == (5, 3, 32, 32)
    assert np.abs(y - ref).max() < 1e-4
    import onnx
    model = onnx.load(str(tmp_path / "avatar.onnx"))
    assert model.opset_import[0].version == 17
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_export_is_refused_when_parity_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(export_mod, "PARITY_TOLERANCE", 0.0)  # nothing can pass: the refusal path must trigger
    with pytest.raises(ParityError, match="differ by"):
        _tiny_export(tmp_path)
    assert not (tmp_path / "avatar.onnx").exists() and not (tmp_path / "avatar.onnx.tmp").exists()
    assert not (tmp_path / "avatar.json").exists()


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=str(ROOT), capture_output=True, text=True, timeout=300)


def test_untrained_export_cli(tmp_path):
    r = _cli("export", "--untrained", "--preset", "cpu", "--size", "256", "--fps", "25", "--name", "U", "--out", str(tmp_path), "--seed", "0")
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "avatar.json").read_text())
    assert man["training"]["provenance"] == "untrained"
    assert man["neutral"]["pose"][5] == -27.0 and man["conditioning"]["mean"][5] == -27.0
    a = np.zeros((2, 60), np.float32)
    a[1, 8:] = 1.0  # expression changed (normalised units)
    y, _ = run_onnx(tmp_path / "avatar.onnx", "cond", a)
    assert y.shape == (2, 3, 256, 256) and 0 <= y.min() and y.max() <= 1
    assert np.abs(y[0] - y[1]).mean() > 0.01  # the input visibly matters
    assert y[0].std() > 0.03  # not a flat image
    # smooth, not white noise: neighbouring pixels are close
    assert np.abs(np.diff(y[0], axis=2)).mean() < 0.01


def test_train_cli_resume_and_export(synth_dataset, tmp_path):
    out = tmp_path / "avatar"
    common = ["--data", str(synth_dataset), "--out", str(out), "--size", "64", "--eval-every", "2", "--checkpoint-every", "2",
              "--no-progress", "--name", "Synthetic"]
    r = _cli("train", *common, "--iterations", "2", "--variant", "E")
    assert r.returncode == 0, r.stderr
    assert "test PSNR" in r.stderr
    assert load_checkpoint(out / "checkpoint.pt")["iteration"] == 2
    r = _cli("train", *common, "--iterations", "3")
    assert r.returncode != 0 and "pass --resume" in r.stderr
    r = _cli("train", *common, "--iterations", "3", "--resume", "--variant", "F")
    assert r.returncode != 0 and "does not match the checkpoint's E" in r.stderr
    r = _cli("train", *common, "--iterations", "4", "--resume")
    assert r.returncode == 0, r.stderr
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck["iteration"] == 4 and ck["model_config"]["variant"] == "E"
    man = json.loads((out / "avatar.json").read_text())
    assert man["name"] == "Synthetic" and man["width"] == 64
    assert man["training"]["provenance"] == "trained" and man["training"]["iterations"] == 4
    assert man["training"]["dataset"]["manifestSha256"] == ck["dataset"]["manifestSha256"]
    assert man["training"]["heldOutPsnrDb"] > 0
    r = _cli("export", "--checkpoint", str(out / "checkpoint.pt"), "--out", str(tmp_path / "again"), "--fps", "30")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "again" / "avatar.json").read_text())["fps"] == 30
    neutral = {"pose": [0, 0, 0, 0, -1.8, -26], "gaze": [0, 0], "blendshapes": [0] * 52}
    (tmp_path / "neutral.json").write_text(json.dumps(neutral))
    r = _cli("export", "--checkpoint", str(out / "checkpoint.pt"), "--out", str(tmp_path / "n"), "--neutral",
             str(tmp_path / "neutral.json"))
    assert r.returncode == 0, r.stderr
    man = json.loads((tmp_path / "n" / "avatar.json").read_text())
    assert man["neutral"] == {k: [float(x) for x in v] for k, v in neutral.items()}
    assert "--neutral" in man["training"]["neutralFrom"]
    (tmp_path / "bad.json").write_text(json.dumps(dict(neutral, gaze=[0])))
    r = _cli("export", "--checkpoint", str(out / "checkpoint.pt"), "--out", str(tmp_path / "b"), "--neutral",
             str(tmp_path / "bad.json"))
    assert r.returncode == 1 and "gaze must be a list of 2 finite numbers" in r.stderr


def test_train_cli_reports_a_bad_dataset(tmp_path):
    r = _cli("train", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--iterations", "1")
    assert r.returncode == 1 and "dataset.json: not found" in r.stderr
