"""Lip-sync scores: Pearson r of predicted and tracked values and the lag of the cross-correlation peak."""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from .config import HOP_MS, OUTPUT_NAMES


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    d = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / d) if d > 0 else 0.0


def peak_lag(pred: np.ndarray, ref: np.ndarray, mask: np.ndarray, max_lag: int) -> int:
    """The shift k (in frames) maximising r(pred[t + k], ref[t]) over |k| <= max_lag; k > 0: the prediction is late."""
    best, best_k = -2.0, 0
    n = len(pred)
    for k in range(-max_lag, max_lag + 1):
        t = np.arange(max(0, -k), min(n, n - k))
        m = mask[t] & mask[t + k] if len(t) else np.zeros(0, bool)
        if m.sum() < 10:
            continue
        r = pearson(pred[t + k][m], ref[t][m])
        if r > best:
            best, best_k = r, k
    return best_k


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
