"""ONNX export (opset 17, like the avatars: input "features" [batch, window, featureDim] raw feature frames,
output "blendshapes" [batch, outputs] in [0, 1]) with a parity check in onnxruntime-node, plus the json sidecar
the TypeScript loader (server/src/audio/expression-model.ts) validates. Refused when the parity check fails."""
from __future__ import annotations

import io
import json
import os
import warnings
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch

from ..onnx_check import ParityError, run_onnx
from . import VERSION
from .config import HOP_MS, OUTPUT_NAMES
from .features import FEATURE_CENTRE_S
from .model import AudioExpressionNet, parameter_count

OPSET = 17
PARITY_TOLERANCE = 1e-4
MODEL_FILE = "model.onnx"
MANIFEST_FILE = "model.json"
PARITY_FILE = "parity.json"
FORMAT = "dnp-audio-expression"


def manifest(model: AudioExpressionNet, extractor: str, training: Dict[str, Any],
             output_quantiles: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    cfg = model.cfg
    doc = {
        "format": FORMAT,
        "version": 1,
        "modelVersion": VERSION,
        "model": {"file": MODEL_FILE, "opset": OPSET, "input": "features", "output": "blendshapes",
                  "parameters": parameter_count(model)},
        "features": {"extractor": extractor, "dim": cfg.feature_dim, "hopMs": HOP_MS,
                     "frameCentreMs": FEATURE_CENTRE_S * 1000.0},
        "window": cfg.window,
        "past": cfg.past,
        "lookahead": cfg.lookahead,
        "lookaheadMs": cfg.lookahead * HOP_MS,
        "padFeature": [float(v) for v in model.feature_mean.tolist()],
        "outputs": list(OUTPUT_NAMES),
        "config": cfg.to_dict(),
        "training": training,
    }
    if output_quantiles is not None:
        doc["outputQuantiles"] = output_quantiles  # of the model's predictions on its training speakers (calibrate.py)
    return doc


def export(model: AudioExpressionNet, out_dir: Path, extractor: str, training: Dict[str, Any],
           seed: int = 0, fixture: Optional[np.ndarray] = None,
           output_quantiles: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Writes model.onnx and model.json into out_dir; returns the manifest. `fixture` ([n, W, D]): windows
    for the parity check (default: random windows around the training feature statistics)."""
    model = model.float().cpu().eval()
    cfg = model.cfg
    out_dir.mkdir(parents=True, exist_ok=True)
    path, tmp = out_dir / MODEL_FILE, out_dir / (MODEL_FILE + ".tmp")
    example = torch.zeros(1, cfg.window, cfg.feature_dim)
    sink = io.StringIO()
    with warnings.catch_warnings(), redirect_stdout(sink), redirect_stderr(sink):
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), str(tmp), opset_version=OPSET, input_names=["features"],
                          output_names=["blendshapes"], dynamic_axes={"features": {0: "batch"}, "blendshapes": {0: "batch"}},
                          do_constant_folding=True)
    try:
        if fixture is None:
            g = np.random.default_rng(seed + 777)
            fixture = (model.feature_mean.numpy() + g.standard_normal((4, cfg.window, cfg.feature_dim))
                       * model.feature_std.numpy()).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(fixture)).numpy()
        y, name = run_onnx(tmp, "features", fixture)
        if name != "blendshapes" or y.shape != ref.shape:
            raise ParityError(f"exported output {name!r} {list(y.shape)} != PyTorch 'blendshapes' {list(ref.shape)}")
        diff = float(np.abs(y - ref).max())
        if not diff < PARITY_TOLERANCE:
            raise ParityError(f"onnxruntime and PyTorch differ by {diff:.3g} (tolerance {PARITY_TOLERANCE}); not written")
        man = manifest(model, extractor, {**training, "parityMaxAbsDiff": diff}, output_quantiles)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    (out_dir / MANIFEST_FILE).write_text(json.dumps(man, indent=1) + "\n")
    return man


def write_parity_fixture(model: AudioExpressionNet, features: np.ndarray, out_dir: Path) -> None:
    """parity.json: a run of feature frames and what PyTorch predicts for them streamed as a whole (padded as
    the live loader pads), for the TypeScript loader's test (test/audio-expression-model.test.ts)."""
    from .train import predict_clip
    f = np.ascontiguousarray(features, dtype=np.float32)
    y = predict_clip(model, f)
    doc = {"features": [[float(v) for v in row] for row in f], "outputs": [[float(v) for v in row] for row in y]}
    (out_dir / PARITY_FILE).write_text(json.dumps(doc) + "\n")


def save_checkpoint(model: AudioExpressionNet, path: Path, extra: Dict[str, Any]) -> None:
    torch.save({"config": model.cfg.to_dict(), "state": model.state_dict(), **extra}, str(path))


def load_checkpoint(path: Path) -> AudioExpressionNet:
    from .config import ModelConfig
    ck = torch.load(str(path), map_location="cpu")
    model = AudioExpressionNet(ModelConfig.from_dict(ck["config"]))
    model.load_state_dict(ck["state"])
    return model.eval()
