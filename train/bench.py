"""PyTorch benchmarks; one JSON object per line on stdout (progress on stderr).

    python3 -m train.bench render [--presets paper] [--sizes 256,512,1024] [--batches 1,8,32]
                                  [--dtypes fp32,fp16,bf16] [--modes eager,graphs,compile] [--device cuda] [--seconds 3]
        The inference graph alone (what avatar.onnx holds), untrained weights: ms per batch (median, p90), frames/s
        and TFLOP/s against the model's FLOPs per frame. Modes: eager; graphs = one CUDA graph per (size, batch,
        dtype), replayed (CUDA only); compile = torch.compile(mode="max-autotune-no-cudagraphs") (PyTorch 2.x).
        The ceiling for any runtime, before onnxruntime.
    python3 -m train.bench train [--presets paper,cpu] [--sizes 256,512] [--steps 20] [--device cuda] [--no-amp]
                                 [--compile]
        Training iterations/s on a synthetic dataset (AMP on CUDA unless --no-amp; --compile wraps the model's
        forward in torch.compile).
    python3 -m train.bench ort [--presets cpu] [--sizes 256,512] [--ort-runs 50]
        The exported model's batch-1 time in onnxruntime-node (needs Node.js), 1 and 2 threads.

Every record names the device, the dtype and torch's version. Runs on the CPU with tiny settings (tests)."""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Dict, List, Optional  # noqa: E402

import torch  # noqa: E402

from .build import AnyModel, build_model, export_module, model_flops  # noqa: E402
from .config import PRESETS, COND_SIZE, preset_configs  # noqa: E402

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
MODES = ("eager", "graphs", "compile")


def _ints(v: str) -> List[int]:
    out = [int(x) for x in v.split(",") if x.strip()]
    if not out or any(n < 1 for n in out):
        raise argparse.ArgumentTypeError("expected a comma-separated list of positive whole numbers")
    return out


def _names(allowed: Any) -> Callable[[str], List[str]]:
    def parse(v: str) -> List[str]:
        out = [x.strip() for x in v.split(",") if x.strip()]
        bad = [x for x in out if x not in allowed]
        if not out or bad:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(bad) or 'empty list'}; choose from {', '.join(allowed)}")
        return out
    return parse


