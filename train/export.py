"""ONNX avatar export: avatar.onnx (opset 17, input "cond" [batch, 60], output "rgb" [batch, 3, H, W] in [0, 1])
plus avatar.json (shared/src/avatar-manifest.ts). The file is run in onnxruntime-node and compared with PyTorch
before it is written; the export is refused if they differ by 1e-4 or more.

Two options for GPU providers (ExportFormat): output "yuv420p" (the colour conversion in the graph: uint8
[batch, H*W*3/2], packed yuv420p as the server's encoder takes it; train/onnx_yuv.py) and precision "fp16"
(weights and compute in float16, the same float32 input and output types; train/onnx_fp16.py). Their parity
limits are YUV_MAX_BYTE_DIFF / YUV_MAX_MISMATCH and FP16_TOLERANCE below."""
from __future__ import annotations

import io
import json
import os
import platform
import warnings
from contextlib import contextmanager, redirect_stdout, redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Sequence

import numpy as np
import torch

from . import __version__
from .config import BLENDSHAPE_COUNT, COND_SIZE, ModelConfig
from .build import AnyModel, export_module, model_flops
from .model import parameter_count
from .onnx_check import ParityError, run_onnx
from .onnx_fp16 import convert_to_fp16
from .onnx_yuv import YUV_OUTPUT, append_yuv420p, rgb_to_yuv420p, yuv420p_bytes

OPSET = 17
PARITY_TOLERANCE = 1e-4
# fp16 graph vs the float32 PyTorch model: largest RGB difference (of 1.0) and lowest PSNR allowed
FP16_TOLERANCE = 2e-2
FP16_MIN_PSNR_DB = 40.0
# yuv420p graph vs the float32 RGB converted by the server's formula: bytes may differ by one where a value sits
# on a rounding boundary (float32 in the graph, float64 in JavaScript), and only that rarely (fp32) or somewhat
# more often (fp16 weights). An fp16 graph may differ as much as FP16_TOLERANCE allows its RGB (5.1 of 255, plus
# the rounding): variant W's warp moves sharp edges by a fraction of a pixel in fp16 (the default avatar: up to 4).
YUV_MAX_BYTE_DIFF = {"fp32": 1, "fp16": 6}
YUV_MAX_MISMATCH = {"fp32": 1e-3, "fp16": 0.2}
OUTPUTS = ("rgb", YUV_OUTPUT)
PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class ExportFormat:
    output: str = "rgb"  # "rgb": float32 [batch, 3, H, W]; "yuv420p": uint8 [batch, H*W*3/2]
    precision: str = "fp32"  # "fp32" or "fp16" (weights and compute; inputs/outputs keep their types)

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {', '.join(OUTPUTS)} (got {self.output!r})")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)} (got {self.precision!r})")


_default_format = ExportFormat()


@contextmanager
def default_export_format(fmt: ExportFormat) -> Iterator[None]:
    """Makes `fmt` the format of every export in the block that names none (`train --output/--fp16`: the trainer
    exports through export_from_checkpoint, which does not take a format)."""
    global _default_format
    before, _default_format = _default_format, fmt
    try:
        yield
    finally:
        _default_format = before
MODEL_FILE = "avatar.onnx"
MANIFEST_FILE = "avatar.json"


def untrained_conditioning() -> Dict[str, Any]:
    """Normalisation and neutral face of an untrained avatar: mean 0 except tz (a face ~27 cm in front of the
    camera); std in the physical scale of each value (pose.ts units: rad, cm; blendshapes in [0, 1])."""
    mean = [0.0] * COND_SIZE
    mean[5] = -27.0
    std = [0.25, 0.25, 0.25, 2.0, 2.0, 3.0, 0.25, 0.25] + [0.5] * BLENDSHAPE_COUNT
    neutral = {"pose": [0.0, 0.0, 0.0, 0.0, 0.0, -27.0], "gaze": [0.0, 0.0], "blendshapes": [0.0] * BLENDSHAPE_COUNT}
    return {"mean": mean, "std": std, "neutral": neutral}


def output_spec(cfg: ModelConfig, fmt: ExportFormat) -> Dict[str, Any]:
    if fmt.output == YUV_OUTPUT:
        return {"name": YUV_OUTPUT, "dtype": "uint8", "shape": ["batch", yuv420p_bytes(cfg.size, cfg.size)]}
    return {"name": "rgb", "dtype": "float32", "shape": ["batch", 3, cfg.size, cfg.size]}


