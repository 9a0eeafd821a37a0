"""How well one or more avatars draw every frame of their dataset, training and held-out, in clip order: per-frame
PSNR printed as means over 20-frame stretches, a summary of the training frames (mean, worst and best tenth) and, with
--png, a plot of the per-frame PSNR along the clip (the held-out part shaded), one line per checkpoint.

    /usr/bin/python3 scripts/fit-along-clip.py DATASET_DIR A/checkpoint.pt [B/checkpoint.pt ...] [--png OUT.png]
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from train.checkpoint import load_checkpoint, model_from_checkpoint  # noqa: E402
from train.dataset import Dataset  # noqa: E402
from train.trainer import psnr  # noqa: E402

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189)]


@torch.no_grad()
def per_frame_psnr(checkpoint: Path, ds: Dataset) -> np.ndarray:
    ck = load_checkpoint(checkpoint, map_location="cpu")
    model = model_from_checkpoint(ck)
    mean = np.asarray(ck["norm"]["mean"], np.float32)
    std = np.asarray(ck["norm"]["std"], np.float32)
    size = int(ck["model_config"]["size"])
    n = ds.cond.shape[0]
    out = np.empty(n)
    for i in range(0, n, 8):
        idx = list(range(i, min(n, i + 8)))
        z = torch.from_numpy((ds.cond[idx] - mean) / std).float()
        y = model(z, want_low=False)["rgb"].float()
        t = torch.from_numpy(ds.read_frames(idx, size)).float() / 255.0
        out[i:i + len(idx)] = psnr(((y - t) ** 2).mean(dim=(1, 2, 3))).numpy()
    return out


def plot(curves: "list[tuple[str, np.ndarray]]", test_from: int, path: Path) -> None:
    w, h, left, bottom, top = 900, 360, 50, 30, 12
    lo = np.floor(min(float(c.min()) for _, c in curves)) - 1
    hi = np.ceil(max(float(c.max()) for _, c in curves)) + 1
    n = len(curves[0][1])
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    x = lambda i: left + (w - left - 10) * i / max(1, n - 1)  # noqa: E731
    y = lambda v: top + (h - top - bottom) * (hi - v) / (hi - lo)  # noqa: E731
    d.rectangle([x(test_from), top, w - 10, h - bottom], fill=(238, 238, 238))
    d.text((x(test_from) + 4, top + 2), "held out", fill="black")
    step = 5 if hi - lo > 12 else 2
    for v in np.arange(np.ceil(lo / step) * step, hi + 1e-6, step):
        d.line([left, y(v), w - 10, y(v)], fill=(210, 210, 210))
        d.text((4, y(v) - 6), f"{v:.0f} dB", fill="black")
    for k in range(0, n, 100):
        d.text((x(k) - 8, h - bottom + 6), str(k), fill="black")
    for j, (name, c) in enumerate(curves):
        col = COLOURS[j % len(COLOURS)]
        d.line([(x(i), y(float(v))) for i, v in enumerate(c)], fill=col, width=1)
        d.text((left + 10, h - bottom - 14 * (len(curves) - j)), name, fill=col)
    img.save(path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", type=Path)
    p.add_argument("checkpoints", type=Path, nargs="+")
    p.add_argument("--png", type=Path, help="write a plot of the per-frame PSNR along the clip here")
    a = p.parse_args()
    ds = Dataset(a.dataset)
    test_from = int(ds.test_idx[0]) if len(ds.test_idx) else ds.cond.shape[0]
    curves = []
    for ckp in a.checkpoints:
        c = per_frame_psnr(ckp, ds)
        name = ckp.parent.name
        curves.append((name, c))
        tr = np.sort(c[ds.train_idx])
        tenth = max(1, len(tr) // 10)
        print(f"{name}: training frames mean {tr.mean():.2f} dB, worst tenth {tr[:tenth].mean():.2f}, best tenth "
              f"{tr[-tenth:].mean():.2f}; held-out frames mean {c[ds.test_idx].mean():.2f}")
        row = [f"{k:4d}{'*' if k >= test_from else ' '} {c[k:k + 20].mean():5.2f}" for k in range(0, len(c), 20)]
        for k in range(0, len(row), 6):
            print("   ".join(row[k:k + 6]))
    if a.png:
        plot(curves, test_from, a.png)
        print(f"wrote {a.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
