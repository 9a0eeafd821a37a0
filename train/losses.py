"""Losses of variant W (the deformation model). The paper's eq. 4 stays in trainer.py for variants A-F.

Every term is an L1 weighted by a per-pixel map that up-weights what moves (face, mouth, eyes) over what stays
(background): w = 1 + 4 x (temporal standard deviation of the training frames, normalised to its 99th percentile).
- rgb: the output against the frame, at full, half and quarter resolution (a pyramid: coarse terms give the flow a
  wide basin, the fine term keeps the detail);
- gradient: L1 of the horizontal and vertical image differences (penalises blur directly);
- warp: the raw warped reference against the frame (trains the flow even where the synthesis covers it);
- coarse_warp: blurred copies of the reference sampled at the same coordinates against the blurred frame (a wide
  basin for the flow: large head motions are found, not only one-pixel corrections);
- smoothness of the flow (total variation, in pixels) and a small cost for using the synthesis instead of the warp
  (the warp is sharp real texture; the synthesis is for what the reference does not show).
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as Fn

from .model_warp import bilinear_gather, neighbour_table

WEIGHTS = {"rgb": 1.0, "pyramid": 1.0, "gradient": 1.0, "warp": 0.25, "coarse_warp": 1.0, "flow_tv": 0.01,
           "synth_use": 0.01}
BLUR_KERNELS = (5, 13)  # box sizes (applied twice, ~Gaussian) of the blurred references for the coarse warp loss


def blur(x: torch.Tensor, k: int) -> torch.Tensor:
    """Box blur of size k applied twice (close to a Gaussian of sigma ~ k / 2.5), edges not darkened."""
    for _ in range(2):
        x = Fn.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=False)
    return x


def blurred_tables(reference: torch.Tensor) -> "list[tuple[int, torch.Tensor]]":
    """Neighbour tables of blurred copies of the reference [3, S, S]: sampling them at the model's coordinates and
    comparing with the blurred frame gives the flow gradients over displacements of several pixels (a wide basin),
    where the sharp reference gives them only within one pixel."""
    return [(k, neighbour_table(blur(reference[None], k)[0])) for k in BLUR_KERNELS]


@torch.no_grad()
def motion_weight_map(frames_u8: torch.Tensor, gain: float = 4.0) -> torch.Tensor:
    """frames [N, 3, S, S] uint8 (a sample of training frames) -> [1, 1, S, S] float weights >= 1."""
    x = frames_u8.float().mean(1) / 255.0  # [N, S, S] grey
    std = x.std(0)[None, None]
    std = Fn.avg_pool2d(std, 9, stride=1, padding=4, count_include_pad=False)
    q = torch.quantile(std.flatten(), 0.99).clamp_min(1e-6)
    return 1.0 + gain * (std / q).clamp(0, 1)


def _wl1(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return ((a - b).abs() * w).mean() / w.mean()


def _grad(x: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor]":
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def warp_loss(out: Dict[str, torch.Tensor], gt: torch.Tensor, w: torch.Tensor,
              tables: Sequence[Tuple[int, torch.Tensor]] = ()) -> Dict[str, torch.Tensor]:
    rgb = out["rgb"].float()
    terms: Dict[str, torch.Tensor] = {}
    coarse = rgb.new_zeros(())
    for k, table in tables:
        coarse = coarse + _wl1(bilinear_gather(table, out["sx"], out["sy"], gt.shape[-1]), blur(gt, k), w)
    terms["coarse_warp"] = coarse
    terms["rgb"] = _wl1(rgb, gt, w)
    pyr = rgb.new_zeros(())
    a, b, ww = rgb, gt, w
    for _ in range(2):
        a, b, ww = Fn.avg_pool2d(a, 2), Fn.avg_pool2d(b, 2), Fn.avg_pool2d(ww, 2)
        pyr = pyr + _wl1(a, b, ww)
    terms["pyramid"] = pyr
    gx, gy = _grad(rgb)
    tx, ty = _grad(gt)
    terms["gradient"] = _wl1(gx, tx, w[..., :, 1:]) + _wl1(gy, ty, w[..., 1:, :])
    terms["warp"] = _wl1(out["warp"].float(), gt, w)
    fx, fy = _grad(out["flow"].float())
    terms["flow_tv"] = fx.abs().mean() + fy.abs().mean()
    terms["synth_use"] = (1.0 - out["mask"].float()).mean()
    loss = sum(WEIGHTS[k] * v for k, v in terms.items())
    terms = {k: v.detach() for k, v in terms.items()}
    terms["loss"] = loss
    terms["rec"] = Fn.mse_loss(rgb.detach(), gt)
    return terms