def build_manifest(cfg: ModelConfig, name: str, fps: float, mean: Sequence[float], std: Sequence[float],
                   neutral: Dict[str, Sequence[float]], training: Dict[str, Any],
                   fmt: ExportFormat = ExportFormat()) -> Dict[str, Any]:
    if not name.strip():
        raise ValueError("avatar name must not be empty")
    if not (1 <= fps <= 120):
        raise ValueError(f"fps must be in 1..120 (got {fps})")
    if len(mean) != COND_SIZE or len(std) != COND_SIZE:
        raise ValueError("conditioning mean/std must have 60 values")
    if not all(float(s) > 0 for s in std):
        raise ValueError("conditioning std must be > 0")
    return {
        "format": "dnp-avatar",
        "version": 1,
        "name": name,
        "width": cfg.size,
        "height": cfg.size,
        "fps": fps,
        "driving": "expression",
        "model": {
            "file": MODEL_FILE,
            "opset": OPSET,
            "inputs": [{"name": "cond", "dtype": "float32", "shape": ["batch", COND_SIZE]}],
            "outputs": [output_spec(cfg, fmt)],
            "outputFormat": fmt.output,
            "precision": fmt.precision,
        },
        "conditioning": {
            "layout": [{"name": "pose", "size": 6}, {"name": "gaze", "size": 2}, {"name": "blendshapes", "size": 52}],
            "mean": [float(v) for v in mean],
            "std": [float(v) for v in std],
        },
        "neutral": {k: [float(v) for v in neutral[k]] for k in ("pose", "gaze", "blendshapes")},
        "training": training,
    }


def model_facts(model: AnyModel) -> Dict[str, Any]:
    flops = model_flops(model.cfg)
    return {"flopsPerFrame": flops["total"], "flopsBreakdown": flops, "parameters": parameter_count(model),
            "model": model.cfg.to_dict()}


