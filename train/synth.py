"""A tiny synthetic dataset in the `dnp prepare` folder format (for tests and benchmarks): a coloured blob that
moves with the head pose, changes colour with one blendshape and size with another, on a gradient background."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image


def synth_frame(cond: np.ndarray, size: int) -> np.ndarray:
    yaw, pitch = float(cond[1]), float(cond[0])
    bs0, bs1 = float(cond[8]), float(cond[9])
    t = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(t, t, indexing="ij")
    cx, cy = 0.5 + 0.6 * yaw, 0.5 - 0.6 * pitch
    r = 0.15 + 0.12 * bs1
    blob = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
    img = np.stack([0.2 + 0.3 * xx, 0.25 + 0.2 * yy, 0.3 + 0.0 * xx], -1)
    colour = np.array([0.9 * bs0 + 0.05, 0.4, 0.9 * (1 - bs0) + 0.05])
    img = img * (1 - blob[..., None]) + colour * blob[..., None]
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


JAW_OPEN = 25  # MediaPipe blendshape index (shared/src/blendshapes.ts)


def face_frame(cond: np.ndarray, size: int) -> np.ndarray:
    """A cartoon face: skin disc, two dark eyes, and a dark mouth whose height follows jawOpen; the face moves with
    yaw and pitch. Used to check that a model's mouth region follows jawOpen on held-out vectors."""
    yaw, pitch, jaw = float(cond[1]), float(cond[0]), float(cond[8 + JAW_OPEN])
    t = (np.arange(size) + 0.5) / size
    yy, xx = np.meshgrid(t, t, indexing="ij")
    cx, cy = 0.5 + 0.3 * yaw, 0.5 - 0.3 * pitch
    img = np.stack([0.25 + 0.3 * xx, 0.35 + 0.2 * yy, 0.45 + 0.0 * xx], -1)
    face = ((xx - cx) / 0.3) ** 2 + ((yy - cy) / 0.38) ** 2 < 1
    img[face] = (0.9, 0.72, 0.6)
    for ex in (-0.11, 0.11):
        eye = ((xx - cx - ex) / 0.05) ** 2 + ((yy - cy + 0.1) / 0.035) ** 2 < 1
        img[eye] = (0.1, 0.1, 0.15)
    mouth = ((xx - cx) / 0.12) ** 2 + ((yy - cy - 0.17) / (0.012 + 0.09 * jaw)) ** 2 < 1
    img[mouth] = (0.35, 0.05, 0.08)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def write_synthetic_dataset(root: Path, n: int = 24, size: int = 32, n_test: int = 4, seed: int = 0,
                            invalid: Optional[list] = None, kind: str = "blob") -> Path:
    """kind "blob": synth_frame (colour and size follow blendshapes 0 and 1); "face": face_frame (jawOpen)."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "frames").mkdir(parents=True, exist_ok=True)
    k = np.arange(n)
    pose = np.zeros((n, 6), np.float32)
    pose[:, 0] = 0.25 * np.sin(k * 0.7)  # pitch
    pose[:, 1] = 0.25 * np.cos(k * 0.45)  # yaw
    pose[:, 5] = -27 + rng.normal(0, 0.5, n)
    gaze = (rng.normal(0, 0.1, (n, 2))).astype(np.float32)
    bs = np.clip(rng.uniform(0, 0.2, (n, 52)), 0, 1).astype(np.float32)
    bs[:, 0] = 0.5 + 0.5 * np.sin(k * 0.9)
    bs[:, 1] = 0.5 + 0.5 * np.cos(k * 1.3)
    if kind == "face":  # one clean control: the other blendshapes hold still (tracker-like jitter only)
        bs[:] = rng.uniform(0, 0.01, (n, 52))
        bs[:, JAW_OPEN] = rng.uniform(0, 1, n)
    cond = np.concatenate([pose, gaze, bs], 1)
    draw = face_frame if kind == "face" else synth_frame
    for i in range(n):
        Image.fromarray(draw(cond[i], size)).save(root / "frames" / f"{i:06d}.png")
    valid = np.ones(n, np.uint8)
    for i in invalid or []:
        valid[i] = 0
    arrays = {"pose": pose, "gaze": gaze, "blendshapes": bs, "faceFound": valid.copy(),
              "interpolated": np.zeros(n, np.uint8), "valid": valid}
    files = {"pose": "pose.npy", "gaze": "gaze.npy", "blendshapes": "blendshapes.npy", "faceFound": "face_found.npy",
             "interpolated": "interpolated.npy", "valid": "valid.npy"}
    spec = {}
    for name, a in arrays.items():
        np.save(root / files[name], a)
        spec[name] = {"file": files[name], "dtype": str(a.dtype), "shape": list(a.shape)}
    manifest = {
        "format": "dnp-dataset", "version": 1,
        "source": {"file": "synthetic.mp4", "sha256": hashlib.sha256(f"synthetic-{seed}-{n}-{size}".encode()).hexdigest(),
                   "width": size, "height": size, "rotation": 0, "fps": 25, "variableFrameRate": False,
                   "startSeconds": 0, "durationSeconds": n / 25},
        "fps": 25, "frameCount": n, "size": size, "crop": {"x": 0, "y": 0, "size": size},
        "tracker": {"name": "synthetic", "version": "0", "modelSha256": ""},
        "frames": {"dir": "frames", "pattern": "%06d.png"}, "arrays": spec, "audio": None,
        "split": {"train": [0, n - n_test], "test": [n - n_test, n]},
        "created": "2026-01-01T00:00:00Z", "tool": "train/synth.py",
    }
    (root / "dataset.json").write_text(json.dumps(manifest, indent=2))
    return root
