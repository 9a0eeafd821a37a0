"""Audio/video offset of a training clip, found with speaker-independent cues, so that a clip whose sound and
picture are out of step teaches the mouth of the right moment (or, when nothing in the audio matches the mouth,
is left out).

Some source clips are out of sync by hundreds of milliseconds (measured in docs/audio-driven.md: lp-d20's mouth
moves 280 ms before its sound, vr-4's 560 ms after). A model trained on them learns a mouth that does not belong
to the sound. This is what SyncNet-style offset checks do for lip-reading datasets; here the cues need no
training:
- the phone posteriors weighted by how far each phone opens the jaw (phonetic.PHONE_JAW, from articulatory
  phonetics: open vowels near 1, close vowels low, bilabials 0; written down before any clip was scored),
- the loudness c0,
- the speech probability (1 - SIL - noise classes),
each smoothed over ±50 ms. The clip's tracked jawOpen is cross-correlated with each cue over ±MAX_LAG_MS; the
mean of the three correlation curves peaks at the clip's offset. A clip is shifted only when that peak is well
away from zero lag and clearly above the zero-lag value (a gross recording offset, not the mouth's natural lead
of a few tens of ms), and left out when even the peak is weak (its mouth does not follow its audio).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict

import numpy as np

from .config import HOP_MS
from . import metrics
from .phonetic import PHONE_COLUMN, PHONE_JAW, PHONES

SMOOTH_FRAMES = 5          # Gaussian sigma of the cues, in 10 ms frames
MAX_LAG_MS = 600.0         # offsets searched
SHIFT_MIN_MS = 100.0       # below this a peak is the mouth's natural lead or tracker noise: not shifted
SHIFT_MIN_GAIN = 0.1       # the peak must beat the zero-lag correlation by this much to shift
KEEP_MIN_R = 0.15          # a clip whose best mean correlation is below this is left out


@dataclass
class SyncResult:
    offset_ms: float       # the mouth moves this much after the sound (negative: before); applied to the labels
    peak_ms: float         # where the mean correlation peaks
    r_zero: float          # mean correlation of the cues at zero lag
    r_peak: float          # ... at the peak
    keep: bool

    def verdict(self) -> str:
        """What training does with the clip: 'left out', 'shift +X ms' or 'in sync'."""
        return "left out (its mouth does not follow its audio)" if not self.keep else \
            f"labels shifted {self.offset_ms:+.0f} ms" if self.offset_ms else "in sync"

    def describe(self) -> str:
        return (f"mouth vs sound cues r {self.r_zero:+.2f} at 0 ms, {self.r_peak:+.2f} at {self.peak_ms:+.0f} ms "
                f"(mouth after sound) → {self.verdict()}")

    def as_dict(self) -> Dict[str, object]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def _smooth(x: np.ndarray, sigma: int) -> np.ndarray:
    k = np.arange(-3 * sigma, 3 * sigma + 1)
    w = np.exp(-0.5 * (k / sigma) ** 2)
    w /= w.sum()
    return np.convolve(np.pad(x, (len(k) // 2, len(k) // 2), mode="edge"), w, mode="valid")


def cues(features: np.ndarray) -> np.ndarray:
    """[3, T]: the smoothed phonetic jaw opening, loudness c0 and speech probability of feature frames [T, >= 81]."""
    if features.ndim != 2 or features.shape[1] < PHONE_COLUMN + len(PHONES):
        raise ValueError(f"expected feature frames [T, >= {PHONE_COLUMN + len(PHONES)}], got {features.shape}")
    post = features[:, PHONE_COLUMN:PHONE_COLUMN + len(PHONES)].astype(np.float64)
    jaw = post @ np.array([PHONE_JAW[p] for p in PHONES])
    silence = post[:, [PHONES.index("SIL"), PHONES.index("+NSN+"), PHONES.index("+SPN+")]].sum(axis=1)
    rows = (jaw, features[:, 0].astype(np.float64), 1.0 - silence)
    return np.stack([_smooth(r, SMOOTH_FRAMES) for r in rows])


def lag_curve(cue: np.ndarray, jaw: np.ndarray, mask: np.ndarray, max_lag: int) -> np.ndarray:
    """r(cue[t], jaw[t + k]) for k = -max_lag .. max_lag (k > 0: the mouth moves after the sound); 0 where fewer
    than 50 tracked frames pair up."""
    return np.nan_to_num(metrics.lag_curve(cue, jaw, np.ones(len(cue), bool), mask, max_lag, min_count=50), nan=0.0)


def estimate(features: np.ndarray, jaw: np.ndarray, mask: np.ndarray) -> SyncResult:
    """The offset of one clip: features [T, D] on the 10 ms grid, its tracked jawOpen [T] on the same grid
    (unshifted), mask [T] where it was tracked."""
    if not (len(features) == len(jaw) == len(mask)):
        raise ValueError("features, jawOpen and mask must have one row per feature frame")
    max_lag = int(round(MAX_LAG_MS / HOP_MS))
    curve = np.mean([lag_curve(c, jaw, mask, max_lag) for c in cues(features)], axis=0)
    i = int(curve.argmax())
    peak_ms = (i - max_lag) * HOP_MS
    r_zero, r_peak = float(curve[max_lag]), float(curve[i])
    shift = abs(peak_ms) >= SHIFT_MIN_MS and r_peak - r_zero >= SHIFT_MIN_GAIN
    return SyncResult(peak_ms if shift else 0.0, peak_ms, r_zero, r_peak, r_peak >= KEEP_MIN_R)
