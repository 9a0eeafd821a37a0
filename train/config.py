"""Model configuration: presets (`cpu`, `paper`) and the paper's ablation variants A-F as switches."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

# Conditioning layout of an expression avatar (shared/src/driving-values.ts): pose 6, gaze 2, blendshapes 52.
POSE_SIZE = 6
GAZE_SIZE = 2
BLENDSHAPE_COUNT = 52
COND_SIZE = POSE_SIZE + GAZE_SIZE + BLENDSHAPE_COUNT

VARIANTS = "ABCDEFW"
VARIANT_DESCRIPTIONS = {
    "A": "coordinate MLP -> RGB per output pixel (no decoder, no latents, no gaze)",
    "B": "CNN decoder only (inputs projected linearly onto the feature grid, no MLP)",
    "C": "MLP on the coarse grid + CNN decoder",
    "D": "C + a learnable latent code per training frame",
    "E": "D + the low-resolution RGB head loss L'rec (eq. 4)",
    "F": "E + gaze input (the full model)",
    "W": "deformation model: a real reference frame warped by a pose-linear affine + expression flow, plus a "
         "synthesis branch and blend mask (train/model_warp.py; not in the paper)",
}


@dataclass(frozen=True)
class VariantSwitches:
    mlp: bool  # MLP F (else a single linear projection)
    decoder: bool  # CNN decoder D (else the MLP's RGB head is evaluated at every output pixel)
    latents: bool  # per-frame latent codes v_i
    lowres_loss: bool  # ||C_i - I'_i||^2 term of eq. 4
    gaze: bool  # gamma(g_i) input
    warp: bool = False  # variant W: the deformation model (train/model_warp.py)


def variant_switches(variant: str) -> VariantSwitches:
    if variant not in VARIANTS or len(variant) != 1:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)} (got {variant!r})")
    if variant == "W":
        return VariantSwitches(mlp=True, decoder=True, latents=False, lowres_loss=False, gaze=True, warp=True)
    i = VARIANTS.index(variant)
    if variant == "A":
        return VariantSwitches(mlp=True, decoder=False, latents=False, lowres_loss=False, gaze=False)
    if variant == "B":
        return VariantSwitches(mlp=False, decoder=True, latents=False, lowres_loss=False, gaze=False)
    return VariantSwitches(mlp=True, decoder=True, latents=i >= 3, lowres_loss=i >= 4, gaze=i >= 5)


def eye_layer_fits(size: int) -> bool:
    """Variant W's colour layers (the eyes' S/2 x 3S/16, doubled up from 8 x 3; the mouth's 3S/8 x S/4, from 6 x 4)
    need S = 16 x a power of two, at least 128."""
    q = size // 16
    return size % 16 == 0 and q >= 8 and q & (q - 1) == 0


@dataclass
class ModelConfig:
    size: int = 256  # output frame size (square)
    grid: int = 64  # coarse grid H_f = W_f of the MLP (variant A uses the output size instead)
    mlp_layers: int = 4  # linear layers of F before the heads (the first one is split per-pixel/per-frame)
    mlp_width: int = 128
    n_f: int = 32  # feature channels per grid position
    pos_freqs: int = 6  # N of the positional encoding of x
    cond_freqs: int = 4  # N of the positional encoding of pose and gaze
    cond_scale: float = 0.25  # normalised pose/gaze are multiplied by this before gamma (+-4 sigma -> +-1)
    cond_clip: float = 6.0  # normalised conditioning is clipped to +-cond_clip (robust to wild live input)
    latent_dim: int = 32
    n_latents: int = 0  # number of training frames (one code each); set from the dataset
    # Decoder channels per up-sampling stage, listed coarse -> fine; a model with S stages uses the LAST S
    # entries (so the finest stage always has the last, smallest width).
    decoder_channels: List[int] = field(default_factory=lambda: [64, 32, 16])
    variant: str = "F"
    # variant W only (train/model_warp.py)
    warp_grid: int = 64  # flow-field resolution before up-sampling to the output size
    warp_channels: List[int] = field(default_factory=lambda: [64, 64, 32, 24])  # 8x8 map, then per x2 stage
    flow_scale: float = 0.05  # flow head output x flow_scale x size = pixels
    rigid_scale: float = 0.1  # affine head output x rigid_scale
    refine_channels: int = 16
    refine_layers: int = 3
    warp_geometry: bool = False  # variant W: rigid head motion from a fitted camera + face points (landmarks needed)
    warp_refs: int = 1  # reference frames (K): the neutral one, then the widest-open mouth, the closed eyes, ...
    # variant W, one reference: the expression maps (flow, rigidity correction, synthesis features) are laid out in
    # the reference's head-aligned frame and carried to the output by the rigid head motion, so an expression's
    # motion moves with the head instead of having to be learned at every head position
    warp_aligned: bool = False
    # variant W, one reference: an eye layer, a full-resolution change of colour over both eyes (a patch of size/2 x
    # 3*size/16 in the reference's frame, placed from the reference's landmarks) drawn from the eye and brow controls,
    # gaze and pitch/yaw by its own small decoder and carried by the rigid head motion: lids and irises drawn sharply
    # instead of warped or blurred by the half-resolution synthesis
    warp_eyes: bool = False
    # variant W, one reference: a mouth layer of the same kind (a patch of 3*size/8 x size/4 on the reference's lips
    # and below them) drawn from the jaw and mouth controls: teeth and an open mouth's interior
    warp_mouth: bool = False
    # variant W with the fitted geometry: whether the learned pose-linear affine on top of it may rotate (and shear)
    # the head too, or only shift and scale it. On lp-d6 a free one learned to undo two thirds of the head's roll,
    # which the geometry gets right (docs/training.md)
    warp_learned_rotation: bool = True
    # variant W with the fitted geometry, one reference: the head moves by the geometry's dense warp, not only its
    # affine: a thin-plate spline through the fitted face points carries what the affine leaves (the nose and cheeks
    # of a turned head move differently from the face's plane: 7-15 px on the synthetic presenter). The warp
    # preset's since 30 Nov 2026
    warp_dense_geometry: bool = False
    # variant W: the expression flow is multiplied by a learned map (the background gate) that starts closed where the
    # training clip never changes (the background): flow that the CNN spreads beyond the head, which no training
    # frame corrects on a plain wall, cannot drag the background's edges on held-out frames
    warp_background_gate: bool = False
    # variant W, one reference: the warp's displacement (the rigid head motion weighted by the rigidity, the dense
    # warp and the expression flow) is composed on the flow grid and up-sampled once as two channels, and the
    # refinement's sigmoid is taken before its up-sampling: the same model up to how a product and a sigmoid are
    # interpolated between the grid's cells, with ~0.5 ms a frame less work at full resolution (256^2, one
    # AVX2 thread; docs/training.md). The warp preset's since 1 Dec 2026
    warp_coarse_motion: bool = False
    # variant W, one reference: the reference frame's colours are learned too (a per-pixel change added to the
    # frame, starting at zero): the warp's bilinear sampling blurs what it reads (about 41 dB against an ideal
    # shift in the face of a 256^2 frame) and the reference carries its own frame's noise; training can sharpen
    # and clean the texture it reads. Folded into the reference's neighbour table: no cost at render time
    warp_learned_reference: bool = False
    # variant W with the dense warp: the thin-plate spline also goes through points on the head's outline above the
    # face (train/face_geometry.py head_outline_points, placed from the fitted face points, not tracked), so that a
    # turned head's hair and skull outline move as the outline of a head does instead of as far as the forehead
    warp_head_outline: bool = False
    # variant W with coarse motion: the body below the head moves too. A second affine, a LINEAR function of the
    # whole normalised head pose (translation and roll included: the flow CNN sees neither), weighted by a learned
    # static map on the flow grid (started on what moves in the clip outside the face), is added to the displacement.
    # Shoulders follow a head's translation partly and its turns a little; without it the rigidity map can only
    # carry them as a fraction of the head's motion, and their outline (a sweater's on the synthetic presenter:
    # 43 % of the default avatar's squared error against the generator) is drawn pixels off
    warp_body_motion: bool = False

    def switches(self) -> VariantSwitches:
        return variant_switches(self.variant)

    def grid_size(self) -> int:
        if self.switches().warp:
            return self.warp_grid
        return self.size if not self.switches().decoder else self.grid

    def stages(self) -> int:
        if not self.switches().decoder or self.switches().warp:
            return 0
        r = self.size // self.grid
        s = int(round(math.log2(r))) if r >= 1 else -1
        if r < 1 or self.size % self.grid or 2 ** s != r:
            raise ValueError(f"size {self.size} must be the grid {self.grid} times a power of two")
        if s > len(self.decoder_channels):
            raise ValueError(f"size {self.size} needs {s} decoder stages but decoder_channels has {len(self.decoder_channels)}")
        return s

    def stage_channels(self) -> List[int]:
        s = self.stages()
        return list(self.decoder_channels[len(self.decoder_channels) - s:]) if s else []

    def validate(self) -> "ModelConfig":
        variant_switches(self.variant)
        for k in ("size", "grid", "mlp_layers", "mlp_width", "n_f", "latent_dim"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"model.{k} must be >= 1")
        if self.size % 2:
            raise ValueError("size must be even")
        if self.pos_freqs < 0 or self.cond_freqs < 0:
            raise ValueError("frequency counts must be >= 0")
        if self.switches().warp:
            g = self.warp_grid
            if g < 8 or g & (g - 1) or self.size % g or not self.warp_channels or self.refine_layers < 1:
                raise ValueError("variant W needs warp_grid a power of two >= 8 dividing size, warp_channels and "
                                 "refine_layers >= 1")
            if not 1 <= self.warp_refs <= 8:
                raise ValueError("warp_refs (reference frames of variant W) must be 1..8")
            if self.warp_dense_geometry and (self.warp_refs != 1 or not self.warp_geometry):
                raise ValueError("warp_dense_geometry (the geometry's dense warp) needs warp_geometry and warp_refs = 1")
            if self.warp_head_outline and not self.warp_dense_geometry:
                raise ValueError("warp_head_outline (the head's outline in the dense warp) needs warp_dense_geometry")
            if self.warp_aligned and self.warp_refs != 1:
                raise ValueError("warp_aligned (head-aligned expression maps) needs warp_refs = 1")
            if self.warp_eyes and (self.warp_refs != 1 or not eye_layer_fits(self.size)):
                raise ValueError("warp_eyes (the eye layer) needs warp_refs = 1 and a size of 128, 256, 512 or 1024")
            if self.warp_mouth and (self.warp_refs != 1 or not eye_layer_fits(self.size)):
                raise ValueError("warp_mouth (the mouth layer) needs warp_refs = 1 and a size of 128, 256, 512 or 1024")
            if self.warp_learned_reference and self.warp_refs != 1:
                raise ValueError("warp_learned_reference (the reference's colours learned) needs warp_refs = 1")
            if self.warp_body_motion and not self.warp_coarse_motion:
                raise ValueError("warp_body_motion (the body's own motion) needs warp_coarse_motion")
            if self.warp_coarse_motion and self.warp_refs != 1:
                raise ValueError("warp_coarse_motion (the displacement composed on the flow grid) needs warp_refs = 1")
        self.stages()
        return self

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: Dict[str, Any]) -> "ModelConfig":
        names = {f.name for f in dataclasses.fields(ModelConfig)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return ModelConfig(**d).validate()


@dataclass
class TrainConfig:
    iterations: int = 20000
    batch: int = 4
    lr: float = 5e-4
    lr_final: float = 5e-5  # exponential decay from lr to lr_final over `iterations`
    latent_lr: float = 1e-3
    eval_every: int = 500
    eval_frames: int = 16  # held-out frames used for the periodic PSNR (evenly spread over the test split)
    checkpoint_every: int = 1000
    amp: bool = True  # mixed precision when on CUDA (ignored on CPU)
    seed: int = 0
    # variant W on a dataset with landmarks: weight of the landmark term (train/losses.py), per pixel; 0 = off
    landmark_weight: float = 0.05
    # variant W: weight of a squared-error term beside the L1 terms (train/losses.py); 0 = off (the warp preset: 20;
    # configurations from before it trained without it)
    mse_weight: float = 0.0
    # decay of an exponential moving average of the weights (0 = off): evaluated, checkpointed as "model" and
    # exported in place of the last step's weights (the raw ones are kept as "model_raw" to resume)
    ema: float = 0.0
    # Gaussian noise, in standard deviations of the training frames' values, added to each training batch's
    # normalised gaze and blendshapes (not the pose: the head's motion must match the frame); 0 = off
    cond_noise: float = 0.0
    # the share of each batch's draws that favour the frames the model draws worst: a frame is drawn with
    # probability (1 - hard_frames) / n + hard_frames x its recent squared error / the sum of them (0 = uniform)
    hard_frames: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: Dict[str, Any]) -> "TrainConfig":
        d = {"landmark_weight": 0.0, **d}  # a configuration from before the landmark term trained without it
        return TrainConfig(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(TrainConfig)}})


PRESETS = {
    # Variant W (deformation model): sharp and cheap on a CPU; the default. See docs/evaluation.md.
    "warp": dict(
        model=dict(variant="W", mlp_layers=3, mlp_width=128, n_f=8, warp_grid=64, warp_channels=[64, 64, 32, 24],
                   refine_channels=8, refine_layers=2, warp_geometry=True, warp_aligned=True, warp_eyes=True,
                   warp_learned_rotation=False, warp_dense_geometry=True, warp_coarse_motion=True),
        # refinement 2 x 8 instead of 3 x 16 (30 Nov 2026, twelfth session): 2.3-2.4 ms less a frame (13.2-13.8 ->
        # 10.8-11.3 ms on the AVX2 machine), -0.04 / -0.12 dB held out on lp-d6 / the man's clip (docs/evaluation.md)
        # a squared-error term beside the L1 terms: +0.3 dB held out on both clips of docs/evaluation.md (30 Nov 2026)
        train=dict(batch=4, lr=1e-3, lr_final=5e-5, latent_lr=1e-3, mse_weight=20.0),
    ),
    # Renders 256^2 in real time on one CPU thread in onnxruntime-node (see docs/training.md for measurements).
    "cpu": dict(
        model=dict(grid=64, mlp_layers=4, mlp_width=128, n_f=32, pos_freqs=6, cond_freqs=4, latent_dim=32,
                   decoder_channels=[32, 32, 16]),
        train=dict(batch=4, lr=4e-3, lr_final=2e-4, latent_lr=4e-3),
    ),
    # Paper-sized (our choice; the supplementary with the real sizes is not available): for a GPU.
    "paper": dict(
        model=dict(grid=64, mlp_layers=8, mlp_width=256, n_f=128, pos_freqs=8, cond_freqs=4, latent_dim=64,
                   decoder_channels=[128, 128, 64, 32]),
        train=dict(batch=8, lr=1e-3, lr_final=5e-5, latent_lr=1e-3),
    ),
}


def preset_configs(preset: str, size: int, variant: Optional[str] = None) -> "tuple[ModelConfig, TrainConfig]":
    """The preset's model and training configuration; `variant` overrides the preset's own (W for `warp`, F else)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    p = PRESETS[preset]
    model = dict(p["model"])
    model["variant"] = variant or str(model.get("variant", "F"))
    if model["variant"] == "W" and p["model"].get("variant") != "W":  # W has its own sizes: the warp preset's
        model = dict(PRESETS["warp"]["model"])
    elif model["variant"] != "W" and p["model"].get("variant") == "W":  # A-F under `warp`: the cpu preset's sizes
        model = dict(PRESETS["cpu"]["model"], variant=model["variant"])
    m = ModelConfig(size=size, **model)  # type: ignore[arg-type]
    if m.warp_eyes and not eye_layer_fits(size):  # the preset's eye layer, at a size it cannot take: without it
        m.warp_eyes = False
    t = TrainConfig(**p["train"])  # type: ignore[arg-type]
    return m.validate(), t
