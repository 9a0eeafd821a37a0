"""The Dynamic Neural Portraits model (paper section 3.2) with the ablation variants A-F as switches.

MLP F runs on a coarse H_f x W_f grid: f = F(gamma(x), gamma(pose), gamma(gaze), e, v). Its first layer is linear
in the concatenated input, so it is split into a per-pixel part W_x gamma(x) + b (constant per grid position,
precomputed at export) and a per-frame part W_c [gamma(p); gamma(g); e] + W_v v. F has a feature head (n_f channels,
up-sampled by the CNN decoder D to the output size) and an RGB head (the low-resolution image C_i of eq. 4).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional

import torch
from torch import nn
import torch.nn.functional as Fn

from .config import BLENDSHAPE_COUNT, GAZE_SIZE, POSE_SIZE, ModelConfig


def posenc(x: torch.Tensor, n: int) -> torch.Tensor:
    """NeRF positional encoding (eq. 3): [..., d] -> [..., d * (2n + 1)] as [x, sin(2^k pi x)..., cos(2^k pi x)...]."""
    if n == 0:
        return x
    freqs = (2.0 ** torch.arange(n, dtype=x.dtype, device=x.device)) * math.pi
    xf = (x[..., None] * freqs).flatten(-2)
    return torch.cat([x, torch.sin(xf), torch.cos(xf)], -1)


def posenc_size(d: int, n: int) -> int:
    return d * (2 * n + 1)


def grid_coords(g: int) -> torch.Tensor:
    """Pixel-centre coordinates of a g x g grid in [0, 1]^2, row-major, as [g*g, 2] (x, y)."""
    t = (torch.arange(g, dtype=torch.float32) + 0.5) / g
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([xx.reshape(-1), yy.reshape(-1)], -1)


class PortraitModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        sw = cfg.switches()
        self.sw = sw
        self.g = cfg.grid_size()
        self.register_buffer("coords", grid_coords(self.g), persistent=False)
        width = cfg.mlp_width if sw.mlp else cfg.n_f
        dx = posenc_size(2, cfg.pos_freqs)
        dc = posenc_size(POSE_SIZE, cfg.cond_freqs) + BLENDSHAPE_COUNT
        if sw.gaze:
            dc += posenc_size(GAZE_SIZE, cfg.cond_freqs)
        self.fc_x = nn.Linear(dx, width)  # per-pixel part of the first layer (with the bias)
        self.fc_c = nn.Linear(dc, width, bias=False)  # per-frame part: pose, gaze, expression
        if sw.latents:
            if cfg.n_latents < 1:
                raise ValueError("variants D-F need n_latents >= 1 (one latent code per training frame)")
            self.latents = nn.Embedding(cfg.n_latents, cfg.latent_dim)
            nn.init.normal_(self.latents.weight, std=0.01)
            self.fc_v = nn.Linear(cfg.latent_dim, width, bias=False)  # per-frame part: latent code
        self.hidden = nn.ModuleList([nn.Linear(width, width) for _ in range(cfg.mlp_layers - 1)] if sw.mlp else [])
        self.feat_head: Optional[nn.Linear] = nn.Linear(width, cfg.n_f) if sw.mlp and sw.decoder else None
        self.rgb_head: Optional[nn.Linear] = nn.Linear(width, 3) if sw.mlp else None
        self.convs = nn.ModuleList()
        self.out_conv: Optional[nn.Conv2d] = None
        if sw.decoder:
            c_in = cfg.n_f
            for c_out in cfg.stage_channels():
                self.convs.append(nn.Conv2d(c_in, c_out, 3, padding=1))
                c_in = c_out
            self.out_conv = nn.Conv2d(c_in, 3, 3, padding=1)

    # -- the split first layer -------------------------------------------------------------------------------
    def per_pixel(self) -> torch.Tensor:
        """W_x gamma(x) + b for every grid position: [g*g, width]. Constant at inference."""
        return self.fc_x(posenc(self.coords, self.cfg.pos_freqs))

    def per_frame(self, cond: torch.Tensor, latent: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Per-frame part of the first layer from the normalised conditioning [B, 60] (and latent codes [B, L])."""
        cfg = self.cfg
        z = torch.clamp(cond, -cfg.cond_clip, cfg.cond_clip)
        parts = [posenc(z[:, :POSE_SIZE] * cfg.cond_scale, cfg.cond_freqs)]
        if self.sw.gaze:
            parts.append(posenc(z[:, POSE_SIZE:POSE_SIZE + GAZE_SIZE] * cfg.cond_scale, cfg.cond_freqs))
        parts.append(z[:, POSE_SIZE + GAZE_SIZE:])
        c = self.fc_c(torch.cat(parts, -1))
        if self.sw.latents and latent is not None:
            c = c + self.fc_v(latent)
        return c

    def latent_contribution(self, latent: torch.Tensor) -> torch.Tensor:
        """W_v v for one code [L] -> [width] (baked into the per-pixel constant at export)."""
        return self.fc_v(latent[None])[0]

    def mean_latent(self) -> Optional[torch.Tensor]:
        """The fixed test-time code: the mean of the training frames' codes."""
        return self.latents.weight.mean(0) if self.sw.latents else None

    # -- the rest of F, the heads and the decoder --------------------------------------------------------------
    def _to_map(self, t: torch.Tensor) -> torch.Tensor:  # [B, g*g, C] -> [B, C, g, g]
        return t.transpose(1, 2).reshape(-1, t.shape[2], self.g, self.g)

    def render(self, pix: torch.Tensor, frame: torch.Tensor, want_low: bool = True) -> Dict[str, torch.Tensor]:
        """pix [g*g, width] (per-pixel part), frame [B, width] (per-frame part) -> {'rgb': [B,3,H,W], 'rgb_low'}."""
        h = pix[None] + frame[:, None]
        out: Dict[str, torch.Tensor] = {}
        if self.sw.mlp:
            h = torch.relu(h)
            for layer in self.hidden:
                h = torch.relu(layer(h))
            assert self.rgb_head is not None
            if want_low or not self.sw.decoder:
                out["rgb_low"] = torch.sigmoid(self._to_map(self.rgb_head(h)))
            if not self.sw.decoder:
                out["rgb"] = out["rgb_low"]
                return out
            assert self.feat_head is not None
            x = self._to_map(self.feat_head(h))
        else:
            x = self._to_map(h)  # variant B: the linear projection is the feature map
        for conv in self.convs:
            x = torch.relu(conv(Fn.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)))
        assert self.out_conv is not None
        out["rgb"] = torch.sigmoid(self.out_conv(x))
        return out

    def forward(self, cond: torch.Tensor, frame_idx: Optional[torch.Tensor] = None,
                latent: Optional[torch.Tensor] = None, want_low: bool = True) -> Dict[str, torch.Tensor]:
        """Training/eval forward. With latents, pass training frame indices, or an explicit code [B, L]
        (None -> the mean training code)."""
        if self.sw.latents:
            if latent is None:
                if frame_idx is not None:
                    latent = self.latents(frame_idx)
                else:
                    m = self.mean_latent()
                    assert m is not None
                    latent = m[None].expand(cond.shape[0], -1)
        return self.render(self.per_pixel(), self.per_frame(cond, latent), want_low)


