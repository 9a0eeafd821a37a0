"""The network: feature window [batch, window, feature_dim] → blendshapes [batch, outputs] for the frame at
index `past` of the window (so `lookahead` frames of the future are seen). The head reads the whole window (flatten) or only the
predicted frame's column after the dilated convs (center: far fewer weights, less room to memorise speakers). Input normalisation and the output
scale are buffers inside the module, so the exported graph takes raw feature frames and returns blendshape
values clamped to [0, 1]."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig, OUTPUT_NAMES


class ResidualConv(nn.Module):
    def __init__(self, channels: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size=3, padding=dilation, dilation=dilation)
        self.norm = nn.BatchNorm1d(channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(F.gelu(self.norm(self.conv(x))))


class AudioExpressionNet(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg.validate()
        n_out = len(OUTPUT_NAMES)
        self.register_buffer("feature_mean", torch.zeros(cfg.feature_dim))
        self.register_buffer("feature_std", torch.ones(cfg.feature_dim))
        self.register_buffer("output_mean", torch.zeros(n_out))
        self.register_buffer("output_scale", torch.ones(n_out))
        self.register_buffer("columns", torch.tensor(list(cfg.columns) or list(range(cfg.feature_dim)), dtype=torch.long))
        self.stem = nn.Conv1d(cfg.inputs, cfg.channels, kernel_size=3, padding=1)
        self.blocks = nn.Sequential(*[ResidualConv(cfg.channels, d, cfg.dropout) for d in cfg.dilations])
        width = cfg.channels * (cfg.window if cfg.head == "flatten" else 1)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(cfg.dropout), nn.Linear(width, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, n_out))

    def set_normalisation(self, feature_mean, feature_std, output_mean, output_scale) -> None:
        self.feature_mean.copy_(torch.as_tensor(feature_mean, dtype=torch.float32))
        self.feature_std.copy_(torch.as_tensor(feature_std, dtype=torch.float32).clamp_min(1e-4))
        self.output_mean.copy_(torch.as_tensor(output_mean, dtype=torch.float32))
        self.output_scale.copy_(torch.as_tensor(output_scale, dtype=torch.float32))

    def forward_normalised(self, windows: torch.Tensor) -> torch.Tensor:
        """windows [B, W, D] of raw features → outputs in the training target space (before output scaling)."""
        x = ((windows - self.feature_mean) / self.feature_std).index_select(2, self.columns)
        x = self.blocks(F.gelu(self.stem(x.transpose(1, 2))))
        if self.cfg.head == "center":  # the predicted frame's column: a small receptive field, no position weights
            x = x[:, :, self.cfg.past:self.cfg.past + 1]
        return self.head(x)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Raw feature windows → blendshape values in [0, 1] (the exported graph)."""
        return (self.forward_normalised(windows) * self.output_scale + self.output_mean).clamp(0.0, 1.0)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class Ensemble(nn.Module):
    """The mean output of several trained members (same config, same training data: the same input statistics);
    exported as one graph. Averages away some of the seed-to-seed variance of a model trained on little data."""

    def __init__(self, members):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0]
        for m in members[1:]:
            if m.cfg.to_dict() != first.cfg.to_dict() or not torch.equal(m.feature_mean, first.feature_mean):
                raise ValueError("ensemble members must share their configuration and input statistics")
        self.members = nn.ModuleList(members)
        self.cfg = first.cfg

    @property
    def feature_mean(self) -> torch.Tensor:
        return self.members[0].feature_mean

    @property
    def feature_std(self) -> torch.Tensor:
        return self.members[0].feature_std

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(windows) for m in self.members]).mean(dim=0)