def _device(name: Optional[str]) -> torch.device:
    d = torch.device(name) if name else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if d.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("train.bench: --device cuda asked for, but PyTorch sees no CUDA device")
    return d


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _quantile(xs: List[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def _env(dev: torch.device) -> Dict[str, Any]:
    e: Dict[str, Any] = {"device": str(dev), "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    if dev.type == "cuda":
        e["gpu"] = torch.cuda.get_device_name(dev)
    return e


def _untrained(preset: str, size: int) -> AnyModel:
    from .model import smooth_untrained_init
    from .model_warp import WarpModel, untrained_warp_init
    cfg, _ = preset_configs(preset, size)
    cfg.n_latents = 1
    torch.manual_seed(0)
    m = build_model(cfg).eval()
    with torch.no_grad():
        (untrained_warp_init if isinstance(m, WarpModel) else smooth_untrained_init)(m, 0)  # type: ignore[operator]
    return m


def _time(fn: Callable[[], Any], dev: torch.device, seconds: float, min_runs: int) -> List[float]:
    """Milliseconds per call: warm-up (3 calls), then calls until `seconds` have passed and at least min_runs."""
    for _ in range(3):
        fn()
    _sync(dev)
    times: List[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        times.append(1000 * (time.perf_counter() - t0))
        if len(times) >= 10_000:
            break
    return times


def _runner(graph: torch.nn.Module, x: torch.Tensor, mode: str, dev: torch.device) -> Callable[[], Any]:
    if mode == "eager":
        return lambda: graph(x)
    if mode == "compile":
        if not hasattr(torch, "compile"):
            raise RuntimeError(f"torch.compile needs PyTorch 2 (this is {torch.__version__})")
        compiled = torch.compile(graph, mode="max-autotune-no-cudagraphs" if dev.type == "cuda" else "default")
        return lambda: compiled(x)
    if dev.type != "cuda":
        raise RuntimeError("CUDA graphs need a CUDA device")
    static_x = x.clone()
    stream = torch.cuda.Stream(dev)
    stream.wait_stream(torch.cuda.current_stream(dev))
    with torch.cuda.stream(stream):
        for _ in range(3):
            graph(static_x)
    torch.cuda.current_stream(dev).wait_stream(stream)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        graph(static_x)
    return g.replay


def bench_render(a: argparse.Namespace) -> None:
    dev = _device(a.device)
    for preset in a.presets:
        for size in a.sizes:
            model = _untrained(preset, size)
            flops = model_flops(model.cfg)["total"]
            graph32 = export_module(model, model.mean_latent()).eval()  # built in fp32 on the CPU (constant folding)
            for dtype_name in a.dtypes:
                dtype = DTYPES[dtype_name]
                graph = copy.deepcopy(graph32).to(dev, dtype).eval()
                for batch in a.batches:
                    x = (torch.randn(batch, COND_SIZE, generator=torch.Generator().manual_seed(batch)) * 0.5).to(dev, dtype)
                    for mode in a.modes:
                        rec: Dict[str, Any] = {"what": "render", "preset": preset, "size": size, "batch": batch,
                                               "dtype": dtype_name, "mode": mode, "gflop_per_frame": flops / 1e9, **_env(dev)}
                        try:
                            try:
                                with torch.inference_mode():
                                    times = _time(_runner(graph, x, mode, dev), dev, a.seconds, a.min_runs)
                            except RuntimeError:
                                if dtype is torch.float32:
                                    raise
                                # a model that keeps float32 tensors of its own (variant W's head geometry) cannot be
                                # cast whole: its fp16/bf16 run is the float32 graph under autocast
                                g32, x32 = copy.deepcopy(graph32).to(dev).eval(), x.float()
                                with torch.inference_mode(), torch.autocast(device_type=dev.type, dtype=dtype):
                                    times = _time(_runner(g32, x32, mode, dev), dev, a.seconds, a.min_runs)
                                rec["autocast"] = True
                        except Exception as err:  # a dtype or mode this device/torch cannot do: say so, go on
                            rec["error"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]
                            print(json.dumps(rec), flush=True)
                            continue
                        med = _quantile(times, 0.5)
                        rec.update({"runs": len(times), "batch_ms_median": med, "batch_ms_p90": _quantile(times, 0.9),
                                    "frame_ms_median": med / batch, "frames_per_s": 1000 * batch / med,
                                    "tflop_per_s": flops * batch / (med / 1000) / 1e12,
                                    "sessions_at_25fps": int(1000 * batch / med // 25)})
                        print(json.dumps(rec), flush=True)
                        sys.stderr.write(f"render {preset} {size} b{batch} {dtype_name} {mode}: {med:.2f} ms/batch, "
                                         f"{rec['frames_per_s']:.0f} frames/s\n")
                del graph
                if dev.type == "cuda":
                    torch.cuda.empty_cache()


def bench_train(a: argparse.Namespace) -> None:
    from .dataset import Dataset
    from .synth import write_synthetic_dataset
    from .trainer import Trainer
    dev = _device(a.device)
    with tempfile.TemporaryDirectory(prefix="dnp-bench-") as td:
        for size in a.sizes:
            ds = Dataset(write_synthetic_dataset(Path(td) / f"ds{size}", n=24, size=size, n_test=4))
            for preset in a.presets:
                mcfg, tcfg = preset_configs(preset, size)
                mcfg.n_latents = len(ds.train_idx)
                tcfg.amp = not a.no_amp
                if a.batch:
                    tcfg.batch = a.batch
                tr = Trainer(ds, mcfg, tcfg, dev, preset, "bench", 25, Path(td), progress=False)
                if a.compile:
                    tr.model.forward = torch.compile(tr.model.forward)  # type: ignore[method-assign]
                for _ in range(3):
                    tr.step()
                _sync(dev)
                t0 = time.perf_counter()
                for _ in range(a.steps):
                    tr.step()
                _sync(dev)
                dt = time.perf_counter() - t0
                print(json.dumps({"what": "train", "preset": preset, "size": size, "batch": tcfg.batch, "amp": tr.amp,
                                  "compile": bool(a.compile), "steps": a.steps, "it_per_s": a.steps / dt,
                                  "frames_per_s": a.steps * tcfg.batch / dt,
                                  "gflop_per_frame": model_flops(mcfg)["total"] / 1e9, **_env(dev)}), flush=True)


def bench_ort(a: argparse.Namespace) -> None:
    from .export import export_onnx
    from .onnx_check import ort_time
    with tempfile.TemporaryDirectory(prefix="dnp-bench-") as td:
        for size in a.sizes:
            for preset in a.presets:
                m = _untrained(preset, size)
                path = Path(td) / f"{preset}{size}.onnx"
                export_onnx(m, m.mean_latent(), path)
                for th in (1, 2):
                    t = ort_time(path, th, a.ort_runs)
                    print(json.dumps({"what": "ort", "preset": preset, "size": size, "threads": th, "median_ms": t["median"],
                                      "p90_ms": t["p90"], "mb": path.stat().st_size / 1e6}), flush=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python3 -m train.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    sub = p.add_subparsers(dest="what", required=True)
    presets = _names(sorted(PRESETS))
    r = sub.add_parser("render", help="the inference graph in PyTorch: ms per batch, frames/s, TFLOP/s")
    r.add_argument("--presets", type=presets, default=["paper"])
    r.add_argument("--sizes", type=_ints, default=[256, 512, 1024])
    r.add_argument("--batches", type=_ints, default=[1, 8, 32])
    r.add_argument("--dtypes", type=_names(list(DTYPES)), default=["fp32", "fp16", "bf16"])
    r.add_argument("--modes", type=_names(MODES), default=["eager", "graphs"],
                   help="eager, graphs (CUDA graphs; CUDA only), compile (torch.compile; PyTorch 2)")
    r.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    r.add_argument("--seconds", type=float, default=2.0, help="measured seconds per case (after 3 warm-up calls)")
    r.add_argument("--min-runs", type=int, default=5, help="at least this many measured calls per case")
    t = sub.add_parser("train", help="training iterations/s on a synthetic dataset")
    t.add_argument("--presets", type=presets, default=["paper", "cpu"])
    t.add_argument("--sizes", type=_ints, default=[256, 512])
    t.add_argument("--steps", type=int, default=20)
    t.add_argument("--batch", type=int, default=None, help="frames per iteration (default: the preset's)")
    t.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    t.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    t.add_argument("--compile", action="store_true", help="torch.compile the model's forward (PyTorch 2)")
    o = sub.add_parser("ort", help="the exported model in onnxruntime-node (needs Node.js)")
    o.add_argument("--presets", type=presets, default=["cpu"])
    o.add_argument("--sizes", type=_ints, default=[256, 512])
    o.add_argument("--ort-runs", type=int, default=50)
    return p


def main(argv: Optional[List[str]] = None) -> None:
    a = parser().parse_args(argv)
    torch.set_num_threads(a.threads)
    {"render": bench_render, "train": bench_train, "ort": bench_ort}[a.what](a)


if __name__ == "__main__":
    main()
