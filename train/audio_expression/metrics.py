"""Lip-sync scores: Pearson r of predicted and tracked values and the lag of the cross-correlation peak."""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from .config import HOP_MS, OUTPUT_NAMES


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    d = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / d) if d > 0 else 0.0


def lag_curve(a: np.ndarray, b: np.ndarray, mask_a: np.ndarray, mask_b: np.ndarray, max_lag: int,
              min_count: int) -> np.ndarray:
    """r(a[t], b[t + k]) for k = -max_lag .. max_lag over the t where mask_a[t] and mask_b[t + k]; NaN where fewer
    than min_count frames pair up."""
    n = len(a)
    out = np.full(2 * max_lag + 1, np.nan)
    for i, k in enumerate(range(-max_lag, max_lag + 1)):
        t = np.arange(max(0, -k), min(n, n - k))
        m = mask_a[t] & mask_b[t + k] if len(t) else np.zeros(0, bool)
        if m.sum() >= min_count:
            out[i] = pearson(a[t][m], b[t + k][m])
    return out


def peak_lag(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray, max_lag: int) -> int:
    """The shift k (in frames) maximising r(pred[t + k], ref[t]) over |k| <= max_lag; k > 0: the prediction is late."""
    curve = lag_curve(ref, pred, mask, mask, max_lag, min_count=10)
    return int(np.nanargmax(curve)) - max_lag if np.isfinite(curve).any() else 0


def score(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray, names: Sequence[str] = OUTPUT_NAMES,
          max_lag_ms: float = 200.0) -> Dict[str, Dict[str, float]]:
    """Per output on the 10 ms grid: r, lag of the peak in ms, and the r at that peak."""
    out: Dict[str, Dict[str, float]] = {}
    max_lag = int(round(max_lag_ms / HOP_MS))
    for i, name in enumerate(names):
        p, y = pred[:, i], ref[:, i]
        k = peak_lag(p, y, mask, max_lag)
        out[name] = {"r": pearson(p[mask], y[mask]), "lagMs": k * HOP_MS, "stdTracked": float(y[mask].std())}
    return out