class ExportModel(nn.Module):
    """Inference graph: cond [B, 60] -> rgb [B, 3, H, W]. The per-pixel part of the first layer and the
    fixed latent code's contribution are folded into one constant [g*g, width]."""

    def __init__(self, model: PortraitModel, latent: Optional[torch.Tensor]):
        super().__init__()
        self.model = model
        with torch.no_grad():
            pix = model.per_pixel()
            if model.sw.latents:
                if latent is None:
                    raise ValueError("a model with latent codes needs a fixed test-time code")
                pix = pix + model.latent_contribution(latent)
        self.register_buffer("pix", pix.detach().clone())

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.model.render(self.pix, self.model.per_frame(cond, None), want_low=False)["rgb"]


def inference_flops(cfg: ModelConfig) -> Dict[str, int]:
    """FLOPs per rendered frame of the exported graph, counted as 2 x multiply-accumulates of the linear layers
    and convolutions (activations, the positional encoding, adds and resizes are not counted)."""
    sw = cfg.switches()
    g2 = cfg.grid_size() ** 2
    width = cfg.mlp_width if sw.mlp else cfg.n_f
    dc = posenc_size(POSE_SIZE, cfg.cond_freqs) + BLENDSHAPE_COUNT + (posenc_size(GAZE_SIZE, cfg.cond_freqs) if sw.gaze else 0)
    macs = {"first_layer_per_frame": dc * width, "mlp": 0, "heads": 0, "decoder": 0}
    if sw.mlp:
        macs["mlp"] = (cfg.mlp_layers - 1) * g2 * width * width
        macs["heads"] = g2 * width * (cfg.n_f if sw.decoder else 3)
    if sw.decoder:
        r = cfg.grid
        c_in = cfg.n_f
        for c_out in cfg.stage_channels():
            r *= 2
            macs["decoder"] += r * r * 9 * c_in * c_out
            c_in = c_out
        macs["decoder"] += cfg.size * cfg.size * 9 * c_in * 3
    flops = {k: 2 * v for k, v in macs.items()}
    flops["total"] = sum(flops.values())
    return flops


def parameter_count(model: nn.Module, with_latents: bool = False) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if with_latents or not n.startswith("latents."))


def smooth_untrained_init(model: PortraitModel, seed: int) -> None:
    """Initialisation for an untrained avatar (transport tests): standard init, with the weights of the
    positional encoding's high frequencies damped so the image is smooth (codec-friendly, not white noise),
    and the output layer scaled so that the conditioning visibly changes the picture."""
    g = torch.Generator().manual_seed(seed)
    cfg = model.cfg
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                bound = 1.0 / math.sqrt(p.shape[1] * (p[0][0].numel() if p.dim() > 2 else 1))
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound * math.sqrt(3))
            else:
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * 0.1)
        # columns of fc_x: [x, y, sin(k) for x,y..., cos(k) for x,y...]: damp by 0.35^k
        n = cfg.pos_freqs
        if n:
            damp = torch.tensor([0.35 ** k for k in range(n)])
            w = model.fc_x.weight
            d_sin = damp.repeat(2)  # (x: k0..kn-1, y: k0..kn-1) after flatten of [2, n]
            w[:, 2:2 + 2 * n] *= d_sin
            w[:, 2 + 2 * n:] *= d_sin
        model.fc_c.weight.mul_(3.0)
        # Calibrate the output layer on random conditioning: logits centred, standard deviation ~1.2.
        cond = torch.randn(8, 60, generator=g)
        y = model(cond, want_low=False)["rgb"].clamp(1e-6, 1 - 1e-6)
        logit = torch.log(y / (1 - y))
        mean = logit.mean(dim=(0, 2, 3))
        k = 1.2 / float(logit.std())
        head = model.out_conv if model.out_conv is not None else model.rgb_head
        assert head is not None and head.bias is not None
        head.weight.mul_(k)
        head.bias.copy_((head.bias - mean) * k)
