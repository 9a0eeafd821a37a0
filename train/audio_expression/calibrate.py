"""Per-avatar calibration: maps the generic model's output onto one avatar's own blendshape ranges by quantile
matching. The model's output quantiles (over its training speakers, in model.json "outputQuantiles") and the
avatar's (over its dataset's tracked frames, written here to AVATAR/audio-calibration.json) at the same levels
form a monotone piecewise-linear map per blendshape (server/src/audio/expression-calibration.ts applies it)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Sequence

import numpy as np

from .config import BLENDSHAPE_NAMES, OUTPUT_NAMES
from .data import read_dataset

LEVELS = tuple(float(x) for x in np.linspace(0.0, 1.0, 21))
CALIBRATION_FILE = "audio-calibration.json"
FORMAT = "dnp-audio-calibration"


def quantiles(values: np.ndarray, names: Sequence[str] = OUTPUT_NAMES) -> Dict[str, Any]:
    """{"levels": [...], "values": {name: [...]}} of values [N, len(names)], non-decreasing per name."""
    q = np.quantile(values, LEVELS, axis=0)  # [L, K]
    q = np.maximum.accumulate(q, axis=0)
    return {"levels": list(LEVELS), "values": {n: [round(float(v), 6) for v in q[:, i]] for i, n in enumerate(names)}}


def avatar_calibration(dataset: Path) -> Dict[str, Any]:
    """The calibration document of the avatar trained on `dataset` (its valid tracked frames)."""
    _, bs, valid = read_dataset(dataset)
    if valid.sum() < 20:
        raise ValueError(f"{dataset}: fewer than 20 usable frames")
    idx = [BLENDSHAPE_NAMES.index(n) for n in OUTPUT_NAMES]
    meta = json.loads((dataset / "dataset.json").read_text())
    src = meta.get("source", {})
    return {"format": FORMAT, "version": 1, "dataset": {"file": src.get("file"), "sha256": src.get("sha256"),
                                                       "frames": int(valid.sum())},
            **quantiles(bs[valid][:, idx])}


def write_avatar_calibration(dataset: Path, avatar: Path) -> Path:
    if not (avatar / "avatar.json").exists():
        raise FileNotFoundError(f"{avatar}: not an avatar folder (no avatar.json)")
    out = avatar / CALIBRATION_FILE
    out.write_text(json.dumps(avatar_calibration(dataset), indent=1) + "\n")
    return out
