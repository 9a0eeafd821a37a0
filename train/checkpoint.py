"""Checkpoints: the full configuration, the dataset's identity, normalisation, weights, optimiser, iteration."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import torch

from .config import ModelConfig, TrainConfig
from .export import MANIFEST_FILE, export_avatar, write_json
from .build import AnyModel, build_model
from .model import PortraitModel

CHECKPOINT_FORMAT = "dnp-checkpoint"
CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, data: Dict[str, Any]) -> None:
    data = dict(data, format=CHECKPOINT_FORMAT, version=CHECKPOINT_VERSION)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(data, str(tmp))
    os.replace(tmp, path)


def load_checkpoint(path: Path, map_location: Any = "cpu") -> Dict[str, Any]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        # weights_only: no code execution from the file. torch 1.13's restricted unpickler cannot read floats, so
        # there (Debian's python3-torch) the checkpoint is unpickled in full: load only checkpoints you trust.
        legacy = int(torch.__version__.split(".")[0]) < 2
        ck = torch.load(str(path), map_location=map_location, weights_only=not legacy)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path}: not a readable checkpoint ({err})") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a dnp checkpoint")
    if ck.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: unsupported checkpoint version {ck.get('version')!r}")
    for k in ("model_config", "train_config", "dataset", "norm", "iteration", "model"):
        if k not in ck:
            raise ValueError(f"{path}: checkpoint lacks {k!r}")
    return ck


def model_from_checkpoint(ck: Dict[str, Any]) -> AnyModel:
    cfg = ModelConfig.from_dict(dict(ck["model_config"]))
    model = build_model(cfg)
    model.load_state_dict(ck["model"])
    return model.eval()


def read_neutral(path: Path) -> Dict[str, Any]:
    """A neutral face file: {"pose": [6], "gaze": [2], "blendshapes": [52]} (finite numbers; blendshapes in [0, 1])."""
    import json
    import math
    try:
        d = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable JSON file ({err})") from None
    if not isinstance(d, dict):
        raise ValueError(f"{path}: expected an object with pose, gaze and blendshapes")
    out: Dict[str, Any] = {}
    for k, n in (("pose", 6), ("gaze", 2), ("blendshapes", 52)):
        v = d.get(k)
        if not isinstance(v, list) or len(v) != n or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v):
            raise ValueError(f"{path}: {k} must be a list of {n} finite numbers")
        if k == "blendshapes" and not all(0 <= x <= 1 for x in v):
            raise ValueError(f"{path}: blendshapes must be in [0, 1]")
        out[k] = [float(x) for x in v]
    return out


def export_from_checkpoint(ck: Dict[str, Any], out_dir: Path, name: Optional[str] = None,
                           fps: Optional[float] = None, int8: bool = False,
                           neutral: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """`neutral` replaces the neutral face written to avatar.json (default: the training frames' median)."""
    model = model_from_checkpoint(ck).cpu().float()
    latent = model.mean_latent()
    tcfg = TrainConfig.from_dict(ck["train_config"])
    norm = dict(ck["norm"])
    if neutral is not None:
        norm["neutral"] = neutral
    ds = ck["dataset"]
    history = ck.get("history", [])
    last = history[-1] if history else {}
    training = {
        "provenance": "trained",
        "preset": ck.get("preset"),
        "variant": model.cfg.variant,
        "iterations": int(ck["iteration"]),
        "trainConfig": tcfg.to_dict(),
        "dataset": ds,
        "heldOutPsnrDb": last.get("psnr"),
        "heldOutFrames": last.get("frames"),
        "psnrSplit": last.get("split"),
        "latentCode": (f"mean of the {model.cfg.n_latents} training frames' latent codes (baked into the model)"
                       if latent is not None else None),
        "normalisation": "mean/std over the valid training frames (std floored per value group)",
        "neutralFrom": ("given at export (--neutral)" if neutral is not None
                        else "per-value median of the valid training frames' conditioning"),
        "trainingSeconds": ck.get("elapsed_s"),
        "device": ck.get("device"),
    }
    manifest = export_avatar(model, latent, Path(out_dir), name or ck.get("name") or "avatar",
                             fps or float(ck.get("fps", 25.0)), norm["mean"], norm["std"], norm["neutral"], training)
    if int8 and not isinstance(model, PortraitModel):
        sys.stderr.write("train: --int8 is implemented for variants A-F only; variant W stays fp32\n")
    elif int8:
        manifest["training"]["int8"] = _int8(ck, model, latent, Path(out_dir))
        write_json(Path(out_dir) / MANIFEST_FILE, manifest)
    return manifest


def _int8(ck: Dict[str, Any], model: PortraitModel, latent: Optional[torch.Tensor], out_dir: Path) -> Dict[str, Any]:
    """Int8 attempt, judged on the checkpoint's dataset: held-out frames (else training frames) vs fp32."""
    import numpy as np
    from .dataset import Dataset
    from .quantize import try_int8

    ds = Dataset(Path(ck["dataset"]["path"]))
    if ds.manifest_sha256 != ck["dataset"]["manifestSha256"]:
        raise ValueError(f"{ds.root}/dataset.json changed since training: cannot judge the int8 model")
    mean = np.asarray(ck["norm"]["mean"], np.float32)
    std = np.asarray(ck["norm"]["std"], np.float32)
    calib_idx = ds.train_idx[np.linspace(0, len(ds.train_idx) - 1, min(256, len(ds.train_idx))).round().astype(int)]
    src = ds.test_idx if len(ds.test_idx) else ds.train_idx
    eval_idx = src[np.unique(np.linspace(0, len(src) - 1, min(32, len(src))).round().astype(int))]
    calib = torch.from_numpy((ds.cond[calib_idx] - mean) / std)
    cond = ((ds.cond[eval_idx] - mean) / std).astype(np.float32)
    gt = ds.read_frames(eval_idx, model.cfg.size).astype(np.float32) / 255.0
    facts = try_int8(model, latent, out_dir, calib, cond, gt)
    facts["split"] = "test" if len(ds.test_idx) else "train"
    sys.stderr.write(f"train: int8 {'used' if facts.get('used') else 'not used'}: " + ", ".join(
        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in facts.items() if k != "scheme") + "\n")
    return facts
