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
  (the warp is sharp real texture; the synthesis is for what the reference does not show);
- optionally (`--mse-weight`), a squared error beside the L1 terms, with the same weights: it counts the large errors
  (an edge a pixel off) more than L1 does, as PSNR does;
- landmarks (datasets with landmarks, one reference): where the model reads each of the frame's 478 face landmarks
  in the reference should be that landmark in the reference (mean distance in pixels). A geometric hint that the
  colour terms give only where the texture has edges: it places the chin, the silhouette of a turned head, the
  lids and the lips where the tracker saw them.
"""
from __future__ import annotations

from typing import Dict, Sequence, Tuple

import torch
import torch.nn.functional as Fn

from .model_warp import bilinear_gather, blend_gather, stacked_table

WEIGHTS = {"rgb": 1.0, "pyramid": 1.0, "gradient": 1.0, "warp": 0.25, "coarse_warp": 1.0, "flow_tv": 0.01,
           "synth_use": 0.01}
BLUR_KERNELS = (7, 17)  # box sizes of the blurred references for the coarse warp loss
COARSE_STRIDE = 4  # the coarse warp loss is evaluated on every 4th pixel in each direction (it is smooth anyway)


def blur(x: torch.Tensor, k: int, stride: int = 1) -> torch.Tensor:
    """Box blur of size k (edges not darkened), evaluated every `stride` pixels."""
    return Fn.avg_pool2d(x, k, stride=stride, padding=k // 2, count_include_pad=False)


def blurred_tables(reference: torch.Tensor) -> "list[tuple[int, torch.Tensor]]":
    """Neighbour tables of blurred copies of the reference [3, S, S] (or of K references [K, 3, S, S], stacked):
    sampling them at the model's coordinates and comparing with the blurred frame gives the flow gradients over
    displacements of several pixels (a wide basin), where the sharp reference gives them only within one pixel."""
    if reference.dim() == 3:
        return [(k, stacked_table(blur(reference[None], k)[0])) for k in BLUR_KERNELS]
    return [(k, stacked_table(blur(reference, k))) for k in BLUR_KERNELS]


@torch.no_grad()
def motion_weight_map(frames_u8: torch.Tensor, gain: float = 4.0) -> torch.Tensor:
    """frames [N, 3, S, S] uint8 (a sample of training frames) -> [1, 1, S, S] float weights >= 1."""
    x = frames_u8.float().mean(1) / 255.0  # [N, S, S] grey
    std = x.std(0)[None, None]
    std = Fn.avg_pool2d(std, 9, stride=1, padding=4, count_include_pad=False)
    q = torch.quantile(std.flatten(), 0.99).clamp_min(1e-6)
    return 1.0 + gain * (std / q).clamp(0, 1)


# Landmark index sets (shared/src/face-landmarks.ts: MediaPipe's outer lips and eye contours).
MOUTH_OUTER_LIPS = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185]
LEFT_EYE = [263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398]
RIGHT_EYE = [33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173]
REGION_GAIN = (3.0, 1.5, 1.5)  # extra weight inside the mouth box and each eye box


def region_boxes(landmarks: "np.ndarray", pad: float = 0.3) -> torch.Tensor:
    """landmarks [N, 478, 2] (output pixels, NaN where no face) -> boxes [N, 3, 4] (x0, y0, x1, y1) of the mouth and
    the two eyes, padded by `pad` of their size; a frame without landmarks gets empty boxes."""
    import numpy as np
    out = np.zeros((len(landmarks), 3, 4), np.float32)
    for r, idx in enumerate((MOUTH_OUTER_LIPS, LEFT_EYE, RIGHT_EYE)):
        p = landmarks[:, idx]  # [N, k, 2]
        with np.errstate(invalid="ignore"):
            lo, hi = np.nanmin(p, 1), np.nanmax(p, 1)
        m = (hi - lo).max(1, keepdims=True) * pad + 2.0
        box = np.concatenate([lo - m, hi + m], 1)
        box[~np.isfinite(box).all(1)] = 0.0
        out[:, r] = box
    return torch.from_numpy(out)


def region_weight(boxes: torch.Tensor, size: int) -> torch.Tensor:
    """boxes [B, 3, 4] -> extra weights [B, 1, S, S] (REGION_GAIN inside each box)."""
    t = torch.arange(size, dtype=torch.float32, device=boxes.device) + 0.5
    w = torch.zeros(boxes.shape[0], size, size, device=boxes.device)
    for r, gain in enumerate(REGION_GAIN):
        bx = boxes[:, r]
        inx = (t[None] >= bx[:, 0:1]) & (t[None] < bx[:, 2:3])  # [B, S]
        iny = (t[None] >= bx[:, 1:2]) & (t[None] < bx[:, 3:4])
        w = w + gain * (iny[:, :, None] & inx[:, None, :]).float()
    return w[:, None]


def landmark_loss(out: Dict[str, torch.Tensor], frame_lm: torch.Tensor, ref_lm: torch.Tensor) -> torch.Tensor:
    """Mean distance (pixels) between where the model reads the frame's landmarks in the reference and the
    reference's own landmarks. frame_lm [B, L, 2] and ref_lm [L, 2] in continuous pixel coordinates (a pixel's
    centre at i + 0.5, as the tracker gives them); NaN where the tracker found nothing (left out). One reference."""
    b, s = frame_lm.shape[0], int(round(out["sx"].shape[1] ** 0.5))
    field = torch.stack([out["sx"], out["sy"]], 1).reshape(b, 2, s, s).float()  # pixel indices in the reference
    ok = torch.isfinite(frame_lm).all(-1) & torch.isfinite(ref_lm).all(-1)[None]  # [B, L]
    grid = torch.where(ok[..., None], frame_lm, torch.zeros_like(frame_lm)) * (2.0 / s) - 1.0
    got = Fn.grid_sample(field, grid[:, None], mode="bilinear", padding_mode="border", align_corners=False)[:, :, 0]
    want = torch.nan_to_num(ref_lm - 0.5).t()[None]  # [1, 2, L] as pixel indices
    dist = ((got - want) ** 2).sum(1).add(1e-6).sqrt()  # [B, L]
    okf = ok.float()
    return (dist * okf).sum() / okf.sum().clamp_min(1.0)


def _wl1(a: torch.Tensor, b: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return ((a - b).abs() * w).mean() / w.mean()


def _grad(x: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor]":
    return x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]


def warp_loss(out: Dict[str, torch.Tensor], gt: torch.Tensor, w: torch.Tensor,
              tables: Sequence[Tuple[int, torch.Tensor]] = (), mse_weight: float = 0.0) -> Dict[str, torch.Tensor]:
    rgb = out["rgb"].float()
    terms: Dict[str, torch.Tensor] = {}
    weights = dict(WEIGHTS, mse=mse_weight)
    coarse = rgb.new_zeros(())
    if tables:
        b, s, st = gt.shape[0], gt.shape[-1], COARSE_STRIDE
        refs = out["sx"].shape[1] // (s * s)
        sx = out["sx"].reshape(b, refs, s, s)[..., ::st, ::st].reshape(b, -1)
        sy = out["sy"].reshape(b, refs, s, s)[..., ::st, ::st].reshape(b, -1)
        wc = w[..., ::st, ::st]
        if refs > 1:  # several references: sample each at its own coordinates, blend with the model's weights
            bw = out["weights"].reshape(b, refs, s, s)[..., ::st, ::st].reshape(b, -1)
            pts = (s // st) ** 2
            offset = (torch.arange(refs, device=sx.device, dtype=sx.dtype)[:, None] * (s * s)).expand(refs, pts)
            offset = offset.reshape(1, -1)
        for k, table in tables:
            if refs > 1:
                got = blend_gather(table, sx, sy, s, refs, bw, offset).reshape(b, 3, s // st, s // st)
            else:
                got = bilinear_gather(table, sx, sy, s).reshape(b, 3, s // st, s // st)
            coarse = coarse + _wl1(got, blur(gt, k, st), wc)
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
    if mse_weight > 0:
        terms["mse"] = (((rgb - gt) ** 2) * w).mean() / w.mean()
    loss = sum(weights[k] * v for k, v in terms.items())
    terms = {k: v.detach() for k, v in terms.items()}
    terms["loss"] = loss
    terms["rec"] = Fn.mse_loss(rgb.detach(), gt)
    return terms
