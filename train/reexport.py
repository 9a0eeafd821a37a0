"""Re-export an avatar folder with this version's graph when its checkpoint is gone: the weights are read back from
its avatar.onnx, the configuration and normalisation from its avatar.json, and the new graph must give the same
frames as the old one (else nothing is written).

Why: checkpoints live beside the training data (git-ignored), avatar folders are what ships. A faster graph for the
same function (e.g. the colour layers drawn over a window) should reach every avatar, the shipped default included.

Variant W only. PyTorch's exporter keeps parameters and named buffers as initializers under their own names
("model.refine.0.weight"); what it folds into other constants (the fitted head geometry, the pose normalisation,
the colour layers' corners) is found by the consumer's op type, shape and dtype, then checked twice: a rebuilt graph
that gives other frames than the original is refused.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

from .config import ModelConfig, TrainConfig
from .export import MANIFEST_FILE, MODEL_FILE, write_json
from .onnx_check import ParityError, run_onnx

# frames of the rebuilt graph may differ from the original's by at most this (of 1.0), at 1 standard deviation
REEXPORT_TOLERANCE = 1e-4
REEXPORT_VECTORS = 24


def _load(path: Path) -> Tuple[Dict[str, np.ndarray], List[Any]]:
    """avatar.onnx's initializers by name, and its nodes (read once)."""
    import onnx
    from onnx import numpy_helper
    g = onnx.load(str(path)).graph
    return {i.name: numpy_helper.to_array(i) for i in g.initializer}, list(g.node)


def _folded(inits: Dict[str, np.ndarray]) -> List[Tuple[str, int, np.ndarray]]:
    """The constants the exporter named for their consumer ("onnx::Mul_1234"): (op, number, value), in order."""
    out = []
    for name, v in inits.items():
        m = re.fullmatch(r"onnx::([A-Za-z]+)_(\d+)", name)
        if m:
            out.append((m.group(1), int(m.group(2)), v))
    return sorted(out, key=lambda t: t[1])


def _one(cands: List[np.ndarray], what: str) -> np.ndarray:
    if len(cands) != 1:
        raise ValueError(f"cannot find {what} in the graph ({len(cands)} candidates): re-export needs the checkpoint")
    return cands[0]


def _geometry(folded: List[Tuple[str, int, np.ndarray]], n_points: int) -> Dict[str, torch.Tensor]:
    """The fitted head geometry and pose normalisation, computed in float64 in the graph (so folded as float64)."""
    f64 = [(op, v) for op, _, v in folded if v.dtype == np.float64]
    std = _one([v for op, v in f64 if op == "Mul" and v.shape == (6,)], "the pose scale")
    mean = _one([v for op, v in f64 if op == "Add" and v.shape == (6,)], "the pose mean")
    pts = _one([v for op, v in f64 if op == "MatMul" and v.shape == (3, n_points)], "the face points")
    focal = _one([v for op, v in f64 if op == "Mul" and v.shape == ()], "the focal length")
    cx = _one([v for op, v in f64 if op == "Add" and v.shape == ()], "the principal point (x)")
    cy = _one([v for op, v in f64 if op == "Sub" and v.shape == ()], "the principal point (y)")
    refs = [v for op, v in f64 if op == "ReduceMean" and v.shape == (1, n_points)]
    if len(refs) != 2:
        raise ValueError("cannot find the reference's projected face points in the graph: re-export needs the checkpoint")
    f32 = lambda a: torch.from_numpy(np.array(a, np.float64)).float()  # noqa: E731
    return {"face_points": f32(pts.T), "camera": f32([float(focal), float(cx), float(cy)]), "pose_mean": f32(mean),
            "pose_std": f32(std), "ref_u": f32(refs[0]), "ref_v": f32(refs[1])}


def _outline(folded: List[Tuple[str, int, np.ndarray]], ref_u: torch.Tensor, ref_v: torch.Tensor,
             m: int) -> Dict[str, torch.Tensor]:
    """The head's outline in the dense warp (warp_head_outline): its points [m, 3] and where the reference shows
    them, folded after the reference's face points into what the spline subtracts from (float64 in the graph)."""
    f64 = [(op, v) for op, _, v in folded if v.dtype == np.float64]
    pts = _one([v for op, v in f64 if op == "MatMul" and v.shape == (3, m)], "the head's outline points")
    n = ref_u.shape[-1]
    to = [v for op, v in f64 if op == "Sub" and v.shape == (n + m,)]
    if len(to) != 2 or not all(np.allclose(t[:n], r.double().numpy()[0], atol=1e-4) for t, r in zip(to, (ref_u, ref_v))):
        raise ValueError("cannot find where the reference shows the head's outline in the graph: re-export needs "
                         "the checkpoint")
    f32 = lambda a: torch.from_numpy(np.array(a, np.float64)).float()  # noqa: E731
    return {"outline_points": f32(pts.T), "outline_u": f32(to[0][n:]), "outline_v": f32(to[1][n:])}


