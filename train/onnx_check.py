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


def _python_onnxruntime():  # type: ignore[no-untyped-def]
    try:
        import onnxruntime  # type: ignore[import-not-found]
        return onnxruntime
    except ImportError:
        return None


def run_onnx(model_path: Path, input_name: str, x: np.ndarray) -> Tuple[np.ndarray, str]:
    """Runs the model on x (float32) in onnxruntime-node; returns (output, output name). The output is float32,
    or uint8 for a model with a yuv420p output. Where there is no Node.js but Python's onnxruntime (GPU hosts),
    or DNP_ONNX_CHECK=python, the same check runs in Python's onnxruntime (CPU provider, same options)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    want_python = os.environ.get("DNP_ONNX_CHECK") == "python"
    if want_python or (not (os.environ.get("DNP_NODE") or shutil.which("node")) and _python_onnxruntime() is not None):
        ort = _python_onnxruntime()
        if ort is None:
            raise ParityError("DNP_ONNX_CHECK=python, but Python's onnxruntime is not installed")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        out = sess.get_outputs()[0].name
        return np.asarray(sess.run([out], {input_name: x})[0]), out
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
        dtypes = {"float32": np.float32, "uint8": np.uint8}
        kind = str(meta.get("type", "float32"))
        if kind not in dtypes:
            raise ParityError(f"{model_path}: output type {kind} is not float32 or uint8")
        y = np.frombuffer(out.read_bytes(), dtype=dtypes[kind]).reshape(shape)
        return y, str(meta["name"])


ORT_BENCH = r"""
import * as ort from 'onnxruntime-node';
const [model, threads, n] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const s = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
const x = new ort.Tensor('float32', new Float32Array(60).map(() => Math.random() - 0.5), [1, 60]);
for (let i = 0; i < 5; i++) await s.run({ cond: x });
const t = [];
for (let i = 0; i < n; i++) { const a = performance.now(); await s.run({ cond: x }); t.push(performance.now() - a); }
t.sort((a, b) => a - b);
console.log(JSON.stringify({ median: t[Math.floor(n / 2)], p90: t[Math.floor(n * 0.9)] }));
await s.release();
"""


def ort_time(model: Path, threads: int, runs: int) -> dict:
    """Median and p90 milliseconds of one batch-1 frame in onnxruntime-node (graph optimisation 'all')."""
    r = subprocess.run([node_binary(), "--input-type=module", "-e", ORT_BENCH, str(model), str(threads), str(runs)],
                       cwd=str(HERE.parent), capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise ParityError(f"onnxruntime-node failed to time {model}: {r.stderr.strip()[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])
