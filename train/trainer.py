"""Training loop: eq. 4 loss, Adam, exponential learning-rate decay, batches of random training frames, mixed
precision on CUDA, periodic held-out PSNR, checkpoints with resume, progress bar."""
from __future__ import annotations

import argparse
import contextlib
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import torch
import torch.nn.functional as Fn

from .data_parallel import Group, Workers
from .checkpoint import export_from_checkpoint, load_checkpoint, save_checkpoint
from .export import parity_summary
from .config import GAZE_SIZE, POSE_SIZE, ModelConfig, TrainConfig, eye_layer_fits, preset_configs
from .dataset import Dataset, conditioning_stats
from .build import AnyModel, build_model, model_flops
from .losses import (LEFT_EYE, MOUTH_OUTER_LIPS, RIGHT_EYE, blurred_tables, landmark_loss, motion_weight_map, region_boxes, region_weight,
                     warp_loss)
from .model import PortraitModel, parameter_count
from .face_geometry import RIGID_LANDMARKS, fit_face_geometry
from .model_warp import WarpModel
from .progress import Progress

CHECKPOINT_FILE = "checkpoint.pt"
PRELOAD_LIMIT_BYTES = 6 * 1024 ** 3
GPU_PRELOAD_LIMIT_BYTES = 4 * 1024 ** 3


def psnr(mse: torch.Tensor) -> torch.Tensor:
    return -10.0 * torch.log10(mse.clamp_min(1e-10))


def eq4_loss(model: AnyModel, out: Dict[str, torch.Tensor], gt: torch.Tensor) -> Dict[str, torch.Tensor]:
    """L = ||I~ - I||^2 + ||C - I'||^2 (the second term with the low-resolution RGB loss, variants E and F)."""
    rec = Fn.mse_loss(out["rgb"].float(), gt)
    terms = {"rec": rec, "loss": rec}
    if model.sw.lowres_loss and "rgb_low" in out:
        low_gt = Fn.adaptive_avg_pool2d(gt, out["rgb_low"].shape[-2:])
        low = Fn.mse_loss(out["rgb_low"].float(), low_gt)
        terms["low"] = low
        terms["loss"] = rec + low
    return terms


# variant W's on/off options, each --NAME / --no-NAME on the command line and warp_NAME in ModelConfig
WARP_SWITCHES = ("aligned", "eyes", "mouth", "learned_rotation", "dense_geometry", "background_gate", "coarse_motion",
                 "learned_reference", "head_outline", "body_motion")

# the learned reference's colours (warp_learned_reference) train at this fraction of the model's learning rate
REFERENCE_LR_SCALE = 0.2

# the background gate's start (init_background_gate): open where the clip's motion is at least 1/GAIN of its
# strongest, spread by this many flow-grid cells (4 px each at 256^2)
GATE_MOTION_GAIN = 3.0
GATE_SPREAD_CELLS = 2
# the body's map (init_body_map) starts off on the reference's face box widened by this fraction of its size a side
BODY_FACE_MARGIN = 0.25


@torch.no_grad()
def start_logits(param: torch.Tensor, p: torch.Tensor) -> None:
    """Sets a learned map of logits (variant W's rigidity, background gate, body map) to the probabilities p."""
    param.copy_(torch.logit(p).to(param.device))


