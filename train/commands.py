"""The sub-commands behind the CLI (argument parsing is in cli.py)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from .config import preset_configs
from .export import ExportFormat, default_export_format, export_avatar, parity_summary, untrained_conditioning
from .build import build_model
from .model import smooth_untrained_init
from .model_warp import WarpModel, untrained_warp_init


def export_format(args: argparse.Namespace) -> ExportFormat:
    fmt = ExportFormat(output=args.output, precision="fp16" if args.fp16 else "fp32")
    if args.int8 and fmt != ExportFormat():
        raise ValueError("--int8 writes a float32 RGB model for the CPU; it cannot be combined with --output yuv420p or --fp16")
    return fmt


def cmd_export(args: argparse.Namespace) -> int:
    with default_export_format(export_format(args)):
        return _cmd_export(args)


def _cmd_export(args: argparse.Namespace) -> int:
    t0 = time.time()
    if args.from_avatar is not None:
        if args.int8 or args.neutral or args.fps or args.name:
            raise ValueError("--from-avatar keeps the avatar's name, rate and neutral face and writes float32: "
                             "--int8, --neutral, --fps and --name do not apply")
        if export_format(args) != ExportFormat():
            raise ValueError("--from-avatar writes a float32 RGB graph (re-export that, then export other formats "
                             "from a checkpoint)")
        from .reexport import reexport
        manifest = reexport(args.from_avatar, args.out)
        t = manifest["training"]
        sys.stderr.write(f"train: re-exported {args.from_avatar} to {args.out / 'avatar.onnx'} "
                         f"({t['flopsPerFrame'] / 1e9:.2f} GFLOP/frame; frames within "
                         f"{t['reExported']['maxAbsDiffFromPrevious']:.2g} of the previous graph's) in {time.time() - t0:.1f} s\n")
        return 0
    if args.untrained and args.int8:
        raise ValueError("--int8 needs --checkpoint (it is judged on the training dataset)")
    if args.untrained:
        cfg, _ = preset_configs(args.preset, args.size, args.variant)
        cfg.n_latents = 1
        torch.manual_seed(args.seed)
        model = build_model(cfg).eval()
        with torch.no_grad():
            if isinstance(model, WarpModel):
                untrained_warp_init(model, args.seed)
            else:
                smooth_untrained_init(model, args.seed)
        cond = untrained_conditioning()
        latent = model.mean_latent()
        training = {"provenance": "untrained", "untrained": True, "preset": args.preset, "variant": cfg.variant,
                    "seed": args.seed, "latentCode": "mean of the (random) codes" if latent is not None else None}
        manifest = export_avatar(model, latent, args.out, args.name or f"untrained-{args.preset}-{args.size}",
                                 args.fps or 25.0, cond["mean"], cond["std"], cond["neutral"], training, seed=args.seed)
    else:
        from .checkpoint import load_checkpoint, export_from_checkpoint
        ck = load_checkpoint(args.checkpoint, map_location="cpu")
        from .checkpoint import read_neutral
        neutral = read_neutral(args.neutral) if args.neutral else None
        manifest = export_from_checkpoint(ck, args.out, name=args.name, fps=args.fps, int8=args.int8, neutral=neutral)
    t = manifest["training"]
    parity = parity_summary(t)
    sys.stderr.write(f"train: wrote {args.out / 'avatar.onnx'} and avatar.json ({manifest['width']}x{manifest['height']}, "
                     f"{manifest['model']['outputFormat']} {manifest['model']['precision']}, "
                     f"{t['flopsPerFrame'] / 1e9:.2f} GFLOP/frame, parity {parity}) in {time.time() - t0:.1f} s\n")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .trainer import run_training
    with default_export_format(export_format(args)):
        return run_training(args)


