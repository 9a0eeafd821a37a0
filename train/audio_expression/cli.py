"""`python3 -m train.audio_expression {features,train}` (run from the repository root)."""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import torch

from ..cli import _positive_int
from .augment import VARIANTS, build_cache
from .config import HELD_OUT, ModelConfig, TrainConfig
from .data import load_clips
from .features import EXTRACTOR, ROOT, extractor_id
from .phonetic import PHONE_TABLES, PRIOR_OUTPUTS
from .sync import SyncResult, estimate as estimate_sync


def _non_negative(v: str) -> int:
    n = int(v)
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def _datasets(a: argparse.Namespace) -> List[Path]:
    out: List[Path] = []
    for d in a.datasets:
        if (d / "dataset.json").exists():
            out.append(d)
        elif d.is_dir():
            out.extend(sorted(p.parent for p in d.glob("*/dataset.json")))
        else:
            raise SystemExit(f"{d}: neither a dataset folder (dataset.json) nor a folder of them")
    if not out:
        raise SystemExit("no datasets found")
    names = [d.name for d in out]
    if len(set(names)) != len(names):
        raise SystemExit(f"dataset folder names must be unique (they name the speakers): {names}")
    return out


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("datasets", nargs="+", type=Path,
                   help="`dnp prepare` folders with audio.wav, or folders holding them (one speaker each; the folder name is the speaker)")
    p.add_argument("--cache", type=Path, default=ROOT / "data-local" / "audio-expression-cache",
                   help="where augmented feature frames are kept (default data-local/audio-expression-cache)")
    p.add_argument("--clean-only", action="store_true", help="no augmented variants, only the clean audio")


def _sync_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sync", choices=("auto", "off"), default="off",
                   help="auto: find each training clip's audio/video offset with speaker-independent cues, shift its "
                        "labels by it, and leave out a clip whose mouth does not follow its audio (sync.py); "
                        "off (default): take the clips as they are")


def _prior_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--phonetic-prior", choices=("on", "off"), default="on",
                   help="on (default): the exported model takes jawOpen, mouthFunnel, mouthPucker, mouthStretch and "
                        "mouthSmile from the phonetic prior (phone posteriors through fixed articulatory tables, "
                        "phonetic.py) and the other outputs from the network; off: all from the network")
    p.add_argument("--prior-outputs", default=",".join(PRIOR_OUTPUTS),
                   help=f"comma-separated outputs taken from the phonetic prior (default {','.join(PRIOR_OUTPUTS)}; "
                        f"those with a phone table: {','.join(PHONE_TABLES)})")


def _with_prior(a: argparse.Namespace, net, train_clips):
    """The network wrapped with the phonetic prior (its map onto blendshape values fitted on the training clips'
    clean audio), or the network as it is with --phonetic-prior off."""
    if a.phonetic_prior == "off":
        return net
    from .phonetic import PhoneticPrior, WithPhoneticPrior
    prior = PhoneticPrior(net.cfg.past, net.cfg.lookahead, net.cfg.feature_dim)
    prior.fit([c for c in train_clips if c.variant == "clean"], net.feature_mean.numpy())
    outputs = [n for n in a.prior_outputs.split(",") if n]
    try:
        return WithPhoneticPrior(net, prior, outputs).eval()
    except ValueError as e:
        raise SystemExit(f"--prior-outputs: {e}") from None


