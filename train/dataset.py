"""Reads a dataset folder written by `dnp prepare` (format "dnp-dataset" v1 or v2, shared/src/dataset-schema.ts).

Version 2 adds `landmarks.npy` (float32 [N, 478, 2], x/y in output pixels of the crop, NaN where no face),
exposed as `Dataset.landmarks` (None for a version 1 dataset)."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .config import BLENDSHAPE_COUNT, COND_SIZE, GAZE_SIZE, POSE_SIZE

ARRAYS = {
    "pose": ("float32", [POSE_SIZE]),
    "gaze": ("float32", [GAZE_SIZE]),
    "blendshapes": ("float32", [BLENDSHAPE_COUNT]),
    "faceFound": ("uint8", []),
    "interpolated": ("uint8", []),
    "valid": ("uint8", []),
}
LANDMARK_COUNT = 478
LANDMARKS_ARRAY = ("float32", [LANDMARK_COUNT, 2])
DATASET_VERSIONS = (1, 2)


class DatasetError(ValueError):
    pass


def _fail(path: str, msg: str) -> None:
    raise DatasetError(f"{path}: {msg}")


def _obj(v: Any, path: str) -> Dict[str, Any]:
    if not isinstance(v, dict):
        _fail(path, "expected an object")
    return v


def _num(v: Any, path: str, lo: Optional[float] = None, hi: Optional[float] = None, integer: bool = False) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v):
        _fail(path, "expected a finite number")
    if integer and not float(v).is_integer():
        _fail(path, "expected an integer")
    if lo is not None and v < lo:
        _fail(path, f"must be >= {lo}")
    if hi is not None and v > hi:
        _fail(path, f"must be <= {hi}")
    return v


def _str(v: Any, path: str) -> str:
    if not isinstance(v, str) or not v:
        _fail(path, "expected a non-empty string")
    return v


def _plain_name(v: Any, path: str) -> str:
    s = _str(v, path)
    if "/" in s or "\\" in s or s.startswith(".") or s.strip() != s:
        _fail(path, f"must be a plain name inside the dataset folder (got {s!r})")
    return s


def _array_specs(version: int) -> Dict[str, Tuple[str, List[int]]]:
    return {**ARRAYS, "landmarks": LANDMARKS_ARRAY} if version == 2 else dict(ARRAYS)


def parse_dataset_manifest(d: Any, where: str = "dataset.json") -> Dict[str, Any]:
    """Validates a parsed dataset.json like parseDatasetManifest (TypeScript). Raises DatasetError."""
    p = lambda k: f"{where}: {k}"  # noqa: E731
    o = _obj(d, where)
    if o.get("format") != "dnp-dataset":
        _fail(p("format"), 'expected "dnp-dataset"')
    version = o.get("version")
    if isinstance(version, bool) or version not in DATASET_VERSIONS:
        _fail(p("version"), f"unsupported version {json.dumps(version)} (this trainer reads 1 and 2)")
    n = int(_num(o.get("frameCount"), p("frameCount"), lo=1, integer=True))
    size = int(_num(o.get("size"), p("size"), lo=16, hi=4096, integer=True))
    _num(o.get("fps"), p("fps"), lo=1, hi=120)
    src = _obj(o.get("source"), p("source"))
    _str(src.get("file"), p("source.file"))
    if not isinstance(src.get("sha256"), str):
        _fail(p("source.sha256"), "expected a string")
    fr = _obj(o.get("frames"), p("frames"))
    _plain_name(fr.get("dir"), p("frames.dir"))
    pattern = _str(fr.get("pattern"), p("frames.pattern"))
    if not re.fullmatch(r"[A-Za-z0-9_\-]*%0?\d*d\.png", pattern):
        _fail(p("frames.pattern"), f"expected a printf pattern like %06d.png (got {pattern!r})")
    arrays = _obj(o.get("arrays"), p("arrays"))
    if version == 1 and "landmarks" in arrays:
        _fail(p("arrays.landmarks"), "only version 2 datasets have landmarks")
    for name, (dtype, inner) in _array_specs(version).items():
        e = _obj(arrays.get(name), p(f"arrays.{name}"))
        _plain_name(e.get("file"), p(f"arrays.{name}.file"))
        if e.get("dtype") != dtype:
            _fail(p(f"arrays.{name}.dtype"), f'expected "{dtype}"')
        if e.get("shape") != [n] + inner:
            _fail(p(f"arrays.{name}.shape"), f"expected {[n] + inner}")
    sp = _obj(o.get("split"), p("split"))
    ranges = {}
    for k in ("train", "test"):
        r = sp.get(k)
        if not isinstance(r, list) or len(r) != 2:
            _fail(p(f"split.{k}"), "expected [start, end]")
        lo = int(_num(r[0], p(f"split.{k}[0]"), lo=0, hi=n, integer=True))
        hi = int(_num(r[1], p(f"split.{k}[1]"), lo=lo, hi=n, integer=True))
        ranges[k] = (lo, hi)
    if ranges["train"][1] > ranges["test"][0]:
        _fail(p("split"), "train and test ranges overlap")
    if ranges["train"][1] - ranges["train"][0] < 1:
        _fail(p("split.train"), "the training range is empty")
    return o


class Dataset:
    """Conditioning arrays in memory; frames read from PNG on demand (or all at once with `preload`)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        mpath = self.root / "dataset.json"
        if not mpath.is_file():
            raise DatasetError(f"{mpath}: not found (is {self.root} a dataset folder written by `dnp prepare`?)")
        raw = mpath.read_bytes()
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as err:
            raise DatasetError(f"{mpath}: not valid JSON ({err})") from None
        self.manifest = parse_dataset_manifest(data, str(mpath))
        self.manifest_sha256 = hashlib.sha256(raw).hexdigest()
        m = self.manifest
        self.n = int(m["frameCount"])
        self.size = int(m["size"])
        self.fps = float(m["fps"])
        self.version = int(m["version"])
        arrays: Dict[str, np.ndarray] = {}
        for name, (dtype, inner) in _array_specs(self.version).items():
            spec = m["arrays"][name]
            path = self.root / spec["file"]
            if not path.is_file():
                raise DatasetError(f"{path}: not found (listed in dataset.json arrays.{name})")
            try:
                a = np.load(path, allow_pickle=False)
            except Exception as err:  # noqa: BLE001 - any read error is reported with the file name
                raise DatasetError(f"{path}: not a readable .npy file ({err})") from None
            if a.dtype != np.dtype(dtype) or list(a.shape) != [self.n] + inner:
                raise DatasetError(f"{path}: expected {dtype} {[self.n] + inner}, got {a.dtype} {list(a.shape)}")
            if name != "landmarks" and a.dtype == np.float32 and not np.isfinite(a).all():
                raise DatasetError(f"{path}: contains NaN or infinite values")
            arrays[name] = a
        self.cond = np.concatenate([arrays["pose"], arrays["gaze"], arrays["blendshapes"]], 1).astype(np.float32)
        assert self.cond.shape[1] == COND_SIZE
        self.valid = arrays["valid"] == 1
        # [N, 478, 2] in output pixels of the crop, NaN rows where no face was tracked; None for version 1
        self.landmarks: Optional[np.ndarray] = arrays.get("landmarks")
        tr, te = m["split"]["train"], m["split"]["test"]
        idx = np.arange(self.n)
        self.train_idx = idx[(idx >= tr[0]) & (idx < tr[1]) & self.valid]
        self.test_idx = idx[(idx >= te[0]) & (idx < te[1]) & self.valid]
        if len(self.train_idx) == 0:
            raise DatasetError(f"{mpath}: no valid frames in the training range {tr}")
        self.frames_dir = self.root / m["frames"]["dir"]
        self.pattern = m["frames"]["pattern"]

    def identity(self) -> Dict[str, Any]:
        """What identifies the data a checkpoint was trained on."""
        m = self.manifest
        return {"path": str(self.root.resolve()), "manifestSha256": self.manifest_sha256,
                "sourceFile": m["source"]["file"], "sourceSha256": m["source"]["sha256"],
                "frameCount": self.n, "size": self.size, "created": m.get("created"),
                "trainFrames": int(len(self.train_idx)), "testFrames": int(len(self.test_idx))}

    def frame_path(self, i: int) -> Path:
        return self.frames_dir / (self.pattern % i)

    def read_frame(self, i: int, size: int) -> np.ndarray:
        """Frame i as uint8 [3, size, size] (resized with a box/area filter if the dataset size differs)."""
        path = self.frame_path(i)
        try:
            with Image.open(path) as im:
                if im.size != (self.size, self.size):
                    raise DatasetError(f"{path}: is {im.size[0]}x{im.size[1]}, dataset.json says {self.size}x{self.size}")
                im = im.convert("RGB")
                if size != self.size:
                    im = im.resize((size, size), Image.BOX if size < self.size else Image.BICUBIC)
                a = np.asarray(im, dtype=np.uint8)
        except FileNotFoundError:
            raise DatasetError(f"{path}: frame {i} not found") from None
        return a.transpose(2, 0, 1).copy()

    def read_frames(self, idx: Sequence[int], size: int) -> np.ndarray:
        return np.stack([self.read_frame(int(i), size) for i in idx]) if len(idx) else np.zeros((0, 3, size, size), np.uint8)


def conditioning_stats(cond: np.ndarray) -> Tuple[List[float], List[float], Dict[str, List[float]]]:
    """Mean/std over the training frames (std floored per group so constant values do not explode), and the
    neutral face = the per-value MEDIAN of the training conditioning."""
    mean = cond.mean(0).astype(np.float64)
    std = cond.std(0).astype(np.float64)
    floor = np.array([0.02] * 3 + [0.2] * 3 + [0.02] * 2 + [0.02] * BLENDSHAPE_COUNT)
    std = np.maximum(std, floor)
    med = np.median(cond, 0).astype(np.float64)
    neutral = {"pose": med[:6].tolist(), "gaze": med[6:8].tolist(), "blendshapes": med[8:].tolist()}
    return mean.tolist(), std.tolist(), neutral
