"""Where the dense warp's points lie: a variant W checkpoint's fitted face points (green) and the head's outline
points that `--head-outline` adds (red, train/face_geometry.py head_outline_points), projected at the pose of each
chosen frame of its dataset and drawn on the frame at 2x, side by side in one PNG. Works for any checkpoint with
the fitted geometry (without `--head-outline` it shows where the outline would be).

    /usr/bin/python3 scripts/head-outline.py DATASET AVATAR_DIR/checkpoint.pt OUT.png [--frames 58,465]
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from train.checkpoint import load_checkpoint  # noqa: E402
from train.dataset import Dataset  # noqa: E402
from train.face_geometry import head_outline_points, project  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", type=Path)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--frames", default="", help="comma-separated frame indices (default: the first and the last)")
    a = p.parse_args()
    state = load_checkpoint(a.checkpoint, map_location="cpu")["model"]
    if "face_points" not in state:
        sys.stderr.write(f"{a.checkpoint}: no fitted head geometry (a variant W checkpoint trained with it is needed)\n")
        return 2
    ds = Dataset(a.dataset)
    n = ds.cond.shape[0]
    try:
        frames = [int(f) for f in a.frames.split(",")] if a.frames else [0, n - 1]
    except ValueError:
        sys.stderr.write(f"--frames: {a.frames!r} is not a comma-separated list of frame indices\n")
        return 2
    bad = [f for f in frames if not 0 <= f < n]
    if bad:
        sys.stderr.write(f"--frames: {bad[0]} is outside 0..{n - 1}\n")
        return 2
    pts, cam = state["face_points"].double(), state["camera"].double()
    outline = state["outline_points"].double() if "outline_points" in state else head_outline_points(pts)
    size = int(state["reference"].shape[-1])
    scale = 2
    sheet = Image.new("RGB", (size * scale * len(frames), size * scale))
    for k, f in enumerate(frames):
        img = ds.read_frames([f], size)[0].transpose(1, 2, 0)
        im = Image.fromarray(np.ascontiguousarray(img)).resize((size * scale, size * scale), Image.BICUBIC)
        d = ImageDraw.Draw(im)
        pose = torch.from_numpy(ds.cond[f:f + 1, :6]).double()
        for points, colour, r in ((pts, (0, 230, 0), 3), (outline, (230, 0, 0), 5)):
            u, v = project(pose, points, cam)
            for x, y in zip(u[0].tolist(), v[0].tolist()):
                d.ellipse([scale * x - r, scale * y - r, scale * x + r, scale * y + r], fill=colour)
        d.text((6, 4), f"frame {f}", fill=(255, 255, 255))
        sheet.paste(im, (k * size * scale, 0))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(a.out)
    print(f"wrote {a.out} ({len(frames)} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
