"""Names and sizes shared by the data loader, the model, training and export."""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Tuple


def _blendshape_names() -> Tuple[str, ...]:
    """The 52 names in MediaPipe / ARKit order, read from their one definition, shared/src/blendshapes.ts."""
    text = (Path(__file__).resolve().parents[2] / "shared" / "src" / "blendshapes.ts").read_text()
    block = re.search(r"BLENDSHAPE_NAMES = \[(.*?)\] as const", text, re.S)
    names = tuple(re.findall(r"'(\w+)'", block.group(1))) if block else ()
    if len(names) != 52:
        raise RuntimeError("could not read the 52 blendshape names from shared/src/blendshapes.ts")
    return names


BLENDSHAPE_NAMES: Tuple[str, ...] = _blendshape_names()

# What the model predicts: the jaw and the mouth (speech moves them; head, eyes and brows come from elsewhere).
OUTPUT_NAMES: Tuple[str, ...] = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
)
OUTPUT_INDEX: Tuple[int, ...] = tuple(BLENDSHAPE_NAMES.index(n) for n in OUTPUT_NAMES)
# Measured on held-out speakers (docs/audio-driven.md); weighted up in the loss.
KEY_OUTPUTS: Tuple[str, ...] = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker")

# Speakers of ../shared/data/talking/ never used for training or model selection; chosen before any training
# (08:20 UTC, 2026-11-29): one clip from each source repository.
HELD_OUT: Tuple[str, ...] = ("lp-d11", "vr-1")

HOP_MS = 10.0


@dataclass
class ModelConfig:
    feature_dim: int
    past: int = 8           # feature frames before the predicted one
    lookahead: int = 5      # feature frames after it (50 ms)
    channels: int = 32
    dilations: Tuple[int, ...] = (1, 2, 4)
    hidden: int = 32
    dropout: float = 0.2
    columns: Tuple[int, ...] = ()  # feature columns the network reads (empty: all)
    head: str = "center"           # flatten: linear over the whole window; center: only the predicted frame's column

    @property
    def inputs(self) -> int:
        return len(self.columns) or self.feature_dim

    @property
    def window(self) -> int:
        return self.past + 1 + self.lookahead

    def validate(self) -> "ModelConfig":
        if self.feature_dim < 1:
            raise ValueError("feature_dim must be >= 1")
        if self.past < 0 or self.lookahead < 0 or self.window < 3:
            raise ValueError("past and lookahead must be >= 0 and the window at least 3 frames")
        if self.channels < 1 or self.hidden < 1 or not self.dilations or min(self.dilations) < 1:
            raise ValueError("channels, hidden and dilations must be positive")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")
        if self.head not in ("flatten", "center"):
            raise ValueError("head must be flatten or center")
        if any(not 0 <= c < self.feature_dim for c in self.columns) or len(set(self.columns)) != len(self.columns):
            raise ValueError("columns must be distinct feature indices")
        return self

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["dilations"] = list(self.dilations)
        d["columns"] = list(self.columns)
        return d

    @staticmethod
    def from_dict(d: Dict[str, Any]) -> "ModelConfig":
        d = dict(d)
        d["dilations"] = tuple(int(x) for x in d["dilations"])
        d["columns"] = tuple(int(x) for x in d.get("columns", ()))
        d.setdefault("head", "flatten")
        return ModelConfig(**d).validate()


@dataclass
class TrainConfig:
    iterations: int = 1000
    batch: int = 32
    steps: int = 8                  # consecutive predictions per sample (for the velocity term)
    stride: int = 4                 # hops between them (40 ms, about one video frame)
    lr: float = 2e-3
    weight_decay: float = 1e-4
    velocity_weight: float = 0.5
    key_weight: float = 2.0
    normalise: str = "zscore"       # per-speaker target normalisation: none | center | zscore
    eval_every: int = 250
    seed: int = 0
    held_out: List[str] = field(default_factory=lambda: list(HELD_OUT))

    def validate(self) -> "TrainConfig":
        if self.iterations < 1 or self.batch < 1 or self.steps < 2 or self.stride < 1:
            raise ValueError("iterations, batch, stride must be >= 1 and steps >= 2")
        if self.normalise not in ("none", "center", "zscore"):
            raise ValueError("normalise must be none, center or zscore")
        if not self.lr > 0:
            raise ValueError("lr must be > 0")
        return self