def _clip_sync(dataset: Path, cache: Path) -> SyncResult:
    """A dataset's audio/video offset, from its clean audio and its own (unshifted) tracked jawOpen."""
    clean = load_clips(dataset, cache, ["clean"])[0]
    return estimate_sync(clean.features, clean.targets[:, 0], clean.mask)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m train.audio_expression",
                                description="Generic audio-to-expression model: speech feature windows → mouth and jaw blendshapes.")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch CPU threads (default 1)")
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("features", help="make the augmented audio variants of each dataset and their feature frames (cached)")
    _common(f)
    t = sub.add_parser("train", help="train on all but the held-out speakers, score the held-out ones, export model.onnx + model.json")
    _common(t)
    _sync_option(t)
    _prior_option(t)
    t.add_argument("--out", required=True, type=Path, help="output folder: model.onnx, model.json, checkpoint.pt, report.json")
    t.add_argument("--held-out", default=",".join(HELD_OUT),
                   help=f"comma-separated speakers (dataset folder names) kept out of training and scored (default {','.join(HELD_OUT)})")
    t.add_argument("--exclude", default="",
                   help="comma-separated datasets left out entirely (e.g. a voice-over whose face does not speak)")
    t.add_argument("--columns", default="all", choices=("all", "phones+energy"),
                   help="feature columns the network reads: all, or phones+energy (the phone posteriors and c0 with its "
                        "deltas: drops the speaker-specific spectral shape of the other cepstra)")
    t.add_argument("--head", choices=("flatten", "center"), default=ModelConfig.head,
                   help="flatten: a linear layer over the whole window; center: only the predicted frame's column (fewer weights)")
    t.add_argument("--dropout", type=float, default=ModelConfig.dropout, help=f"dropout (default {ModelConfig.dropout})")
    t.add_argument("--iterations", type=_positive_int, default=TrainConfig.iterations, help=f"training iterations (default {TrainConfig.iterations})")
    t.add_argument("--batch", type=_positive_int, default=TrainConfig.batch, help=f"samples per iteration (default {TrainConfig.batch})")
    t.add_argument("--lr", type=float, default=TrainConfig.lr, help=f"peak learning rate, cosine decay (default {TrainConfig.lr})")
    t.add_argument("--normalise", choices=("none", "center", "zscore"), default=TrainConfig.normalise,
                   help="per-speaker target normalisation (default zscore: each speaker's targets minus its mean, over its std; center: minus its mean)")
    t.add_argument("--velocity-weight", type=float, default=TrainConfig.velocity_weight, help="weight of the velocity L1 term")
    t.add_argument("--past", type=_non_negative, default=ModelConfig.past, help=f"past feature frames in the window (default {ModelConfig.past})")
    t.add_argument("--lookahead", type=_non_negative, default=ModelConfig.lookahead,
                   help=f"future feature frames in the window, 10 ms each (default {ModelConfig.lookahead})")
    t.add_argument("--channels", type=_positive_int, default=ModelConfig.channels, help="conv channels")
    t.add_argument("--hidden", type=_positive_int, default=ModelConfig.hidden, help="hidden units of the head")
    t.add_argument("--eval-every", type=_positive_int, default=TrainConfig.eval_every, help="iterations between held-out scores")
    t.add_argument("--max-minutes", type=float, default=None, help="stop after M minutes (then score and export)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-progress", action="store_true", help="log lines instead of a progress bar")
    e = sub.add_parser("ensemble", help="average trained models (checkpoint.pt of `train` runs) into one, score it, export it")
    _common(e)
    _sync_option(e)
    _prior_option(e)
    e.add_argument("--checkpoints", required=True, help="comma-separated checkpoint.pt files (same configuration and data)")
    e.add_argument("--out", required=True, type=Path, help="output folder: model.onnx, model.json, parity.json, report.json")
    e.add_argument("--held-out", default=",".join(HELD_OUT), help="speakers scored (as for train)")
    e.add_argument("--exclude", default="", help="datasets left out (as for train)")
    e.add_argument("--seed", type=int, default=0)
    y = sub.add_parser("sync", help="print each dataset's audio/video offset found by speaker-independent cues (sync.py), "
                                    "as `--sync auto` would apply it to a training clip")
    _common(y)
    y.add_argument("--json", action="store_true", help="one JSON object per dataset instead of a table")
    c = sub.add_parser("calibrate", help="write AVATAR/audio-calibration.json: the avatar's own blendshape ranges from its dataset")
    c.add_argument("--data", required=True, type=Path, help="the avatar's `dnp prepare` dataset folder")
    c.add_argument("--avatar", required=True, type=Path, help="the avatar folder (avatar.json)")
    return p


