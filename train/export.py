"""ONNX avatar export: avatar.onnx (opset 17, input "cond" [batch, 60], output "rgb" [batch, 3, H, W] in [0, 1])
plus avatar.json (shared/src/avatar-manifest.ts). The file is run in onnxruntime-node and compared with PyTorch
before it is written; the export is refused if they differ by 1e-4 or more."""
from __future__ import annotations

import io
import json
import os
import platform
import warnings
from contextlib import redirect_stdout, redirect_stderr
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np
import torch

from . import __version__
from .config import BLENDSHAPE_COUNT, COND_SIZE, ModelConfig
from .build import AnyModel, export_module, model_flops
from .model import parameter_count
from .onnx_check import ParityError, run_onnx

OPSET = 17
PARITY_TOLERANCE = 1e-4
MODEL_FILE = "avatar.onnx"
MANIFEST_FILE = "avatar.json"


def untrained_conditioning() -> Dict[str, Any]:
    """Normalisation and neutral face of an untrained avatar: mean 0 except tz (a face ~27 cm in front of the
    camera); std in the physical scale of each value (pose.ts units: rad, cm; blendshapes in [0, 1])."""
    mean = [0.0] * COND_SIZE
    mean[5] = -27.0
    std = [0.25, 0.25, 0.25, 2.0, 2.0, 3.0, 0.25, 0.25] + [0.5] * BLENDSHAPE_COUNT
    neutral = {"pose": [0.0, 0.0, 0.0, 0.0, 0.0, -27.0], "gaze": [0.0, 0.0], "blendshapes": [0.0] * BLENDSHAPE_COUNT}
    return {"mean": mean, "std": std, "neutral": neutral}


def build_manifest(cfg: ModelConfig, name: str, fps: float, mean: Sequence[float], std: Sequence[float],
                   neutral: Dict[str, Sequence[float]], training: Dict[str, Any]) -> Dict[str, Any]:
    if not name.strip():
        raise ValueError("avatar name must not be empty")
    if not (1 <= fps <= 120):
        raise ValueError(f"fps must be in 1..120 (got {fps})")
    if len(mean) != COND_SIZE or len(std) != COND_SIZE:
        raise ValueError("conditioning mean/std must have 60 values")
    if not all(float(s) > 0 for s in std):
        raise ValueError("conditioning std must be > 0")
    return {
        "format": "dnp-avatar",
        "version": 1,
        "name": name,
        "width": cfg.size,
        "height": cfg.size,
        "fps": fps,
        "driving": "expression",
        "model": {
            "file": MODEL_FILE,
            "opset": OPSET,
            "inputs": [{"name": "cond", "dtype": "float32", "shape": ["batch", COND_SIZE]}],
            "outputs": [{"name": "rgb", "dtype": "float32", "shape": ["batch", 3, cfg.size, cfg.size]}],
        },
        "conditioning": {
            "layout": [{"name": "pose", "size": 6}, {"name": "gaze", "size": 2}, {"name": "blendshapes", "size": 52}],
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
        },
        "neutral": {k: [float(v) for v in neutral[k]] for k in ("pose", "gaze", "blendshapes")},
        "training": training,
    }


def model_facts(model: AnyModel) -> Dict[str, Any]:
    flops = model_flops(model.cfg)
    return {"flopsPerFrame": flops["total"], "flopsBreakdown": flops, "parameters": parameter_count(model),
            "model": model.cfg.to_dict()}


def versions() -> Dict[str, str]:
    return {"dnp-train": __version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}


def export_onnx(model: AnyModel, latent: Optional[torch.Tensor], path: Path, seed: int = 0,
                check: bool = True) -> Dict[str, float]:
    """Writes the inference graph to `path` after checking it in onnxruntime-node. Returns parity facts."""
    model = model.float().cpu().eval()
    wrapper = export_module(model, None if latent is None else latent.detach().float().cpu()).eval()
    tmp = path.with_name(path.name + ".tmp")
    example = torch.zeros(1, COND_SIZE)
    sink = io.StringIO()
    with warnings.catch_warnings(), redirect_stdout(sink), redirect_stderr(sink):
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (example,), str(tmp), opset_version=OPSET, input_names=["cond"],
                          output_names=["rgb"], dynamic_axes={"cond": {0: "batch"}, "rgb": {0: "batch"}},
                          do_constant_folding=True)
    facts: Dict[str, float] = {}
    try:
        if check:
            g = torch.Generator().manual_seed(seed + 12345)
            x = torch.randn(3, COND_SIZE, generator=g) * 1.5
            with torch.no_grad():
                ref = wrapper(x).numpy()
            y, out_name = run_onnx(tmp, "cond", x.numpy())
            if out_name != "rgb":
                raise ParityError(f"exported output is named {out_name!r}, expected 'rgb'")
            if y.shape != ref.shape:
                raise ParityError(f"onnxruntime output shape {list(y.shape)} != PyTorch {list(ref.shape)}")
            diff = float(np.abs(y - ref).max())
            if not diff < PARITY_TOLERANCE:
                raise ParityError(f"onnxruntime and PyTorch differ by {diff:.3g} (tolerance {PARITY_TOLERANCE}); not written")
            if float(y.min()) < 0 or float(y.max()) > 1:
                raise ParityError("exported model produced values outside [0, 1]")
            facts = {"parityMaxAbsDiff": diff, "parityBatch": 3}
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return facts


def write_json(path: Path, data: Dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def export_avatar(model: AnyModel, latent: Optional[torch.Tensor], out_dir: Path, name: str, fps: float,
                  mean: Sequence[float], std: Sequence[float], neutral: Dict[str, Sequence[float]],
                  training: Dict[str, Any], seed: int = 0, check: bool = True) -> Dict[str, Any]:
    """Writes out_dir/avatar.onnx and out_dir/avatar.json; returns the manifest."""
    out_dir.mkdir(parents=True, exist_ok=True)
    info = dict(training)
    info.update(model_facts(model))
    info["versions"] = versions()
    manifest = build_manifest(model.cfg, name, fps, mean, std, neutral, info)  # validate before the slow part
    facts = export_onnx(model, latent, out_dir / MODEL_FILE, seed=seed, check=check)
    manifest["training"].update(facts)
    write_json(out_dir / MANIFEST_FILE, manifest)
    return manifest
