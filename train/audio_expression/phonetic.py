"""The phonetic prior: mouth blendshapes read off the phone posteriors through fixed tables of how each phone
shapes the mouth (articulatory phonetics, written down before any clip was scored), smoothed over the model's
window. It has no trained weights, so it cannot memorise the few speakers we have; scored leave-one-speaker-out
on the training speakers it beat the trained network for jawOpen, mouthFunnel, mouthPucker, mouthStretch and
mouthSmile (docs/audio-driven.md), so the exported model takes those outputs from it
(`WithPhoneticPrior`) and the rest from the network.

Tables: 0 = the phone does not use the shape, 1 = the most it does. Jaw opening by vowel height (open vowels
AA AE AO AW AY near 1, close vowels IY UW low) and consonant place (bilabials B P M closed); lip rounding
(funnel, pucker) for UW W OW UH OY AO R and the post-alveolars SH ZH CH JH; lip spreading (stretch, smile) for
the front vowels IY EY IH EH AE and S Z; lip closure for B P M (and partly F V).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

from .config import OUTPUT_NAMES

if TYPE_CHECKING:
    from .data import Clip

# The 42 phone columns of the feature frames (server/src/audio/speech-features/phone-posteriors.ts EN_US_PHONES),
# starting at column PHONE_COLUMN.
PHONES: Tuple[str, ...] = (
    "+NSN+", "+SPN+", "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH",
    "IH", "IY", "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "SIL", "T", "TH", "UH", "UW", "V",
    "W", "Y", "Z", "ZH",
)
PHONE_COLUMN = 39

PHONE_JAW: Dict[str, float] = {
    "AA": 1.0, "AE": 0.9, "AH": 0.7, "AO": 0.85, "AW": 0.9, "AY": 0.9, "EH": 0.6, "ER": 0.4, "EY": 0.5,
    "IH": 0.35, "IY": 0.25, "OW": 0.6, "OY": 0.7, "UH": 0.35, "UW": 0.25,
    "B": 0.0, "P": 0.0, "M": 0.0, "F": 0.1, "V": 0.1, "W": 0.15, "R": 0.25, "L": 0.3, "Y": 0.2, "HH": 0.5,
    "TH": 0.2, "DH": 0.2, "S": 0.1, "Z": 0.1, "SH": 0.15, "ZH": 0.15, "CH": 0.15, "JH": 0.15,
    "T": 0.2, "D": 0.2, "N": 0.2, "K": 0.3, "G": 0.3, "NG": 0.3, "SIL": 0.0, "+NSN+": 0.0, "+SPN+": 0.0,
}
_ROUND = {"UW": 1.0, "W": 1.0, "OW": 0.8, "UH": 0.6, "OY": 0.6, "AO": 0.5, "R": 0.4, "SH": 0.5, "ZH": 0.5,
          "CH": 0.5, "JH": 0.5, "ER": 0.3}
_SPREAD = {"IY": 1.0, "IH": 0.6, "EY": 0.7, "EH": 0.5, "AE": 0.4, "S": 0.3, "Z": 0.3}
_CLOSE = {"B": 1.0, "P": 1.0, "M": 1.0, "F": 0.3, "V": 0.3}
PHONE_TABLES: Dict[str, Dict[str, float]] = {
    "jawOpen": PHONE_JAW, "mouthClose": _CLOSE, "mouthFunnel": _ROUND, "mouthPucker": _ROUND,
    "mouthStretchLeft": _SPREAD, "mouthStretchRight": _SPREAD, "mouthSmileLeft": _SPREAD, "mouthSmileRight": _SPREAD,
}
# The outputs the exported model takes from the prior (leave-one-speaker-out, docs/audio-driven.md): mouthClose's
# table did no better than the network there (both r ≈ 0), so the network keeps it.
PRIOR_OUTPUTS: Tuple[str, ...] = ("jawOpen", "mouthFunnel", "mouthPucker", "mouthStretchLeft", "mouthStretchRight",
                                  "mouthSmileLeft", "mouthSmileRight")
SIGMA_FRAMES = 5.0  # Gaussian smoothing over the window, in 10 ms frames, centred on the predicted frame


def table_matrix(names: Sequence[str] = OUTPUT_NAMES) -> np.ndarray:
    """[42, K]: each output's weight per phone (zero columns for outputs without a table)."""
    m = np.zeros((len(PHONES), len(names)), np.float32)
    for k, name in enumerate(names):
        for p, v in PHONE_TABLES.get(name, {}).items():
            m[PHONES.index(p), k] = v
    return m