def _git_commit() -> str:
    r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(ROOT), capture_output=True, text=True)
    return r.stdout.strip() or "unknown"


def _build(a: argparse.Namespace, datasets: List[Path], clean_only: bool) -> None:
    variants = VARIANTS[:1] if clean_only else VARIANTS
    for d in datasets:
        build_cache(d, a.cache / extractor_id() / d.name, variants, log=lambda m: print(f"features: {m}", file=sys.stderr))


def main(argv: Optional[List[str]] = None) -> int:
    a = parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.command == "calibrate":
        from .calibrate import write_avatar_calibration
        print(f"wrote {write_avatar_calibration(a.data, a.avatar)}")
        return 0
    datasets = _datasets(a)
    if a.command == "features":
        _build(a, datasets, a.clean_only)
        return 0
    if a.command == "sync":
        _build(a, datasets, True)
        for d in datasets:
            s = _clip_sync(d, a.cache / extractor_id() / d.name)
            print(json.dumps({"dataset": d.name, **s.as_dict()}) if a.json else f"{d.name}: {s.describe()}")
        return 0
    from .export import save_checkpoint
    from .train import train

    held = [s for s in a.held_out.split(",") if s]
    excluded = [s for s in a.exclude.split(",") if s]
    names = [d.name for d in datasets]
    missing = [s for s in held + excluded if s not in names]
    if missing:
        raise SystemExit(f"--held-out / --exclude names {missing} are not among the datasets {names}")
    _build(a, [d for d in datasets if d.name not in held + excluded], a.clean_only)
    _build(a, [d for d in datasets if d.name in held], True)  # scored on their clean audio only
    train_clips, eval_clips, sync = [], [], {}
    for d in datasets:
        cache = a.cache / extractor_id() / d.name
        if d.name in excluded:
            continue
        if d.name in held:
            eval_clips += load_clips(d, cache, ["clean"])  # scored against its own labels, never shifted
            continue
        offset = 0.0
        if a.sync == "auto":
            s = _clip_sync(d, cache)
            sync[d.name] = s.as_dict()
            print(f"sync {d.name}: {s.describe()}", file=sys.stderr)
            if not s.keep:
                continue
            offset = s.offset_ms / 1000.0
        train_clips += load_clips(d, cache, None if not a.clean_only else ["clean"], offset)
    if not train_clips:
        raise SystemExit("every dataset is held out: nothing to train on")
    dim = train_clips[0].features.shape[1]
    if any(c.features.shape[1] != dim for c in train_clips + eval_clips):
        raise SystemExit("feature frames of different widths in the cache (delete the cache after changing the extractor)")
    if a.command == "ensemble":
        return _ensemble(a, train_clips, eval_clips, held, excluded, sync)
    columns = () if a.columns == "all" else tuple([0, 13, 26] + list(range(39, dim)))
    mcfg = ModelConfig(feature_dim=dim, columns=columns, head=a.head, past=a.past, lookahead=a.lookahead, channels=a.channels, hidden=a.hidden,
                       dropout=a.dropout).validate()
    tcfg = TrainConfig(iterations=a.iterations, batch=a.batch, lr=a.lr, normalise=a.normalise,
                       velocity_weight=a.velocity_weight, eval_every=a.eval_every, seed=a.seed, held_out=held).validate()
    t0 = time.time()
    res = train(train_clips, eval_clips, mcfg, tcfg, progress=not a.no_progress, max_minutes=a.max_minutes)
    training = {
        "trainSpeakers": sorted({c.speaker for c in train_clips}),
        "heldOutSpeakers": held,
        "excluded": excluded,
        "sync": sync,
        "variants": sorted({c.variant for c in train_clips}),
        "trainSeconds": round(sum(len(c.features) for c in train_clips) / 100.0, 1),
        "iterations": res["iterations"],
        "wallSeconds": round(time.time() - t0, 1),
        "train": {k: v for k, v in vars(tcfg).items()},
        "commit": _git_commit(),
        "machine": f"{platform.machine()} {platform.processor() or ''} torch {torch.__version__} threads {a.threads}".strip(),
        "heldOutNetwork": res["report"],
    }
    a.out.mkdir(parents=True, exist_ok=True)
    net = res["model"]
    save_checkpoint(net, a.out / "checkpoint.pt", {"train": training})  # the network alone (the prior is rebuilt)
    from .train import evaluate
    model = _with_prior(a, net, train_clips)
    report = evaluate(model, eval_clips) if model is not net else res["report"]
    training.update(phoneticPrior=_prior_manifest(model), heldOut=report)
    return _export(a, model, training, report, res["history"], train_clips, eval_clips)


