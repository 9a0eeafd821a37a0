"""Command line: `train` (fit a model to a dataset folder, then export) and `export` (write an avatar folder)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import List, Optional

from .config import PRESETS, VARIANTS, VARIANT_DESCRIPTIONS


def _size(v: str) -> int:
    n = int(v)
    if n < 16 or n > 4096 or n % 2:
        raise argparse.ArgumentTypeError("size must be an even number of pixels in 16..4096")
    return n


def _switch(p: argparse.ArgumentParser, name: str, on_help: str, off_help: str) -> None:
    """A pair of flags --NAME / --no-NAME (the preset decides when neither is given; both together are refused)."""
    p.add_argument(f"--{name}", action="store_true", help=on_help)
    p.add_argument(f"--no-{name}", action="store_true", help=off_help)


def _positive_int(v: str) -> int:
    n = int(v)
    if n < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return n


def _fps(v: str) -> float:
    f = float(v)
    if not (1 <= f <= 120):
        raise argparse.ArgumentTypeError("fps must be in 1..120")
    return f


def _non_negative_float(v: str) -> float:
    try:
        f = float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {v!r}") from None
    if not (f >= 0) or f == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {v!r}")
    return f


def _ema_decay(v: str) -> float:
    f = _non_negative_float(v)
    if f >= 1:
        raise argparse.ArgumentTypeError(f"must be 0 (off) or a decay below 1, e.g. 0.999; got {v!r}")
    return f


def _fraction(v: str) -> float:
    f = _non_negative_float(v)
    if f > 1:
        raise argparse.ArgumentTypeError(f"must be a fraction from 0 to 1, got {v!r}")
    return f


def _minutes(v: str) -> float:
    f = float(v)
    if not (f > 0) or f != f or f == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of minutes")
    return f


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m train", description="Dynamic Neural Portraits: train and export avatars.")
    p.add_argument("--threads", type=_positive_int, default=None,
                   help="torch CPU threads (default: $DNP_TORCH_THREADS or 2); OPENBLAS_NUM_THREADS is set to 1")
    sub = p.add_subparsers(dest="command", required=True)
    variants = "; ".join(f"{k}: {v}" for k, v in VARIANT_DESCRIPTIONS.items())

    t = sub.add_parser("train", help="train a model on a dataset folder (from `dnp prepare`), then export the avatar")
    t.add_argument("--data", required=True, type=Path, help="dataset folder (dataset.json, frames/, *.npy)")
    t.add_argument("--out", required=True, type=Path, help="avatar folder: checkpoint.pt, avatar.onnx, avatar.json")
    t.add_argument("--preset", choices=sorted(PRESETS), default=None, help="model and training sizes: warp (variant W, the default), cpu, paper")
    t.add_argument("--variant", choices=list(VARIANTS), default=None, help=f"variant (default: the preset's, W for warp, F otherwise). {variants}")
    t.add_argument("--refs", type=_positive_int, default=None,
                   help="variant W: reference frames the model warps (default: the preset's; 1 = the near-neutral "
                        "frame only; 2+ add the open mouth, the closed eyes, the wide mouth, ...; at most 8)")
    t.add_argument("--no-geometry", action="store_true",
                   help="variant W: learn the rigid head motion from the pose alone instead of a camera and face "
                        "points fitted to the dataset's landmarks (the default when the dataset has landmarks)")
    _switch(t, "aligned",
            "variant W, one reference: lay the expression maps out in the reference's head-aligned frame and carry "
            "them with the rigid head motion (expressions then move with the head); the default",
            "variant W: expression maps in the output's frame (no --aligned)")
    _switch(t, "eyes",
            "variant W, one reference: an eye layer (a full-resolution change of colour over both eyes drawn from the "
            "eye and brow controls and gaze, carried by the head motion): lids that close, sharp irises; needs "
            "landmarks (dataset v2); the default at sizes 128, 256, 512, 1024",
            "variant W: no eye layer (no --eyes)")
    _switch(t, "mouth",
            "variant W, one reference: a mouth layer (a full-resolution change of colour over the lips and below "
            "them, drawn from the jaw and mouth controls, carried by the head motion): teeth and an open mouth's "
            "interior; needs landmarks (dataset v2); sizes 128, 256, 512, 1024",
            "variant W: no mouth layer (no --mouth; the default)")
    _switch(t, "learned-rotation",
            "variant W with the fitted geometry: the learned correction of the head motion may rotate it too "
            "(otherwise it only shifts and scales it)",
            "variant W: the learned correction only shifts and scales the head (no --learned-rotation)")
    _switch(t, "dense-geometry",
            "variant W with the fitted geometry, one reference: the head moves by the geometry's dense warp (a "
            "thin-plate spline through the fitted face points), not only its affine: the nose and cheeks of a turned "
            "head move as a 3D head's do; the default",
            "variant W: the geometry moves the head by its affine only (no --dense-geometry)")
    _switch(t, "background-gate",
            "variant W: the expression flow is multiplied by a learned map that starts closed where the training "
            "clip never changes (the background), so that held-out expressions do not drag the background's edges",
            "variant W: no background gate (no --background-gate; the default)")
    _switch(t, "coarse-motion",
            "variant W, one reference: the warp's displacement is composed on the flow grid and up-sampled once, "
            "and the refinement's sigmoid is taken before its up-sampling (~0.5 ms a frame less at 256^2 on one "
            "AVX2 thread); the default",
            "variant W: the displacement's parts are up-sampled to full resolution and composed there (the warp "
            "preset before 1 Dec 2026; no --coarse-motion)")
    _switch(t, "learned-reference",
            "variant W, one reference: the reference frame's colours are learned too (a change added to each pixel, "
            "from zero), so that training can sharpen what the bilinear warp blurs and clean the frame's own noise; "
            "folded into the graph's constant: no render cost",
            "variant W: the reference frame's colours are the frame's (no --learned-reference; the default)")
    _switch(t, "head-outline",
            "variant W with the dense warp: its spline also goes through points of the head's outline above the face "
            "(placed from the fitted face points), so that a turned head's hair and skull outline move as an "
            "outline does, not as far as the forehead; five more points in the spline (off by default: it lost "
            "0.2 dB on the man's clip, docs/training.md)",
            "variant W: the dense warp goes through the face points only (no --head-outline; the default)")
    _switch(t, "body-motion",
            "variant W with coarse motion: the body below the head moves by its own affine, linear in the whole "
            "head pose (translation and roll too), weighted by a learned map started on what moves in the clip "
            "outside the face: shoulders that follow the head partly (off by default); with --init-from-avatar, "
            "added to an avatar made without it, starting at zero",
            "variant W: the body moves only as a fraction of the head's motion (no --body-motion; the default)")
    t.add_argument("--refine-channels", type=_positive_int, default=None,
                   help="variant W: channels of the refinement network at half resolution (preset default 8; the "
                        "default avatar has 16: more detail, 2.4 ms more a frame)")
    t.add_argument("--refine-layers", type=_positive_int, default=None,
                   help="variant W: its 3x3 convolutions before the output one (preset default 2)")
    t.add_argument("--landmark-weight", type=_non_negative_float, default=None,
                   help="variant W: weight of the landmark term (where the model reads each face landmark of a frame "
                        "should be that landmark in the reference; per pixel of mean distance; default 0.05, 0 = off)")
    t.add_argument("--mse-weight", type=_non_negative_float, default=None,
                   help="variant W: weight of a squared-error term beside the L1 terms (large errors, such as an edge a "
                        "pixel off, count more, as in PSNR); default 20 with the warp preset, 0 = off")
    t.add_argument("--ema", type=_ema_decay, default=None, metavar="DECAY",
                   help="keep an exponential moving average of the weights with this decay per iteration (e.g. 0.999: "
                        "about the last 1000 iterations); the average is evaluated, checkpointed and exported; 0 = off "
                        "(the default)")
    t.add_argument("--cond-noise", type=_non_negative_float, default=None, metavar="SIGMA",
                   help="add Gaussian noise of SIGMA standard deviations to each training batch's gaze and blendshape "
                        "values (not the pose), so that nearby driving vectors give nearby pictures; 0 = off (default)")
    t.add_argument("--hard-frames", type=_fraction, default=None, metavar="F",
                   help="draw training frames by how badly they are drawn: each frame's probability is (1 - F) / n + F x "
                        "its recent squared error / the sum of them, so the frames the model renders worst (rare poses "
                        "and expressions) come up more often; 0 = every frame equally often (the default)")
    t.add_argument("--workers", type=_positive_int, default=None, metavar="N",
                   help="CPU only: spread the training over N processes, each rendering an equal share of every batch "
                        "(--batch must be a multiple of N) with its own --threads (default 1 each); the same training, "
                        "1.1x the iterations a minute of one process with 2 threads, on 2 cores (docs/training.md); on a GPU the "
                        "run stays in one process; default 1")
    t.add_argument("--iterations", type=_positive_int, default=None, help="total training iterations (preset default 20000)")
    t.add_argument("--batch", type=_positive_int, default=None, help="frames per iteration (preset default)")
    t.add_argument("--lr", type=float, default=None, help="initial learning rate (decays exponentially to lr/10)")
    t.add_argument("--size", type=_size, default=None, help="output size (default: the dataset's frame size)")
    t.add_argument("--eval-every", type=_positive_int, default=None, help="iterations between held-out PSNR checks (500)")
    t.add_argument("--checkpoint-every", type=_positive_int, default=None, help="iterations between checkpoints (1000)")
    t.add_argument("--max-minutes", type=_minutes, default=None,
                   help="stop the training loop after M minutes of wall-clock time (then checkpoint and export as usual)")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt (same dataset and configuration)")
    t.add_argument("--init-from-avatar", type=Path, default=None, metavar="DIR",
                   help="go on training a variant W avatar folder whose checkpoint is gone (e.g. the shipped default): "
                        "weights, configuration and iteration count read back from DIR/avatar.onnx and avatar.json, a "
                        "fresh optimiser; --data must hold the frames it was trained on; options such as --mse-weight, "
                        "--lr and --max-minutes apply as with --resume")
    t.add_argument("--name", default=None, help="avatar display name (default: the dataset source file name)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    t.add_argument("--no-amp", action="store_true", help="disable mixed precision on CUDA")
    t.add_argument("--no-export", action="store_true", help="only write the checkpoint")
    t.add_argument("--int8", action="store_true", help="also try an int8 model for CPU; used as avatar.onnx only if "
                   "faster and <= 0.2 dB PSNR worse on held-out frames (fp32 kept as avatar.fp32.onnx)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (periodic log lines only)")
    _format_args(t)

    e = sub.add_parser("export", help="write an avatar folder (avatar.onnx + avatar.json) from a checkpoint, or untrained")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", type=Path, help="checkpoint.pt written by `train`")
    src.add_argument("--untrained", action="store_true", help="random (smooth) weights, for transport tests")
    src.add_argument("--from-avatar", type=Path, metavar="DIR",
                     help="re-export an avatar folder with this version's graph when its checkpoint is gone (variant W): "
                          "the weights are read back from DIR/avatar.onnx; written only if the new graph gives the same "
                          "frames (DIR may be --out; other files there are kept)")
    e.add_argument("--out", required=True, type=Path, help="output folder")
    e.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="with --untrained (default cpu)")
    e.add_argument("--variant", choices=list(VARIANTS), default=None,
                   help="with --untrained (default: the preset's, W for warp, F otherwise)")
    e.add_argument("--size", type=_size, default=256, help="with --untrained: output size (default 256)")
    e.add_argument("--fps", type=_fps, default=None, help="render rate written to avatar.json (default 25 or the dataset's)")
    e.add_argument("--name", default=None, help="avatar display name")
    e.add_argument("--seed", type=int, default=0, help="with --untrained: weight seed")
    e.add_argument("--int8", action="store_true", help="with --checkpoint: try int8 (see `train --help`)")
    e.add_argument("--neutral", type=Path, default=None,
                   help="with --checkpoint: JSON file {pose[6], gaze[2], blendshapes[52]} written as the avatar's "
                        "neutral face (default: the median of the training frames), e.g. a generator's neutral")
    _format_args(e)
    return p


def _format_args(p: argparse.ArgumentParser) -> None:
    """Export format options (train/export.py ExportFormat), shared by `train` and `export`."""
    p.add_argument("--output", choices=["rgb", "yuv420p"], default="rgb",
                   help="model output: rgb (float32 [batch, 3, H, W], the default) or yuv420p (the colour conversion "
                        "in the graph: uint8 [batch, H*W*3/2], packed as the server's encoder takes it)")
    p.add_argument("--yuv", action="store_const", const="yuv420p", dest="output", help="same as --output yuv420p")
    p.add_argument("--fp16", action="store_true", help="weights and compute in float16 (for GPU providers: WebGPU, "
                   "CUDA); input and output types unchanged; checked against the float32 model")


def main(argv: Optional[List[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        import torch  # noqa: F401
    except ImportError:
        sys.stderr.write("train: PyTorch is not installed for this Python. Install it with:\n"
                         "  apt-get install python3-torch libopenblas0-pthread python3-numpy python3-pil\n")
        return 3
    workers = getattr(args, "workers", None) or 1
    threads = args.threads or (1 if workers > 1 else int(os.environ.get("DNP_TORCH_THREADS", "2")))
    torch.set_num_threads(threads)
    try:
        if args.command == "export":
            from .commands import cmd_export
            return cmd_export(args)
        from .commands import cmd_train
        return cmd_train(args)
    except KeyboardInterrupt:
        sys.stderr.write("\ntrain: interrupted\n")
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as err:
        sys.stderr.write(f"train: {err}\n")
        return 1
