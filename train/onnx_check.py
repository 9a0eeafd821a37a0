"""Runs an exported ONNX file for real (onnxruntime-node via a small Node script) and compares with PyTorch."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import List, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent
ORT_RUN = HERE / "ort_run.mjs"


class ParityError(RuntimeError):
    pass


def node_binary() -> str:
    node = os.environ.get("DNP_NODE") or shutil.which("node")
    if not node:
        raise ParityError("Node.js is needed to check the exported model with onnxruntime-node (not found on PATH; set DNP_NODE)")
    return node


def run_onnx(model_path: Path, input_name: str, x: np.ndarray) -> Tuple[np.ndarray, str]:
    """Runs the model on x (float32) in onnxruntime-node; returns (output, output name)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="dnp-ort-") as td:
        inp, out = Path(td) / "in.bin", Path(td) / "out.bin"
        inp.write_bytes(x.tobytes())
        dims = ",".join(str(d) for d in x.shape)
        r = subprocess.run([node_binary(), str(ORT_RUN), str(model_path), input_name, str(inp), dims, str(out)],
                           cwd=str(HERE.parent), capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise ParityError(f"onnxruntime-node failed to run {model_path}: {r.stderr.strip()[-2000:]}")
        meta = json.loads(r.stdout.strip().splitlines()[-1])
        shape: List[int] = [int(d) for d in meta["dims"]]
        y = np.frombuffer(out.read_bytes(), dtype=np.float32).reshape(shape)
        return y, str(meta["name"])