def _origins(nodes: List[Any], inits: Dict[str, np.ndarray], layers: List[Tuple[str, int, int]]) -> Dict[str, torch.Tensor]:
    """Each colour layer's corner (x0, y0). In the layer's own nodes ("/model/eye_patch/..."), in the order of its
    forward(), the graph subtracts from folded scalars: x0 + (w-1)/2 and y0 + (h-1)/2 (where the patch's centre
    lands), then x0 and y0 (where the window reads it)."""
    out: Dict[str, torch.Tensor] = {}
    # a corner equal to another constant of the graph reaches its Sub through an Identity of that constant (the
    # exporter shares equal initializers; the default avatar of 2 Dec 2026 has one)
    inits = dict(inits)
    for n in nodes:
        if n.op_type == "Identity" and n.input[0] in inits:
            inits[n.output[0]] = inits[n.input[0]]
    for key, h, w in layers:
        vals = [float(inits[x]) for n in nodes if n.op_type == "Sub" and n.name.startswith(f"/model/{key}/")
                for x in n.input if x in inits and inits[x].shape == () and inits[x].dtype == np.float32]
        if len(vals) != 4 or vals[0] - vals[2] != (w - 1) / 2.0 or vals[1] - vals[3] != (h - 1) / 2.0:
            raise ValueError(f"cannot find the corner of {key} in the graph: re-export needs the checkpoint")
        out[key + ".origin"] = torch.tensor([vals[2], vals[3]], dtype=torch.float32)
    return out