def versions() -> Dict[str, str]:
    return {"dnp-train": __version__, "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version()}


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * float(np.log10(1.0 / mse))


def _check_parity(path: Path, wrapper: torch.nn.Module, cfg: ModelConfig, fmt: ExportFormat, seed: int) -> Dict[str, float]:
    """Runs the written graph in onnxruntime-node on a batch of 3 and compares it with the float32 PyTorch model
    (through the server's colour conversion for a yuv420p graph). Raises ParityError with the numbers."""
    g = torch.Generator().manual_seed(seed + 12345)
    x = torch.randn(3, COND_SIZE, generator=g) * 1.5
    with torch.no_grad():
        ref = wrapper(x).numpy()
    y, out_name = run_onnx(path, "cond", x.numpy())
    want = output_spec(cfg, fmt)
    if out_name != want["name"]:
        raise ParityError(f"exported output is named {out_name!r}, expected {want['name']!r}")
    shape = [ref.shape[0]] + [int(d) for d in want["shape"][1:]]
    if list(y.shape) != shape:
        raise ParityError(f"onnxruntime output shape {list(y.shape)} != expected {shape}")
    if fmt.output == YUV_OUTPUT:
        expect = rgb_to_yuv420p(ref)
        diff_bytes = np.abs(y.astype(np.int16) - expect.astype(np.int16))
        worst, mismatch = int(diff_bytes.max()), float(np.mean(diff_bytes > 0))
        if worst > YUV_MAX_BYTE_DIFF[fmt.precision] or mismatch > YUV_MAX_MISMATCH[fmt.precision]:
            raise ParityError(f"yuv420p output differs from the converted float32 RGB by up to {worst} (tolerance "
                              f"{YUV_MAX_BYTE_DIFF[fmt.precision]}) in {mismatch:.2%} of the bytes (tolerance "
                              f"{YUV_MAX_MISMATCH[fmt.precision]:.2%}); not written")
        return {"parityMaxByteDiff": worst, "parityByteMismatch": mismatch, "parityBatch": 3}
    diff = float(np.abs(y - ref).max())
    if fmt.precision == "fp16":
        psnr = _psnr(y, ref)
        if not (diff < FP16_TOLERANCE and psnr >= FP16_MIN_PSNR_DB):
            raise ParityError(f"fp16 onnxruntime and float32 PyTorch differ by {diff:.3g} (tolerance {FP16_TOLERANCE}), "
                              f"PSNR {psnr:.1f} dB (at least {FP16_MIN_PSNR_DB}); not written")
        facts = {"parityMaxAbsDiff": diff, "parityPsnrDb": psnr, "parityBatch": 3}
    else:
        if not diff < PARITY_TOLERANCE:
            raise ParityError(f"onnxruntime and PyTorch differ by {diff:.3g} (tolerance {PARITY_TOLERANCE}); not written")
        facts = {"parityMaxAbsDiff": diff, "parityBatch": 3}
    if float(y.min()) < 0 or float(y.max()) > 1:
        raise ParityError("exported model produced values outside [0, 1]")
    return facts


def exporter_options(export_fn: Any = None) -> Dict[str, Any]:
    """Keyword arguments for torch.onnx.export that keep one self-contained file at our opset: PyTorch 2.x's
    dynamo exporter (the default since 2.9) moves the opset to 18 and writes the weights to a second file beside
    the model (seen on torch 2.11: avatar.onnx.tmp.data), which an avatar folder must not need."""
    import inspect
    params = inspect.signature(export_fn or torch.onnx.export).parameters
    return {"dynamo": False} if "dynamo" in params else {}


def parity_summary(training: Dict[str, Any]) -> str:
    """One line on the export's parity check, for either output format."""
    if "parityMaxAbsDiff" in training:
        return f"{training['parityMaxAbsDiff']:.1e}"
    if "parityMaxByteDiff" in training:
        return (f"bytes within {training['parityMaxByteDiff']}, "
                f"{100 * float(training.get('parityByteMismatch', 0)):.3f}% differ")
    return "not checked"


def export_onnx(model: AnyModel, latent: Optional[torch.Tensor], path: Path, seed: int = 0,
                check: bool = True, fmt: Optional[ExportFormat] = None) -> Dict[str, float]:
    """Writes the inference graph to `path` after checking it in onnxruntime-node. Returns parity facts.
    `fmt` (default: the current default_export_format) picks the output and precision."""
    fmt = fmt or _default_format
    model = model.float().cpu().eval()
    wrapper = export_module(model, None if latent is None else latent.detach().float().cpu()).eval()
    tmp = path.with_name(path.name + ".tmp")
    example = torch.zeros(1, COND_SIZE)
    sink = io.StringIO()
    with warnings.catch_warnings(), redirect_stdout(sink), redirect_stderr(sink):
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (example,), str(tmp), opset_version=OPSET, input_names=["cond"],
                          output_names=["rgb"], dynamic_axes={"cond": {0: "batch"}, "rgb": {0: "batch"}},
                          do_constant_folding=True, **exporter_options())
    facts: Dict[str, float] = {}
    try:
        if fmt != ExportFormat():
            import onnx
            graph = onnx.load(str(tmp))
            if fmt.precision == "fp16":
                graph = convert_to_fp16(graph)
            if fmt.output == YUV_OUTPUT:
                graph = append_yuv420p(graph, model.cfg.size, model.cfg.size)
            onnx.save(graph, str(tmp))
        if check:
            facts = _check_parity(tmp, wrapper, model.cfg, fmt, seed)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return facts


def write_json(path: Path, data: Dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def export_avatar(model: AnyModel, latent: Optional[torch.Tensor], out_dir: Path, name: str, fps: float,
                  mean: Sequence[float], std: Sequence[float], neutral: Dict[str, Sequence[float]],
                  training: Dict[str, Any], seed: int = 0, check: bool = True,
                  fmt: Optional[ExportFormat] = None) -> Dict[str, Any]:
    """Writes out_dir/avatar.onnx and out_dir/avatar.json; returns the manifest."""
    fmt = fmt or _default_format
    out_dir.mkdir(parents=True, exist_ok=True)
    info = dict(training)
    info.update(model_facts(model))
    info["versions"] = versions()
    manifest = build_manifest(model.cfg, name, fps, mean, std, neutral, info, fmt)  # validate before the slow part
    facts = export_onnx(model, latent, out_dir / MODEL_FILE, seed=seed, check=check, fmt=fmt)
    manifest["training"].update(facts)
    write_json(out_dir / MANIFEST_FILE, manifest)
    return manifest