class Trainer:
    # --max-minutes: the training loop stops after this many seconds (then checkpoint and export as usual)
    max_seconds: Optional[float] = None
    run_elapsed: Optional[float] = None  # seconds since run() started, as of this iteration (worker 0's clock)
    stopped_early = False
    # --workers N: this process's place among the workers (train/data_parallel.py); None = the only one
    group: Optional[Group] = None

    @property
    def lead(self) -> bool:
        """Whether this process evaluates, checkpoints and reports (the only worker, or worker 0)."""
        return self.group is None or self.group.lead

    def share(self) -> "tuple[int, int]":
        """This worker's slice of each batch."""
        return (0, self.tcfg.batch) if self.group is None else self.group.share(self.tcfg.batch)

    def __init__(self, ds: Dataset, mcfg: ModelConfig, tcfg: TrainConfig, device: torch.device, preset: str,
                 name: str, fps: float, out_dir: Path, progress: bool = True, bar: bool = True):
        self.ds, self.mcfg, self.tcfg, self.device = ds, mcfg, tcfg, device
        self.preset, self.name, self.fps, self.out_dir = preset, name, fps, out_dir
        self.show_progress = progress
        self.show_bar = bar
        mean, std, neutral = conditioning_stats(ds.cond[ds.train_idx])
        self.norm = {"mean": mean, "std": std, "neutral": neutral}
        self.mean_t = torch.tensor(mean, dtype=torch.float32)
        self.std_t = torch.tensor(std, dtype=torch.float32)
        torch.manual_seed(tcfg.seed)
        if mcfg.switches().warp and mcfg.warp_geometry and ds.landmarks is None:
            sys.stderr.write("train: this dataset has no landmarks (version 1): variant W learns the head motion "
                             "from the pose alone (no fitted face geometry); prepare it again for better results\n")
            mcfg.warp_geometry = False
            mcfg.warp_dense_geometry = False
            mcfg.warp_head_outline = False
        for key, what, where in (("warp_eyes", "eye layer", "eyes"), ("warp_mouth", "mouth layer", "lips")):
            if mcfg.switches().warp and getattr(mcfg, key) and ds.landmarks is None:
                sys.stderr.write(f"train: this dataset has no landmarks (version 1): no {what} (it is placed on the "
                                 f"reference's {where}); prepare it again for better results\n")
                setattr(mcfg, key, False)
        self.model: AnyModel = build_model(mcfg).to(device)
        latent_params = [p for n, p in self.model.named_parameters() if n.startswith("latents.")]
        ref_params = [p for n, p in self.model.named_parameters() if n == "ref_delta"]
        other = [p for n, p in self.model.named_parameters() if not n.startswith("latents.") and n != "ref_delta"]
        groups = [{"params": other, "lr": tcfg.lr, "base_lr": tcfg.lr}]
        if ref_params:  # the learned reference's colours: a slower rate, so that noisy gradients do not paint noise
            lr = tcfg.lr * REFERENCE_LR_SCALE
            groups.append({"params": ref_params, "lr": lr, "base_lr": lr})
        if latent_params:
            groups.append({"params": latent_params, "lr": tcfg.latent_lr, "base_lr": tcfg.latent_lr})
        self.opt = torch.optim.Adam(groups)
        self.amp = device.type == "cuda" and tcfg.amp
        self.scaler = torch.cuda.amp.GradScaler(enabled=self.amp)
        self.iteration = 0
        self.warm_from = 0  # the learning rate ramps up over 200 iterations from here (a fresh Adam)
        self.history: List[Dict[str, Any]] = []
        self.elapsed = 0.0
        self.gen = torch.Generator().manual_seed(tcfg.seed + 1)
        # frames: training set in memory as uint8 when it fits, else read per batch
        n_train = len(ds.train_idx)
        # --hard-frames: each training frame's recent squared error; frames not yet drawn count as badly drawn
        self.frame_error = torch.full((n_train,), 1e-2)
        s = mcfg.size
        self.train_cond = self.normalise(ds.cond[ds.train_idx])
        self.preloaded: Optional[torch.Tensor] = None
        if n_train * 3 * s * s <= PRELOAD_LIMIT_BYTES:
            self.preloaded = torch.from_numpy(ds.read_frames(ds.train_idx, s))
            if device.type == "cuda" and self.preloaded.numel() <= GPU_PRELOAD_LIMIT_BYTES:
                self.preloaded = self.preloaded.to(device)  # no host->device copy per batch
        if len(ds.test_idx):
            pick = np.unique(np.linspace(0, len(ds.test_idx) - 1, min(tcfg.eval_frames, len(ds.test_idx))).round().astype(int))
            self.eval_idx, self.eval_split = ds.test_idx[pick], "test"
        else:  # no held-out frames: report training PSNR and say so
            pick = np.unique(np.linspace(0, n_train - 1, min(tcfg.eval_frames, n_train)).round().astype(int))
            self.eval_idx, self.eval_split = ds.train_idx[pick], "train"
        self.eval_frames = torch.from_numpy(ds.read_frames(self.eval_idx, s))
        self.eval_cond = self.normalise(ds.cond[self.eval_idx])
        self.weight_map: Optional[torch.Tensor] = None
        if isinstance(self.model, WarpModel):
            self.reference_indices = self.choose_references(self.model.refs)
            self.reference_index = self.reference_indices[0]
            refs = torch.from_numpy(ds.read_frames(self.reference_indices, s)).float() / 255.0
            if self.model.refs == 1:
                self.model.set_reference(refs[0].to(device))
            else:
                pos = [int(np.flatnonzero(ds.train_idx == i)[0]) for i in self.reference_indices]
                self.model.set_reference(refs.to(device), self.train_cond[pos, :6].to(device))
            frames = self.preloaded if self.preloaded is not None else self.eval_frames
            self.weight_map = motion_weight_map(frames[:: max(1, len(frames) // 256)].to(device))
            if self.model.geometry:
                self.init_geometry()
            if self.model.background_gate:
                self.init_background_gate()
            if self.model.body_motion:
                self.init_body_map()
            self.init_colour_layers()
            self.blur_tables = blurred_tables(self.model.reference)
            # dataset v2: per-frame mouth and eye boxes from the landmarks weight those regions up, and the landmark
            # term compares each training frame's landmarks with the reference's (one reference)
            self.boxes: Optional[torch.Tensor] = None
            self.train_lm: Optional[torch.Tensor] = None
            if ds.landmarks is not None:
                lm_px = ds.landmarks * (s / ds.size)  # in the model's pixels
                self.boxes = region_boxes(lm_px[ds.train_idx]).to(device)
                if self.model.refs == 1 and tcfg.landmark_weight > 0:
                    self.train_lm = torch.from_numpy(lm_px[ds.train_idx]).float().to(device)
                    self.ref_lm = torch.from_numpy(lm_px[self.reference_index]).float().to(device)
                elif tcfg.landmark_weight > 0 and progress:
                    sys.stderr.write(f"train: no landmark term with {self.model.refs} reference frames (it needs one)\n")
        self.init_output_bias()
        self.ema: Optional[Dict[str, torch.Tensor]] = None
        self.ema_updates = 0
        if tcfg.ema > 0:
            self.ema = self.weights_copy()

    def weights_copy(self) -> Dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def update_ema(self) -> None:
        """ema ← d · ema + (1 − d) · weights, with d ramping up to --ema over the first updates (so that the average
        does not start from the untrained weights)."""
        assert self.ema is not None
        self.ema_updates += 1
        d = min(self.tcfg.ema, (1.0 + self.ema_updates) / (10.0 + self.ema_updates))
        with torch.no_grad():
            for k, v in self.model.state_dict().items():
                e = self.ema[k]
                if e.is_floating_point():
                    e.mul_(d).add_(v.detach(), alpha=1.0 - d)
                else:
                    e.copy_(v)

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block (nothing changes without --ema)."""
        if self.ema is None:
            yield
            return
        raw = self.weights_copy()
        self.model.load_state_dict(self.ema)
        try:
            yield
        finally:
            self.model.load_state_dict(raw)

    def choose_reference(self) -> int:
        """Variant W's reference: the training frame whose normalised driving vector is closest to the neutral face
        (the per-value median), so that every other frame is a small deformation away from it."""
        neutral = np.concatenate([self.norm["neutral"][k] for k in ("pose", "gaze", "blendshapes")]).astype(np.float32)
        z = self.train_cond.numpy()
        zn = (neutral - self.mean_t.numpy()) / self.std_t.numpy()
        return int(self.ds.train_idx[int(np.argmin(((z - zn) ** 2).sum(1)))])

    def init_geometry(self) -> None:
        """Fits the camera and rigid face points to the training frames (train/face_geometry.py), gives them to the
        model with the references' poses, and starts the rigidity map on the head: the reference's face box
        (widened to take in hair and ears) and whatever moves in the clip."""
        assert isinstance(self.model, WarpModel) and self.ds.landmarks is not None and self.weight_map is not None
        s = self.mcfg.size
        lm = self.ds.landmarks * (s / self.ds.size)
        pts, cam, err = fit_face_geometry(lm[self.ds.train_idx], self.ds.cond[self.ds.train_idx, :POSE_SIZE], s,
                                          seed=self.tcfg.seed)
        self.geometry_error_px = err
        dev = self.model.reference.device
        self.model.set_geometry(torch.from_numpy(pts).to(dev), torch.from_numpy(cam).to(dev),
                                self.mean_t[:POSE_SIZE].to(dev), self.std_t[:POSE_SIZE].to(dev),
                                torch.from_numpy(self.ds.cond[self.reference_indices, :POSE_SIZE]).float().to(dev))
        g = self.model.flow_grid
        box = torch.zeros(s, s)
        face = self.reference_face_box(0.25)
        if face is not None:
            x0, y0, x1, y1 = face
            box[y0:y1, x0:x1] = 1.0
        r0 = torch.maximum(box, self.motion_fraction())[None, None]
        r0 = Fn.adaptive_avg_pool2d(r0, g).clamp(0.1, 0.9)
        start_logits(self.model.rigid_map, r0)

    def motion_fraction(self) -> torch.Tensor:
        """How much each pixel moves over the training frames, [S, S] in [0, 1] (1: as much as the most moving 1 %),
        from the loss's motion weight map (1 + 4 x that)."""
        assert self.weight_map is not None
        return ((self.weight_map[0, 0].cpu() - 1.0) / 4.0).clamp(0, 1)

    def reference_face_box(self, margin: float) -> "Optional[tuple[int, int, int, int]]":
        """The box (x0, y0, x1, y1) of the reference frame's landmarks in output pixels, widened by `margin` of its
        size on each side and kept inside the frame; None without landmarks (or where the reference has none)."""
        if self.ds.landmarks is None:
            return None
        s = self.mcfg.size
        p = self.ds.landmarks[self.reference_index] * (s / self.ds.size)
        if not np.isfinite(p).all():
            return None
        lo, hi = p.min(0), p.max(0)
        m = (hi - lo) * margin
        x0, y0 = (np.floor(lo - m)).clip(0, s).astype(int)
        x1, y1 = (np.ceil(hi + m)).clip(0, s).astype(int)
        return int(x0), int(y0), int(x1), int(y1)

    def init_background_gate(self) -> None:
        """Starts the background gate open (0.95) where the clip moves and, with landmarks, on the reference's face (its
        landmarks' box), spread by GATE_SPREAD_CELLS cells so that the head may go a little beyond where it was seen,
        and closed elsewhere (0.05: a learned map, which training can still open where the frames ask for it)."""
        assert isinstance(self.model, WarpModel) and self.weight_map is not None
        g = self.model.flow_grid
        moving = self.motion_fraction() * GATE_MOTION_GAIN
        face = self.reference_face_box(0.0)
        if face is not None:
            x0, y0, x1, y1 = face
            moving[y0:y1, x0:x1] = 1.0
        r = GATE_SPREAD_CELLS
        g0 = Fn.max_pool2d(Fn.adaptive_avg_pool2d(moving[None, None], g), 2 * r + 1, stride=1, padding=r)
        g0 = g0.clamp(0.05, 0.95)
        start_logits(self.model.flow_gate, g0)

    def init_body_map(self) -> None:
        """Starts the body's map (warp_body_motion) at 0.5 where the clip moves outside the reference's face (its
        landmarks' box widened by BODY_FACE_MARGIN of its size on each side: hair and ears move with the head) and at
        0.05 elsewhere. The body's affine starts at zero, so this only decides where its first steps act."""
        assert isinstance(self.model, WarpModel) and self.weight_map is not None
        g = self.model.flow_grid
        moving = self.motion_fraction() * GATE_MOTION_GAIN
        face = self.reference_face_box(BODY_FACE_MARGIN)
        if face is not None:
            x0, y0, x1, y1 = face
            moving[y0:y1, x0:x1] = 0.0
        b0 = Fn.adaptive_avg_pool2d(moving[None, None], g).clamp(0.05, 0.5)
        start_logits(self.model.body_map, b0)

    def init_colour_layers(self) -> None:
        """Places the colour layers on the reference frame: the eye layer centred on its eyes (the mean of its two eye
        contours' landmarks), the mouth layer on its lips and reaching below them (where an opening jaw goes)."""
        assert isinstance(self.model, WarpModel)
        lm = None if self.ds.landmarks is None else self.ds.landmarks[self.reference_index] * (self.mcfg.size / self.ds.size)
        for layer, idx, what, down in ((self.model.eye_patch, LEFT_EYE + RIGHT_EYE, "eye", 0.0),
                                       (self.model.mouth_patch, MOUTH_OUTER_LIPS, "lip", 0.125)):
            if layer is None:
                continue
            p = lm[idx] if lm is not None else np.full((1, 2), np.nan)
            if not np.isfinite(p).all():
                raise ValueError(f"the reference frame {self.reference_index} has no {what} landmarks for the {what} layer")
            cx, cy = p.mean(0)
            layer.set_origin(float(cx), float(cy) + down * layer.h)

    def reference_measures(self) -> "list[tuple[str, np.ndarray, str]]":
        """Per training frame, in the order references are added: (name, how much of it the frame shows, the space
        in which a candidate should stay close to the first reference). The open mouth, the closed eyes, the head
        turned to either side, the wide mouth. Mouth and eyes come from the landmarks (dataset v2; distances over
        the eye-corner distance), else from the tracked blendshapes; the turns from the normalised yaw."""
        lm = self.ds.landmarks
        if lm is not None:
            p = lm[self.ds.train_idx].astype(np.float64)

            def dist(a: int, b: int) -> np.ndarray:
                return np.linalg.norm(p[:, a] - p[:, b], axis=1)

            scale = np.maximum(dist(33, 263), 1e-3)
            raw = {"mouth_open": dist(13, 14) / scale, "eyes_closed": -(dist(159, 145) + dist(386, 374)) / scale,
                   "mouth_wide": dist(61, 291) / scale}
            m = {k: np.nan_to_num(v, nan=float(np.nanmedian(v)) if np.isfinite(v).any() else 0.0) for k, v in raw.items()}
        else:
            b = self.ds.cond[self.ds.train_idx, POSE_SIZE + GAZE_SIZE:]
            m = {"mouth_open": b[:, 25], "eyes_closed": (b[:, 9] + b[:, 10]) / 2, "mouth_wide": (b[:, 44] + b[:, 45]) / 2}
        yaw = self.train_cond.numpy()[:, 1].astype(np.float64)
        return [("mouth_open", m["mouth_open"], "pose"), ("eyes_closed", m["eyes_closed"], "pose"),
                ("turn_left", -yaw, "expression"), ("turn_right", yaw, "expression"),
                ("mouth_wide", m["mouth_wide"], "pose")]

    def choose_references(self, k: int) -> "list[int]":
        """Variant W's K references (dataset indices): the near-neutral frame, then frames showing what it cannot
        (reference_measures: each the candidate among the 3 % most extreme that stays closest to the first
        reference in the other respect), then farthest-point picks in expression space."""
        picks = [self.choose_reference()]
        if k == 1:
            return picks
        z = self.train_cond.numpy()
        pos0 = int(np.flatnonzero(self.ds.train_idx == picks[0])[0])
        near = {"pose": ((z[:, :POSE_SIZE] - z[pos0, :POSE_SIZE]) ** 2).sum(1),
                "expression": ((z[:, POSE_SIZE:] - z[pos0, POSE_SIZE:]) ** 2).sum(1)}
        chosen = {pos0}
        for _name, m, space in self.reference_measures()[: k - 1]:
            cand = np.flatnonzero(m >= np.quantile(m, 0.97))
            cand = [c for c in cand[np.argsort(near[space][cand])] if int(c) not in chosen]
            if cand:
                chosen.add(int(cand[0]))
                picks.append(int(self.ds.train_idx[int(cand[0])]))
        expr = z[:, POSE_SIZE:]
        while len(picks) < k:  # farthest point from those chosen
            d = np.min([((expr - expr[c]) ** 2).sum(1) for c in chosen], 0)
            c = int(np.argmax(d))
            chosen.add(c)
            picks.append(int(self.ds.train_idx[c]))
        return picks

    @torch.no_grad()
    def init_output_bias(self) -> None:
        """Start the RGB outputs at the training frames' mean colour (logit of it) instead of grey: the first
        iterations then learn structure instead of the average colour."""
        if not isinstance(self.model, PortraitModel):  # variant W starts from its reference frame instead
            return
        frames = self.preloaded if self.preloaded is not None else self.eval_frames
        mean = frames[:: max(1, len(frames) // 64)].float().mean(dim=(0, 2, 3)) / 255.0
        logit = torch.log(mean.clamp(0.02, 0.98) / (1 - mean.clamp(0.02, 0.98)))
        for head in (self.model.out_conv, self.model.rgb_head):
            if head is not None and head.bias is not None:
                head.bias.copy_(logit.to(head.bias.device))

    def normalise(self, cond: np.ndarray) -> torch.Tensor:
        return (torch.from_numpy(np.asarray(cond, np.float32)) - self.mean_t) / self.std_t

    # -- state -----------------------------------------------------------------------------------------------
    def state(self) -> Dict[str, Any]:
        return {
            "model_config": self.mcfg.to_dict(), "train_config": self.tcfg.to_dict(), "preset": self.preset,
            "dataset": self.ds.identity(), "norm": self.norm, "name": self.name, "fps": self.fps,
            "iteration": self.iteration, **self.model_weights(),
            "optimizer": self.opt.state_dict(), "scaler": self.scaler.state_dict(), "history": self.history,
            "rng": self.gen.get_state(), "elapsed_s": self.elapsed, "device": str(self.device),
            "frame_error": self.frame_error.clone(),
        }

    def model_weights(self) -> Dict[str, Any]:
        """The checkpoint's weights: "model" is what export and evaluation read (the average under --ema),
        "model_raw" the last step's weights under --ema, which a resumed run goes on from."""
        raw = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        if self.ema is None:
            return {"model": raw}
        return {"model": {k: v.detach().cpu().clone() for k, v in self.ema.items()}, "model_raw": raw,
                "ema_updates": self.ema_updates}

    def load_state(self, ck: Dict[str, Any]) -> None:
        self.model.load_state_dict(ck.get("model_raw", ck["model"]))
        if self.ema is not None:  # the average goes on from the checkpoint's "model" (the raw weights if it had none)
            self.ema = {k: v.detach().clone().to(self.device) for k, v in ck["model"].items()}
            self.ema_updates = int(ck.get("ema_updates", 0))
        if isinstance(self.model, WarpModel):
            self.blur_tables = blurred_tables(self.model.reference)
        if ck.get("optimizer") is not None:
            self.opt.load_state_dict(ck["optimizer"])
        else:  # a checkpoint rebuilt from an avatar folder (--init-from-avatar): a fresh Adam, warmed up again
            self.warm_from = int(ck["iteration"])
        if ck.get("scaler"):
            self.scaler.load_state_dict(ck["scaler"])
        self.iteration = int(ck["iteration"])
        self.history = list(ck.get("history", []))
        self.elapsed = float(ck.get("elapsed_s", 0.0))
        if "rng" in ck:
            self.gen.set_state(ck["rng"])
        fe = ck.get("frame_error")
        if isinstance(fe, torch.Tensor) and fe.shape == self.frame_error.shape:
            self.frame_error = fe.float().clone()
        self.norm = ck["norm"]
        self.mean_t = torch.tensor(self.norm["mean"], dtype=torch.float32)
        self.std_t = torch.tensor(self.norm["std"], dtype=torch.float32)

    def save(self) -> Path:
        path = self.out_dir / CHECKPOINT_FILE
        save_checkpoint(path, self.state())
        return path

    def autocast(self) -> Any:
        """fp16 mixed precision on CUDA; plain fp32 elsewhere."""
        return torch.autocast(device_type="cuda", dtype=torch.float16) if self.amp else contextlib.nullcontext()

    # -- steps -----------------------------------------------------------------------------------------------
    def lr_factor(self, it: int) -> float:
        """Decay over the run: by iterations, or by wall-clock time under --max-minutes (whichever is further), so
        that a time-limited run still ends at the final learning rate."""
        t = min(1.0, it / max(1, self.tcfg.iterations))
        if self.max_seconds and self.run_elapsed is not None:
            t = max(t, min(1.0, self.run_elapsed / self.max_seconds))
        f = (self.tcfg.lr_final / self.tcfg.lr) ** t
        if self.mcfg.switches().warp:  # a short linear warm-up: the flow starts at zero and must not jump
            f *= min(1.0, (it + 1 - self.warm_from) / 200.0)
        return f

    def batch(self) -> "tuple[torch.Tensor, torch.Tensor, torch.Tensor]":
        """The whole batch's frame positions, and this worker's share of their driving values and frames."""
        n = len(self.ds.train_idx)
        if self.tcfg.hard_frames > 0:  # the frames drawn worst come up more often (--hard-frames)
            err = self.frame_error
            p = (1.0 - self.tcfg.hard_frames) / n + self.tcfg.hard_frames * err / err.sum()
            pos = torch.multinomial(p, self.tcfg.batch, replacement=True, generator=self.gen)
        else:
            pos = torch.randint(0, n, (self.tcfg.batch,), generator=self.gen)
        lo, hi = self.share()
        mine = pos[lo:hi]
        if self.preloaded is not None:
            imgs = self.preloaded[mine.to(self.preloaded.device)]
        else:
            imgs = torch.from_numpy(self.ds.read_frames(self.ds.train_idx[mine.numpy()], self.mcfg.size))
        return pos, self.train_cond[mine], imgs

    def step(self) -> Dict[str, float]:
        self.model.train()
        drawn, cond, imgs = self.batch()
        lo, hi = self.share()
        pos = drawn[lo:hi]
        if self.tcfg.cond_noise > 0:  # drawn for the whole batch, so that every worker's generator stays in step
            noise = torch.randn(len(drawn), cond.shape[1] - POSE_SIZE, generator=self.gen)[lo:hi]
            cond = torch.cat([cond[:, :POSE_SIZE], cond[:, POSE_SIZE:] + self.tcfg.cond_noise * noise], 1)
        dev = self.device
        gt = imgs.to(dev, non_blocking=True).float() / 255.0
        f = self.lr_factor(self.iteration)
        for g in self.opt.param_groups:
            g["lr"] = g["base_lr"] * f
        self.opt.zero_grad(set_to_none=True)
        with self.autocast():
            out = self.model(cond.to(dev), frame_idx=pos.to(dev))
        if isinstance(self.model, WarpModel):
            assert self.weight_map is not None
            w = self.weight_map
            if self.boxes is not None:
                w = w + region_weight(self.boxes[pos.to(self.boxes.device)], gt.shape[-1])
            terms = warp_loss(out, gt, w, self.blur_tables, self.tcfg.mse_weight)
            if self.train_lm is not None:
                lm = landmark_loss(out, self.train_lm[pos.to(self.train_lm.device)], self.ref_lm)
                terms["loss"] = terms["loss"] + self.tcfg.landmark_weight * lm
                terms["landmarks"] = lm.detach()
        else:
            terms = eq4_loss(self.model, out, gt)
        with torch.no_grad():  # each drawn frame's squared error (for --hard-frames)
            e = ((out["rgb"].detach().float() - gt) ** 2).mean(dim=(1, 2, 3)).cpu() if self.tcfg.hard_frames > 0 \
                else torch.zeros(len(pos))
        self.scaler.scale(terms["loss"]).backward()
        if self.group is not None:  # gradients and loss terms averaged over the workers, the whole batch's errors
            names = list(terms)
            mean, e = self.group.reduce_step(list(self.model.parameters()),
                                             torch.stack([terms[k].detach().float().cpu() for k in names]), e, lo)
            terms = {k: mean[i] for i, k in enumerate(names)}
        if self.tcfg.hard_frames > 0:  # each drawn frame's squared error, smoothed over its visits
            self.frame_error[drawn] = 0.5 * self.frame_error[drawn] + 0.5 * e
        self.scaler.step(self.opt)
        self.scaler.update()
        self.iteration += 1
        if self.ema is not None and self.lead:
            self.update_ema()
        return {k: float(v.detach()) for k, v in terms.items()}

    @torch.no_grad()
    def evaluate(self) -> Dict[str, Any]:
        """PSNR on held-out frames with the fixed test-time latent code (mean of the training codes); under --ema,
        of the averaged weights (and of the last step's as psnr_raw)."""
        with self.averaged_weights():
            p = self.eval_psnr()
        rec = {"iteration": self.iteration, "psnr": p, "split": self.eval_split, "frames": int(len(self.eval_idx))}
        if self.ema is not None:
            rec["psnr_raw"] = self.eval_psnr()
        self.history.append(rec)
        return rec

    @torch.no_grad()
    def eval_psnr(self) -> float:
        self.model.eval()
        vals = []
        for i in range(0, len(self.eval_idx), 4):
            cond = self.eval_cond[i:i + 4].to(self.device)
            gt = self.eval_frames[i:i + 4].to(self.device).float() / 255.0
            with self.autocast():
                out = self.model(cond, want_low=False)["rgb"].float()
            vals.append(psnr(((out - gt) ** 2).mean(dim=(1, 2, 3))).cpu())
        return float(torch.cat(vals).mean())

    def run(self) -> None:
        t = self.tcfg
        bar = Progress(t.iterations, start=self.iteration, enabled=self.show_progress and self.lead,
                       lines_only=not self.show_bar, log_every_s=30.0 if not self.show_bar else 10.0)
        loss_avg: Optional[float] = None
        t_start = time.time() - self.elapsed
        last_eval = self.history[-1]["psnr"] if self.history else None
        run_started = time.time()
        try:
            while self.iteration < t.iterations:
                self.run_elapsed = time.time() - run_started
                if self.group is not None:  # worker 0's clock in every worker: they stop at the same iteration
                    self.run_elapsed = self.group.clock(self.run_elapsed)
                if self.max_seconds is not None and self.run_elapsed >= self.max_seconds:
                    self.stopped_early = True
                    if self.lead and (not self.history or self.history[-1]["iteration"] != self.iteration):
                        ev = self.evaluate()
                        bar.message(eval_message(ev))
                    break
                terms = self.step()
                if not math.isfinite(terms["loss"]):
                    raise RuntimeError(f"loss became {terms['loss']} at iteration {self.iteration}")
                loss_avg = terms["loss"] if loss_avg is None else 0.95 * loss_avg + 0.05 * terms["loss"]
                self.elapsed = time.time() - t_start
                if not self.lead:
                    continue
                if self.iteration % t.eval_every == 0 or self.iteration == t.iterations:
                    ev = self.evaluate()
                    last_eval = ev["psnr"]
                    bar.message(eval_message(ev))
                if self.iteration % t.checkpoint_every == 0 or self.iteration == t.iterations:
                    self.save()
                fields = {"loss": f"{loss_avg:.5f}", "psnr": f"{float(psnr(torch.tensor(terms['rec']))):.2f}dB"}
                if last_eval is not None:
                    fields[self.eval_split] = f"{last_eval:.2f}dB"
                bar.update(self.iteration, force=self.iteration == t.iterations, **fields)
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the checkpoint write
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            bar.close()
            if self.lead:
                self.save()
            sys.stderr.write(f"train: interrupted at iteration {self.iteration}; checkpoint saved, continue with --resume\n")
            raise
        bar.close()


def restore(trainer: Trainer, ck: Dict[str, Any]) -> None:
    """A trainer's state from a checkpoint (--resume, --init-from-avatar), driving values normalised as it was."""
    trainer.load_state(ck)
    trainer.train_cond = trainer.normalise(trainer.ds.cond[trainer.ds.train_idx])
    trainer.eval_cond = trainer.normalise(trainer.ds.cond[trainer.eval_idx])


def with_new_parameters(trainer: Trainer, ck: Dict[str, Any]) -> None:
    """Gives a checkpoint the parameters its model lacks and the trainer's has (--init-from-avatar adding
    --body-motion), at the values the trainer started them at (the body's affine zero, its map from
    init_body_map); the workers of --workers N get the completed checkpoint."""
    fresh = trainer.model.state_dict()
    for key in ("model", "model_raw"):
        if key in ck:
            missing = {k: v.detach().cpu().clone() for k, v in fresh.items() if k not in ck[key]}
            ck[key] = {**ck[key], **missing}


def build_worker_trainer(job: Dict[str, Any], group: Group) -> Trainer:
    """Workers 1..N-1 of --workers N (train/data_parallel.py): worker 0's configuration and checkpoint, quiet,
    then worker 0's weights."""
    ds = Dataset(Path(job["data"]))
    mcfg = ModelConfig.from_dict(dict(job["model_config"]))
    tcfg = TrainConfig.from_dict(dict(job["train_config"]))
    trainer = Trainer(ds, mcfg, tcfg, torch.device("cpu"), job["preset"], job["name"], ds.fps, Path(job["out"]),
                      progress=False)
    if job["checkpoint"] is not None:
        restore(trainer, job["checkpoint"])
    trainer.max_seconds = job["max_seconds"]
    trainer.group = group
    group.broadcast_weights(trainer.model)
    return trainer


def eval_message(ev: Dict[str, Any]) -> str:
    raw = f" (the last step's weights {ev['psnr_raw']:.2f} dB)" if "psnr_raw" in ev else ""
    return f"iteration {ev['iteration']}: {ev['split']} PSNR {ev['psnr']:.2f} dB over {ev['frames']} frames{raw}"


def _pick_device(name: Optional[str]) -> torch.device:
    if name:
        d = torch.device(name)
        if d.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda asked for, but PyTorch sees no CUDA device")
        return d
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def apply_warp_options(mcfg: ModelConfig, args: argparse.Namespace) -> List[str]:
    """A new run's variant-W options on the preset's model configuration: --no-geometry, --refs K, each of
    WARP_SWITCHES as --NAME / --no-NAME (--aligned, --eyes, --mouth, --learned-rotation, --dense-geometry,
    --background-gate, --coarse-motion, --learned-reference, --head-outline, --body-motion), --refine-channels N,
    --refine-layers N. The head-aligned maps and the colour layers need one reference: --refs K > 1 turns the
    preset's off (a note is returned) and refuses them when asked for explicitly."""
    opt = lambda name: getattr(args, name, None)  # noqa: E731
    names = ["refs", "no_geometry"] + [f for on in WARP_SWITCHES for f in (on, "no_" + on)] + \
        ["refine_channels", "refine_layers"]
    given = [f for f in names if opt(f) not in (None, False)]
    if given and not mcfg.switches().warp:
        raise ValueError(f"--{given[0].replace('_', '-')} is for variant W (preset warp)")
    notes: List[str] = []
    for on in WARP_SWITCHES:
        off, key = "no_" + on, "warp_" + on
        if opt(on) and opt(off):
            flag = on.replace("_", "-")
            raise ValueError(f"--{flag} and --no-{flag} contradict each other")
        if opt(on) or opt(off):
            setattr(mcfg, key, bool(opt(on)))
    if opt("no_geometry"):
        for flag in ("dense_geometry", "head_outline"):
            if opt(flag):
                raise ValueError(f"--{flag.replace('_', '-')} needs the fitted geometry: drop --no-geometry")
        mcfg.warp_geometry = mcfg.warp_dense_geometry = mcfg.warp_head_outline = False
    if opt("head_outline") and not mcfg.warp_dense_geometry:
        raise ValueError("--head-outline needs the dense warp: drop --no-dense-geometry")
    if not mcfg.warp_dense_geometry:
        mcfg.warp_head_outline = False
    if opt("refine_channels") is not None:
        mcfg.refine_channels = opt("refine_channels")
    if opt("refine_layers") is not None:
        mcfg.refine_layers = opt("refine_layers")
    if opt("refs") is not None:
        mcfg.warp_refs = opt("refs")
        for flag, key, what in (("aligned", "warp_aligned", "head-aligned expression maps"),
                                ("eyes", "warp_eyes", "eye layer"), ("mouth", "warp_mouth", "mouth layer"),
                                ("dense_geometry", "warp_dense_geometry", "geometry's dense warp"),
                                ("head_outline", "warp_head_outline", "head's outline in the dense warp"),
                                ("coarse_motion", "warp_coarse_motion", "displacement composed on the flow grid")):
            if mcfg.warp_refs > 1 and getattr(mcfg, key):
                if opt(flag):
                    raise ValueError(f"--{flag.replace('_', '-')} needs one reference frame (--refs 1), got --refs {mcfg.warp_refs}")
                setattr(mcfg, key, False)
                notes.append(f"--refs {mcfg.warp_refs}: without the {what} (they need one reference frame)")
    for flag, key in (("eyes", "warp_eyes"), ("mouth", "warp_mouth")):
        if getattr(mcfg, key) and not eye_layer_fits(mcfg.size):
            raise ValueError(f"--{flag} needs an output size of 128, 256, 512 or 1024, got {mcfg.size}")
    mcfg.validate()
    return notes


def checkpoint_from_avatar_for(avatar_dir: Path, ds: Dataset) -> Dict[str, Any]:
    """A checkpoint rebuilt from a trained variant W avatar folder (weights read back from its avatar.onnx; no
    optimiser state), to go on training it on `ds`, which must hold the same frames it was trained on (the same
    source, frame count, size and split; the dataset may have been made again, e.g. on another machine)."""
    from .reexport import checkpoint_from_avatar
    ck = checkpoint_from_avatar(avatar_dir)
    have, want = ck["dataset"], ds.identity()
    for k in ("sourceSha256", "frameCount", "size", "trainFrames", "testFrames"):
        if have.get(k) != want[k]:
            raise ValueError(f"{avatar_dir} was trained on other data than {ds.root} ({k}: {have.get(k)!r} against "
                             f"{want[k]!r}); --init-from-avatar needs the same frames")
    ck["dataset"], ck["optimizer"] = want, None
    return ck


def run_training(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    ds = Dataset(args.data)
    device = _pick_device(args.device)
    ck_path = out / CHECKPOINT_FILE
    ck = None
    init = getattr(args, "init_from_avatar", None)
    if args.resume and init is not None:
        raise ValueError("--resume and --init-from-avatar exclude each other")
    if init is not None:
        if ck_path.exists():
            raise ValueError(f"{ck_path} exists: --init-from-avatar starts a new run, choose another --out")
        ck = checkpoint_from_avatar_for(Path(init), ds)
    elif args.resume:
        ck = load_checkpoint(ck_path, map_location="cpu")
        if ck["dataset"]["manifestSha256"] != ds.identity()["manifestSha256"]:
            raise ValueError(f"{ck_path} was trained on a different dataset ({ck['dataset'].get('path')}); "
                             f"--resume needs the same dataset.json")
    add_body = False
    if ck is not None:
        mcfg = ModelConfig.from_dict(dict(ck["model_config"]))
        tcfg = TrainConfig.from_dict(ck["train_config"])
        # --init-from-avatar DIR --body-motion on an avatar made without it: the body's motion is added, starting
        # at zero (the avatar renders as before until the training moves it)
        add_body = init is not None and bool(getattr(args, "body_motion", False)) and not mcfg.warp_body_motion
        if add_body:
            if not mcfg.warp_coarse_motion:
                raise ValueError(f"--body-motion needs coarse motion, which {init} was trained without")
            mcfg.warp_body_motion = True
            ck["model_config"] = mcfg.to_dict()
        for flag, have in (("preset", ck.get("preset")), ("variant", mcfg.variant), ("size", mcfg.size),
                           ("refs", mcfg.warp_refs), ("refine_channels", mcfg.refine_channels),
                           ("refine_layers", mcfg.refine_layers)):
            given = getattr(args, flag, None)
            if given is not None and given != have:
                raise ValueError(f"--{flag.replace('_', '-')} {given} does not match the checkpoint's {have}")
        for name, what in (("dense_geometry", "dense warp"), ("background_gate", "background gate"),
                           ("coarse_motion", "coarse motion"), ("learned_reference", "learned reference"),
                           ("head_outline", "head outline"), ("body_motion", "body motion")):
            have = getattr(mcfg, "warp_" + name)  # with add_body, body motion is on already: --body-motion matches
            for flag, on in ((name, True), ("no_" + name, False)):
                if getattr(args, flag, False) and have != on:
                    raise ValueError(f"--{flag.replace('_', '-')} does not match the checkpoint, whose {what} is "
                                     f"{'on' if have else 'off'}")
        preset = ck.get("preset") or args.preset or "warp"
    elif ck_path.exists():
        raise ValueError(f"{ck_path} exists: pass --resume to continue it, or choose another --out")
    else:
        preset = args.preset or "warp"
        mcfg, tcfg = preset_configs(preset, args.size or ds.size, args.variant)
        mcfg.n_latents = len(ds.train_idx)
        tcfg.seed = args.seed
        for note in apply_warp_options(mcfg, args):
            sys.stderr.write(f"train: {note}\n")
    if args.iterations is not None:
        tcfg.iterations = args.iterations
    if args.batch is not None:
        tcfg.batch = args.batch
    if args.lr is not None:
        tcfg.lr, tcfg.lr_final = args.lr, args.lr / 10
    if args.eval_every is not None:
        tcfg.eval_every = args.eval_every
    if args.checkpoint_every is not None:
        tcfg.checkpoint_every = args.checkpoint_every
    if args.no_amp:
        tcfg.amp = False
    if getattr(args, "landmark_weight", None) is not None:
        if not mcfg.switches().warp:
            raise ValueError("--landmark-weight is for variant W (preset warp)")
        tcfg.landmark_weight = args.landmark_weight
    if getattr(args, "mse_weight", None) is not None:
        if not mcfg.switches().warp:
            raise ValueError("--mse-weight is for variant W (preset warp)")
        tcfg.mse_weight = args.mse_weight
    if getattr(args, "cond_noise", None) is not None:
        tcfg.cond_noise = args.cond_noise
    if getattr(args, "hard_frames", None) is not None:
        tcfg.hard_frames = args.hard_frames
    if getattr(args, "ema", None) is not None:  # on a resumed run too: the average starts from its weights
        tcfg.ema = args.ema
    n_workers = int(getattr(args, "workers", None) or 1)
    if n_workers > 1 and device.type != "cpu":
        sys.stderr.write(f"train: --workers {n_workers} is for training on the CPU; this run is on {device.type}, "
                         f"in one process\n")
        n_workers = 1
    if n_workers > 1:
        if tcfg.batch % n_workers:
            raise ValueError(f"--workers {n_workers} must divide the batch ({tcfg.batch} frames): each worker takes "
                             f"an equal share; choose --batch")
    mcfg.validate()
    name = args.name or (ck.get("name") if ck else None) or Path(ds.manifest["source"]["file"]).stem or "avatar"
    trainer = Trainer(ds, mcfg, tcfg, device, preset, name, ds.fps, out, progress=True, bar=not args.no_progress)
    if getattr(args, "max_minutes", None):
        trainer.max_seconds = float(args.max_minutes) * 60.0
    if ck is not None:
        if add_body:
            with_new_parameters(trainer, ck)
            sys.stderr.write(f"train: {init} was trained without body motion: added, starting at zero\n")
        restore(trainer, ck)
    flops = model_flops(mcfg)["total"]
    sys.stderr.write(
        f"train: {len(ds.train_idx)} training / {len(ds.test_idx)} held-out valid frames of {ds.n}; preset {preset}, "
        f"variant {mcfg.variant}, {mcfg.size}x{mcfg.size}, {parameter_count(trainer.model)} parameters "
        f"(+{parameter_count(trainer.model, True) - parameter_count(trainer.model)} latent), "
        f"{flops / 1e9:.2f} GFLOP/frame; device {device}{' (mixed precision)' if trainer.amp else ''}; "
        f"iteration {trainer.iteration} of {tcfg.iterations}\n")
    if getattr(trainer, "geometry_error_px", None) is not None:
        sys.stderr.write(f"train: head geometry fitted to the landmarks (camera + {len(RIGID_LANDMARKS)} rigid face "
                         f"points): mean reprojection error {trainer.geometry_error_px:.2f} px\n")
    workers: Optional[Workers] = None
    if n_workers > 1:
        job = {"data": str(args.data), "out": str(out), "model_config": mcfg.to_dict(),
               "train_config": tcfg.to_dict(), "preset": preset, "name": name, "checkpoint": ck,
               "max_seconds": trainer.max_seconds}
        workers = Workers(n_workers, torch.get_num_threads(), job)
        trainer.group = workers.group
        trainer.group.broadcast_weights(trainer.model)
        sys.stderr.write(f"train: {n_workers} workers, {tcfg.batch // n_workers} frames of each batch and "
                         f"{torch.get_num_threads()} torch thread(s) each\n")
    prev = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        trainer.run()
    finally:
        signal.signal(signal.SIGTERM, prev)
        if workers is not None:
            workers.close()
    path = trainer.save()
    if trainer.stopped_early:
        sys.stderr.write(f"train: stopped by --max-minutes {args.max_minutes:g} at iteration {trainer.iteration} of {tcfg.iterations}\n")
    last = trainer.history[-1] if trainer.history else None
    if last:
        sys.stderr.write(f"train: {last['split']} PSNR {last['psnr']:.2f} dB after {trainer.iteration} iterations; "
                         f"checkpoint {path}\n")
    if not args.no_export:
        m = export_from_checkpoint(load_checkpoint(path), out, name=name, fps=ds.fps, int8=args.int8)
        sys.stderr.write(f"train: exported {out / 'avatar.onnx'} ({m['width']}x{m['height']}, parity "
                         f"{parity_summary(m['training'])}) and avatar.json\n")
    return 0