def checkpoint_from_avatar(avatar_dir: Path) -> Dict[str, Any]:
    """A checkpoint (as train/checkpoint.py reads it, without optimiser state) rebuilt from an avatar folder."""
    from .build import build_model
    from .model_warp import WarpModel, dense_table
    from .face_geometry import OUTLINE_ANGLES_DEG, RIGID_LANDMARKS

    avatar_dir = Path(avatar_dir)
    man_path, onnx_path = avatar_dir / MANIFEST_FILE, avatar_dir / MODEL_FILE
    for p in (man_path, onnx_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: not found (an avatar folder has {MANIFEST_FILE} and {MODEL_FILE})")
    try:
        man = json.loads(man_path.read_text())
        training = man["training"]
        cfg = ModelConfig.from_dict(dict(training["model"]))
        cond = man["conditioning"]
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{man_path}: not a trained avatar's manifest ({err})") from None
    if training.get("provenance") != "trained":
        raise ValueError(f"{man_path}: not a trained avatar")
    if cfg.variant != "W":
        raise ValueError(f"{man_path}: variant {cfg.variant}: re-export from an avatar folder is implemented for variant W")
    if man["model"].get("precision") != "fp32" or man["model"].get("outputFormat") != "rgb":
        raise ValueError(f"{man_path}: re-export reads a float32 RGB avatar.onnx, this one is "
                         f"{man['model'].get('precision')} {man['model'].get('outputFormat')}")
    if cfg.warp_refs != 1:
        raise ValueError(f"{man_path}: re-export from an avatar folder is implemented for one reference frame")
    model = build_model(cfg)
    assert isinstance(model, WarpModel)
    inits, nodes = _load(onnx_path)
    state = model.state_dict()
    new: Dict[str, torch.Tensor] = {}
    for key in state:
        name = "model." + key
        if name in inits:
            new[key] = torch.from_numpy(np.array(inits[name])).to(state[key].dtype)
    folded = _folded(inits)
    if "refine.0.weight" not in new:  # since 1 Dec 2026 the first convolution is two (refine_hidden): its weight's
        # columns over the warped image and over the features, folded into the two convolutions' constants
        rc, nf = cfg.refine_channels, cfg.n_f
        convs = [v for op, _, v in folded if op == "Conv" and v.dtype == np.float32]
        a = _one([v for v in convs if v.shape == (rc, 3, 3, 3)], "the refinement's first convolution (image part)")
        b = _one([v for v in convs if v.shape == (rc, nf, 3, 3)], "the refinement's first convolution (feature part)")
        new["refine.0.weight"] = torch.from_numpy(np.concatenate([a, b], 1).astype(np.float32))
    if "ref_delta" in state:  # a learned reference is folded into the table: read back as the reference itself
        new["ref_delta"] = torch.zeros_like(state["ref_delta"])
    if "table" in new:  # the reference, from its neighbour table's first three columns
        s = cfg.size
        new["reference"] = new["table"][:, 0:3].t().reshape(3, s, s).contiguous()
    if cfg.warp_geometry:
        new.update(_geometry(folded, len(RIGID_LANDMARKS)))
        at_u, at_v = new["ref_u"][0].double(), new["ref_v"][0].double()
        if cfg.warp_head_outline:
            new.update(_outline(folded, new["ref_u"], new["ref_v"], len(OUTLINE_ANGLES_DEG)))
            at_u, at_v = torch.cat([at_u, new["outline_u"].double()]), torch.cat([at_v, new["outline_v"].double()])
        if cfg.warp_dense_geometry:  # the dense warp's spline follows from the reference's face points (and outline)
            new["dense_table"] = dense_table(at_u, at_v, cfg.size)
    layers = [(k, layer.h, layer.w) for k, layer in (("eye_patch", model.eye_patch), ("mouth_patch", model.mouth_patch))
              if layer is not None]
    new.update(_origins(nodes, inits, layers))
    missing = [k for k in state if k not in new]
    if missing:
        raise ValueError(f"{onnx_path}: cannot find {', '.join(missing)} in the graph: re-export needs the checkpoint")
    for k, v in new.items():
        if tuple(v.shape) != tuple(state[k].shape):
            raise ValueError(f"{onnx_path}: {k} has shape {list(v.shape)}, the configuration says {list(state[k].shape)}")
    ds = training.get("dataset") or {}
    history = [{"psnr": training.get("heldOutPsnrDb"), "frames": training.get("heldOutFrames"),
                "split": training.get("psnrSplit")}] if training.get("heldOutPsnrDb") is not None else []
    return {
        "model_config": cfg.to_dict(), "train_config": TrainConfig.from_dict(dict(training["trainConfig"])).to_dict(),
        "dataset": ds, "iteration": int(training.get("iterations", 0)), "model": new, "history": history,
        "norm": {"mean": [float(x) for x in cond["mean"]], "std": [float(x) for x in cond["std"]],
                 "neutral": man["neutral"]},
        "name": man.get("name"), "fps": float(man.get("fps", 25.0)), "preset": training.get("preset"),
        "elapsed_s": training.get("trainingSeconds"), "device": training.get("device"),
    }


def compare_graphs(old: Path, new: Path, vectors: int = REEXPORT_VECTORS, sigma: float = 1.0, seed: int = 0) -> float:
    """Max abs difference of the two graphs' frames (onnxruntime-node) for `vectors` normalised driving vectors."""
    from .config import COND_SIZE
    g = torch.Generator().manual_seed(seed + 777)
    x = (torch.randn(vectors, COND_SIZE, generator=g) * sigma).numpy()
    worst = 0.0
    for i in range(0, vectors, 8):
        a, _ = run_onnx(old, "cond", x[i:i + 8])
        b, _ = run_onnx(new, "cond", x[i:i + 8])
        worst = max(worst, float(np.abs(a.astype(np.float64) - b).max()))
    return worst


def reexport(avatar_dir: Path, out_dir: Path, tolerance: float = REEXPORT_TOLERANCE) -> Dict[str, Any]:
    """Writes out_dir/avatar.onnx + avatar.json with this version's graph, after checking (in a scratch folder) that
    it gives the same frames as avatar_dir's. Other files of the avatar folder (PROVENANCE.md, calibrations) are not
    touched or copied."""
    import shutil
    import tempfile
    import datetime
    from .checkpoint import export_from_checkpoint

    avatar_dir, out_dir = Path(avatar_dir), Path(out_dir)
    ck = checkpoint_from_avatar(avatar_dir)
    old_manifest = json.loads((avatar_dir / MANIFEST_FILE).read_text())
    with tempfile.TemporaryDirectory(prefix="dnp-reexport-") as td:
        tmp = Path(td)
        manifest = export_from_checkpoint(ck, tmp, name=old_manifest.get("name"), fps=float(old_manifest.get("fps", 25.0)),
                                          neutral=old_manifest["neutral"])
        diff = compare_graphs(avatar_dir / MODEL_FILE, tmp / MODEL_FILE)
        if not (diff <= tolerance) or not math.isfinite(diff):
            raise ParityError(f"the re-exported graph's frames differ from {avatar_dir / MODEL_FILE}'s by up to {diff:.3g} "
                              f"(tolerance {tolerance:g}): not written")
        # the old manifest's training facts stay (they describe the training); the graph's own facts are the new ones
        t = dict(old_manifest["training"])
        for k in ("flopsPerFrame", "flopsBreakdown", "parameters", "versions", "parityMaxAbsDiff", "parityBatch"):
            if k in manifest["training"]:
                t[k] = manifest["training"][k]
        t["reExported"] = {"at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           "maxAbsDiffFromPrevious": diff, "vectors": REEXPORT_VECTORS}
        manifest["training"] = t
        write_json(tmp / MANIFEST_FILE, manifest)
        out_dir.mkdir(parents=True, exist_ok=True)
        for f in (MODEL_FILE, MANIFEST_FILE):
            tmp_dst = out_dir / (f + ".tmp")
            shutil.copyfile(tmp / f, tmp_dst)
            tmp_dst.replace(out_dir / f)
    return manifest
