"""Training loop: L1 on the (per-speaker normalised) targets plus an L1 velocity term over consecutive
predictions; AdamW with cosine decay; held-out speakers scored every `eval_every` iterations (reported, never
used to pick a checkpoint)."""
from __future__ import annotations

import math
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..progress import Progress
from .config import KEY_OUTPUTS, OUTPUT_NAMES, ModelConfig, TrainConfig
from .data import Clip, TargetSpace, WindowSampler, streaming_windows, target_space
from .metrics import score
from .model import AudioExpressionNet


def predict_clip(model: AudioExpressionNet, features: np.ndarray, batch: int = 512) -> np.ndarray:
    """Blendshape values [T, K] for every feature frame, exactly as the streaming loader produces them."""
    cfg = model.cfg
    w = streaming_windows(features, model.feature_mean.numpy(), cfg.past, cfg.lookahead)
    model.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(w), batch):
            outs.append(model(torch.from_numpy(w[i:i + batch])).numpy())
    return np.concatenate(outs) if outs else np.zeros((0, len(OUTPUT_NAMES)), np.float32)


def evaluate(model: AudioExpressionNet, clips: Sequence[Clip]) -> Dict[str, Dict[str, Dict[str, float]]]:
    return {c.speaker: score(predict_clip(model, c.features), c.targets, c.mask) for c in clips}


def mean_r(report: Dict[str, Dict[str, Dict[str, float]]], name: str = "jawOpen") -> float:
    return float(np.mean([v[name]["r"] for v in report.values()])) if report else float("nan")


def train(train_clips: Sequence[Clip], eval_clips: Sequence[Clip], mcfg: ModelConfig, tcfg: TrainConfig,
          progress: bool = True, max_minutes: Optional[float] = None,
          log: Callable[[str], None] = print) -> Dict[str, object]:
    tcfg.validate()
    torch.manual_seed(tcfg.seed)
    space: TargetSpace = target_space(train_clips, tcfg.normalise)
    model = AudioExpressionNet(mcfg)
    feats = np.concatenate([c.features for c in train_clips])
    model.set_normalisation(feats.mean(axis=0), feats.std(axis=0), space.output_mean, space.output_scale)
    sampler = WindowSampler(train_clips, space, mcfg.past, mcfg.lookahead, tcfg.steps, tcfg.stride, tcfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=tcfg.lr, weight_decay=tcfg.weight_decay)
    weight = torch.ones(len(OUTPUT_NAMES))
    for n in KEY_OUTPUTS:
        weight[OUTPUT_NAMES.index(n)] = tcfg.key_weight
    weight = weight / weight.mean()
    bar = Progress(tcfg.iterations, enabled=progress)
    history: List[Dict[str, float]] = []
    t0 = time.time()
    it = 0
    for it in range(1, tcfg.iterations + 1):
        lr = tcfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (it - 1) / tcfg.iterations)))
        for g in opt.param_groups:
            g["lr"] = lr
        model.train()
        x, y = sampler.batch(tcfg.batch)
        b, s = x.shape[:2]
        pred = model.forward_normalised(x.reshape(b * s, *x.shape[2:])).reshape(b, s, -1)
        l1 = ((pred - y).abs() * weight).mean()
        vel = (((pred[:, 1:] - pred[:, :-1]) - (y[:, 1:] - y[:, :-1])).abs() * weight).mean()
        loss = l1 + tcfg.velocity_weight * vel
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        bar.update(it, loss=f"{loss.item():.4f}")
        stop = max_minutes is not None and (time.time() - t0) > max_minutes * 60
        if it % tcfg.eval_every == 0 or it == tcfg.iterations or stop:
            rep = evaluate(model, eval_clips)
            row = {"iteration": it, "loss": float(loss.item()), "l1": float(l1.item()), "velocity": float(vel.item()),
                   **{f"heldOut_{n}_r": mean_r(rep, n) for n in KEY_OUTPUTS}}
            history.append(row)
            bar.update(it, force=True, loss=f"{loss.item():.4f}", jaw_r=f"{row['heldOut_jawOpen_r']:.3f}")
            if not progress:
                log(f"it {it} loss {loss.item():.4f} held-out jawOpen r {row['heldOut_jawOpen_r']:.3f}")
        if stop:
            break
    bar.close()
    model.eval()
    return {"model": model, "space": space, "history": history, "iterations": it, "seconds": time.time() - t0,
            "report": evaluate(model, eval_clips)}