def _ensemble(a: argparse.Namespace, train_clips, eval_clips, held: List[str], excluded: List[str],
              sync: Dict[str, Dict[str, object]]) -> int:
    from .export import load_checkpoint
    from .model import Ensemble
    from .train import evaluate
    paths = [Path(p) for p in a.checkpoints.split(",") if p]
    members = []
    for p in paths:
        members.append(load_checkpoint(p))
    net = Ensemble(members).eval()
    member_training = [torch.load(str(p), map_location="cpu").get("train", {}) for p in paths]
    model = _with_prior(a, net, train_clips)
    report = evaluate(model, eval_clips)
    training = {
        "ensemble": [str(p) for p in paths],
        "members": [{k: t.get(k) for k in ("iterations", "wallSeconds", "commit", "train")} for t in member_training],
        "trainSpeakers": sorted({c.speaker for c in train_clips}),
        "heldOutSpeakers": held,
        "excluded": excluded,
        "sync": sync,
        "variants": sorted({c.variant for c in train_clips}),
        "trainSeconds": round(sum(len(c.features) for c in train_clips) / 100.0, 1),
        "commit": _git_commit(),
        "machine": f"{platform.machine()} {platform.processor() or ''} torch {torch.__version__} threads {a.threads}".strip(),
        "heldOutNetwork": evaluate(net, eval_clips) if model is not net else report,
        "phoneticPrior": _prior_manifest(model),
        "heldOut": report,
    }
    a.out.mkdir(parents=True, exist_ok=True)
    return _export(a, model, training, report, [], train_clips, eval_clips)


def _prior_manifest(model) -> Optional[Dict[str, object]]:
    """What model.json says of the phonetic prior (None without one)."""
    from .phonetic import PHONE_TABLES, SIGMA_FRAMES, WithPhoneticPrior
    if not isinstance(model, WithPhoneticPrior):
        return None
    return {"outputs": list(model.prior_outputs), "sigmaFrames": SIGMA_FRAMES,
            "tables": {n: PHONE_TABLES[n] for n in model.prior_outputs}}


def _export(a: argparse.Namespace, model, training, report, history, train_clips, eval_clips) -> int:
    from .export import export, write_parity_fixture
    write_parity_fixture(model, eval_clips[0].features[:80] if eval_clips else train_clips[0].features[:80], a.out)
    from .calibrate import quantiles
    from .train import predict_clip
    import numpy as np
    preds = np.concatenate([predict_clip(model, c.features)[c.mask] for c in train_clips if c.variant == "clean"])
    man = export(model, a.out, f"{EXTRACTOR}@{extractor_id()}", training, seed=a.seed, output_quantiles=quantiles(preds))
    (a.out / "report.json").write_text(json.dumps({"history": history, "heldOut": report}, indent=1) + "\n")
    for spk, rep in report.items():
        keys = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker")
        print(f"held out {spk}: " + ", ".join(f"{k} r {rep[k]['r']:.3f} lag {rep[k]['lagMs']:+.0f} ms" for k in keys))
    print(f"wrote {a.out / 'model.onnx'} ({(a.out / 'model.onnx').stat().st_size} bytes), parity {man['training']['parityMaxAbsDiff']:.2g}")
    return 0
