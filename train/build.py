"""One place that maps a model configuration to its model class, its export graph and its FLOP count:
PortraitModel (the paper's variants A-F, train/model.py) or WarpModel (variant W, train/model_warp.py)."""
from __future__ import annotations

from typing import Dict, Optional, Union

import torch
from torch import nn

from .config import ModelConfig
from .model import ExportModel, PortraitModel, inference_flops
from .model_warp import WarpExport, WarpModel, warp_flops

AnyModel = Union[PortraitModel, WarpModel]


def build_model(cfg: ModelConfig) -> AnyModel:
    return WarpModel(cfg) if cfg.switches().warp else PortraitModel(cfg)


def export_module(model: AnyModel, latent: Optional[torch.Tensor]) -> nn.Module:
    """The inference graph cond [B, 60] -> rgb [B, 3, H, W] of a trained model."""
    if isinstance(model, WarpModel):
        return WarpExport(model)
    return ExportModel(model, latent)


def model_flops(cfg: ModelConfig) -> Dict[str, int]:
    return warp_flops(cfg) if cfg.switches().warp else inference_flops(cfg)
