"""Measures training speed (iterations/s) per preset and the exported model's onnxruntime-node inference time.

    /usr/bin/python3 -m train.bench [--presets cpu,paper] [--sizes 256,512] [--steps 20] [--ort-runs 50]

Uses a synthetic dataset in a temporary folder; prints one JSON line per measurement."""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from .config import preset_configs  # noqa: E402
from .dataset import Dataset  # noqa: E402
from .export import export_onnx  # noqa: E402
from .model import PortraitModel, inference_flops, smooth_untrained_init  # noqa: E402
from .onnx_check import ort_time  # noqa: E402
from .synth import write_synthetic_dataset  # noqa: E402
from .trainer import Trainer  # noqa: E402

def main() -> None:
    ap = argparse.ArgumentParser(prog="python3 -m train.bench")
    ap.add_argument("--presets", default="cpu,paper")
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--ort-runs", type=int, default=50)
    ap.add_argument("--ort-presets", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory(prefix="dnp-bench-") as td:
        for size in [int(s) for s in a.sizes.split(",")]:
            ds = Dataset(write_synthetic_dataset(Path(td) / f"ds{size}", n=24, size=size, n_test=4))
            for preset in a.presets.split(","):
                mcfg, tcfg = preset_configs(preset, size)
                mcfg.n_latents = len(ds.train_idx)
                tcfg.amp = True
                dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
                tr = Trainer(ds, mcfg, tcfg, dev, preset, "bench", 25, Path(td), progress=False)
                for _ in range(3):
                    tr.step()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.time()
                for _ in range(a.steps):
                    tr.step()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                dt = time.time() - t0
                print(json.dumps({"what": "train", "preset": preset, "size": size, "batch": tcfg.batch, "device": str(dev),
                                  "torch_threads": a.threads, "it_per_s": a.steps / dt,
                                  "gflop_per_frame": inference_flops(mcfg)["total"] / 1e9}), flush=True)
                if preset in a.ort_presets.split(","):
                    m = PortraitModel(mcfg).eval()
                    with torch.no_grad():
                        smooth_untrained_init(m, 0)
                    path = Path(td) / f"{preset}{size}.onnx"
                    export_onnx(m, m.mean_latent(), path)
                    for th in (1, 2):
                        t = ort_time(path, th, a.ort_runs)
                        print(json.dumps({"what": "ort", "preset": preset, "size": size, "threads": th, "median_ms": t["median"],
                                          "p90_ms": t["p90"], "mb": path.stat().st_size / 1e6}), flush=True)


if __name__ == "__main__":
    main()