def kernel(past: int, lookahead: int, sigma: float = SIGMA_FRAMES) -> np.ndarray:
    """Weights over the window's frames (past ... predicted ... look-ahead), summing to 1."""
    k = np.arange(-past, lookahead + 1, dtype=np.float64)
    w = np.exp(-0.5 * (k / sigma) ** 2)
    return (w / w.sum()).astype(np.float32)


class PhoneticPrior(nn.Module):
    """Feature windows [B, W, D] → blendshape values [B, K]: the tables' values v (>= 0, 0 in silence) mapped by
    rest + slope × v, so that silence gives the mouth at rest and the average frame the average mouth of the
    training speakers (`fit`). The map is linear and never clips at the bottom, so quiet frames keep their order."""

    def __init__(self, past: int, lookahead: int, feature_dim: int):
        super().__init__()
        if feature_dim < PHONE_COLUMN + len(PHONES):
            raise ValueError(f"the phonetic prior needs the {len(PHONES)} phone columns from column {PHONE_COLUMN} "
                             f"(feature width {feature_dim})")
        self.past, self.lookahead = past, lookahead
        self.register_buffer("table", torch.from_numpy(table_matrix()))
        self.register_buffer("kernel", torch.from_numpy(kernel(past, lookahead)))
        self.register_buffer("rest", torch.zeros(len(OUTPUT_NAMES)))
        self.register_buffer("slope", torch.ones(len(OUTPUT_NAMES)))

    def raw(self, windows: torch.Tensor) -> torch.Tensor:
        post = windows[:, :, PHONE_COLUMN:PHONE_COLUMN + len(PHONES)]
        return torch.einsum("w,bwk->bk", self.kernel, post @ self.table)

    def fit(self, clips: Sequence["Clip"], pad: np.ndarray) -> "PhoneticPrior":
        """The map from the training speakers' clips (clean audio, tracked targets), windowed as the live loader
        windows them (padded with `pad`, the network's pad frame): rest = the mean over speakers of each one's
        mouth at rest (data.rest_pose); the mean table value over all frames maps to the mean over speakers of
        their mean targets (never a falling map: an output whose mean is at rest stays at rest)."""
        from .data import rest_pose, streaming_windows
        if not clips:
            raise ValueError("the phonetic prior needs training clips")
        with torch.no_grad():
            vals = torch.cat([self.raw(torch.from_numpy(streaming_windows(c.features, pad, self.past, self.lookahead)))
                              for c in clips])
        rest = np.mean([rest_pose(c.targets, c.mask) for c in clips], axis=0)
        mean = np.mean([c.targets[c.mask].mean(axis=0) for c in clips], axis=0)
        v = vals.mean(dim=0).numpy()
        self.rest.copy_(torch.from_numpy(rest.astype(np.float32)))
        self.slope.copy_(torch.from_numpy(np.where(v > 1e-6, np.maximum(mean - rest, 0.0) / np.maximum(v, 1e-6), 0.0).astype(np.float32)))
        return self

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return (self.rest + self.slope * self.raw(windows)).clamp(0.0, 1.0)


class WithPhoneticPrior(nn.Module):
    """A trained network (or ensemble) whose outputs in PRIOR_OUTPUTS are replaced by the phonetic prior's; the
    exported graph is this module."""

    def __init__(self, net: nn.Module, prior: PhoneticPrior, outputs: Sequence[str] = PRIOR_OUTPUTS):
        super().__init__()
        unknown = [n for n in outputs if n not in PHONE_TABLES]
        if unknown or not outputs:
            raise ValueError(f"no phone table for {unknown}" if unknown else "no outputs given")
        self.net, self.prior = net, prior
        self.cfg = net.cfg
        self.prior_outputs = tuple(outputs)
        use = torch.zeros(len(OUTPUT_NAMES))
        for n in outputs:
            use[OUTPUT_NAMES.index(n)] = 1.0
        self.register_buffer("use_prior", use)

    @property
    def feature_mean(self) -> torch.Tensor:
        return self.net.feature_mean

    @property
    def feature_std(self) -> torch.Tensor:
        return self.net.feature_std

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.use_prior * self.prior(windows) + (1.0 - self.use_prior) * self.net(windows)
