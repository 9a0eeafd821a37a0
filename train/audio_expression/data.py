"""Training clips: feature frames at 100 fps with the tracked blendshapes of `dnp prepare` resampled onto the
same 10 ms grid by timestamps: feature frame t stands for FEATURE_CENTRE_S + t × 10 ms (features.py), video
frame j for j / fps (audio.wav starts at frame 0)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .config import HOP_MS, OUTPUT_INDEX
from .features import FEATURE_CENTRE_S



@dataclass
class Clip:
    speaker: str
    variant: str
    features: np.ndarray      # [T, D] float32
    targets: np.ndarray       # [T, K] raw blendshape values on the feature grid
    mask: np.ndarray          # [T] bool: a tracked face on both sides


def read_dataset(dataset: Path) -> Tuple[float, np.ndarray, np.ndarray]:
    """(fps, blendshapes [N, 52], valid [N] bool) of a `dnp prepare` folder."""
    meta = json.loads((dataset / "dataset.json").read_text())
    fps = float(meta["fps"])
    bs = np.load(dataset / "blendshapes.npy").astype(np.float32)
    valid = np.load(dataset / "valid.npy").astype(bool)
    if bs.ndim != 2 or bs.shape[1] != 52 or valid.shape != (bs.shape[0],) or not (1 <= fps <= 120):
        raise ValueError(f"{dataset}: unexpected blendshapes {bs.shape} / valid {valid.shape} / fps {fps}")
    return fps, bs, valid


def targets_on_grid(bs: np.ndarray, valid: np.ndarray, fps: float, frames: int, speed: float = 1.0,
                    offset_s: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """Blendshapes (the model's outputs) at each feature frame's time, linearly interpolated between video
    frames; `speed` > 1 when the audio was played faster (its time t maps to t × speed in the video);
    `offset_s` > 0 when the clip's picture is late on its sound (sync.py): the label of audio time t is then
    the mouth at video time t + offset_s."""
    t = (np.arange(frames) * HOP_MS / 1000.0 + FEATURE_CENTRE_S) * speed + offset_s
    pos = t * fps
    j0 = np.clip(np.floor(pos).astype(int), 0, len(bs) - 1)
    j1 = np.clip(j0 + 1, 0, len(bs) - 1)
    w = np.clip(pos - j0, 0.0, 1.0)[:, None]
    sub = bs[:, OUTPUT_INDEX]
    y = (1 - w) * sub[j0] + w * sub[j1]
    mask = valid[j0] & valid[j1] & (pos >= 0) & (pos <= len(bs) - 1)
    return y.astype(np.float32), mask


def rest_pose(y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A speaker's mouth at rest: the mean outputs over the frames whose jawOpen is in its lowest 10 %."""
    jaw = y[mask, 0]
    low = mask & (y[:, 0] <= np.quantile(jaw, 0.1))
    return y[low].mean(axis=0)


def with_pause(y: np.ndarray, m: np.ndarray, pause_at: float, pause_s: float, frames: int,
               margin_s: float = 0.08) -> Tuple[np.ndarray, np.ndarray]:
    """Targets for audio with a pause inserted (augment.py): the clip's own targets shifted past the pause, the
    rest pose inside it; frames within `margin_s` of its edges are not scored (the mouth closes over a while)."""
    hop = HOP_MS / 1000.0
    n0 = len(y)
    at, d = pause_at * n0 * hop, pause_s
    t = np.arange(frames) * hop
    src = np.where(t < at, t, t - d)
    idx = np.clip(np.round(src / hop).astype(int), 0, n0 - 1)
    inside = (t >= at) & (t < at + d)
    out = y[idx].copy()
    out[inside] = rest_pose(y, m)
    mask = m[idx] & (src / hop <= n0 - 1)
    mask[inside] = True
    mask[(np.abs(t - at) < margin_s) | (np.abs(t - at - d) < margin_s)] = False
    return out, mask


def load_clips(dataset: Path, cache: Path, variants: Optional[Sequence[str]] = None, offset_s: float = 0.0
               ) -> List[Clip]:
    """The clips of one dataset: one per cached variant (cache/<variant>.npy + .json), or only `variants`;
    `offset_s`: the clip's audio/video offset (targets_on_grid)."""
    fps, bs, valid = read_dataset(dataset)
    out: List[Clip] = []
    for meta_path in sorted(cache.glob("*.json")):
        meta = json.loads(meta_path.read_text())
        if variants is not None and meta["name"] not in variants:
            continue
        f = np.load(cache / f"{meta['name']}.npy").astype(np.float32)
        if f.ndim != 2:
            raise ValueError(f"{cache}/{meta['name']}.npy: expected [T, D] features, got {f.shape}")
        if meta.get("pause_at") is not None:
            # the unpaused clip on the same grid (at this speed), then the pause spliced in
            n0 = len(f) - int(round(float(meta["pause_s"]) * 1000.0 / HOP_MS))
            y0, m0 = targets_on_grid(bs, valid, fps, n0, float(meta["speed"]), offset_s)
            y, m = with_pause(y0, m0, float(meta["pause_at"]), float(meta["pause_s"]), len(f))
        else:
            y, m = targets_on_grid(bs, valid, fps, len(f), float(meta["speed"]), offset_s)
        out.append(Clip(dataset.name, meta["name"], f, y, m))
    if variants is not None and len(out) != len(variants):
        raise FileNotFoundError(f"{cache}: missing variants (have {[c.variant for c in out]}, want {list(variants)})")
    return out


@dataclass
class TargetSpace:
    """Per-speaker normalisation of the targets. Training targets are (y − speaker_offset) / scale; the exported
    model outputs prediction × scale + output_mean."""
    mode: str
    speaker_offset: Dict[str, np.ndarray]
    speaker_scale: Dict[str, np.ndarray]
    output_mean: np.ndarray
    output_scale: np.ndarray

    def encode(self, clip: Clip) -> np.ndarray:
        return (clip.targets - self.speaker_offset[clip.speaker]) / self.speaker_scale[clip.speaker]


def target_space(clips: Sequence[Clip], mode: str) -> TargetSpace:
    clean = {c.speaker: c for c in clips if c.variant == "clean"}
    if not clean:
        raise ValueError("no clean clips to take speaker statistics from")
    stats = {s: (c.targets[c.mask].mean(axis=0), c.targets[c.mask].std(axis=0) + 1e-3) for s, c in clean.items()}
    means = np.stack([m for m, _ in stats.values()])
    pooled = np.concatenate([c.targets[c.mask] for c in clean.values()])
    centred = np.concatenate([c.targets[c.mask] - stats[s][0] for s, c in clean.items()])
    gm = means.mean(axis=0)
    if mode == "none":
        gs = pooled.std(axis=0) + 1e-3
        off = {s: pooled.mean(axis=0) for s in stats}
        sc = {s: gs for s in stats}
        return TargetSpace(mode, off, sc, pooled.mean(axis=0), gs)
    if mode == "center":
        gs = centred.std(axis=0) + 1e-3
        return TargetSpace(mode, {s: m for s, (m, _) in stats.items()}, {s: gs for s in stats}, gm, gs)
    if mode == "zscore":
        gs = np.stack([sd for _, sd in stats.values()]).mean(axis=0)
        return TargetSpace(mode, {s: m for s, (m, _) in stats.items()}, {s: sd for s, (_, sd) in stats.items()}, gm, gs)
    raise ValueError(f"unknown normalisation {mode!r}")


class WindowSampler:
    """Random training samples: `steps` consecutive predictions `stride` hops apart, each from a window of
    past + 1 + lookahead feature frames; only where every predicted frame has a tracked target."""

    def __init__(self, clips: Sequence[Clip], space: TargetSpace, past: int, lookahead: int, steps: int, stride: int,
                 seed: int = 0):
        self.past, self.lookahead, self.steps, self.stride = past, lookahead, steps, stride
        self.window = past + 1 + lookahead
        self.span = self.window + (steps - 1) * stride
        self.clips = list(clips)
        self.encoded = [space.encode(c).astype(np.float32) for c in self.clips]
        self.starts: List[np.ndarray] = []
        offs = past + stride * np.arange(steps)
        for c in self.clips:
            n = len(c.features) - self.span + 1
            s = np.arange(max(0, n))
            ok = np.all(c.mask[s[:, None] + offs[None, :]], axis=1) if n > 0 else np.zeros(0, bool)
            self.starts.append(s[ok])
        self.weights = np.array([len(s) for s in self.starts], np.float64)
        if self.weights.sum() == 0:
            raise ValueError("no training windows: clips too short or without tracked faces")
        self.weights /= self.weights.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int) -> Tuple[torch.Tensor, torch.Tensor]:
        """windows [n, steps, W, D], targets [n, steps, K]."""
        ci = self.rng.choice(len(self.clips), size=n, p=self.weights)
        xs, ys = [], []
        offs = self.past + self.stride * np.arange(self.steps)
        for i in ci:
            s0 = int(self.rng.choice(self.starts[i]))
            seg = self.clips[i].features[s0:s0 + self.span]
            idx = self.stride * np.arange(self.steps)[:, None] + np.arange(self.window)[None, :]
            xs.append(seg[idx])
            ys.append(self.encoded[i][s0 + offs])
        return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def streaming_windows(features: np.ndarray, pad: np.ndarray, past: int, lookahead: int) -> np.ndarray:
    """Every window the live loader sees for a whole clip: the start padded with `past` copies of `pad` (what
    it holds before audio arrives) and the end with `lookahead` (flushed at the end). [T, W, D]."""
    x = np.concatenate([np.repeat(pad[None], past, 0), features, np.repeat(pad[None], lookahead, 0)])
    w = past + 1 + lookahead
    idx = np.arange(len(features))[:, None] + np.arange(w)[None, :]
    return x[idx].astype(np.float32)
