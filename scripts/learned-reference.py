"""The learned reference of a variant W checkpoint (`--learned-reference`): the frame, the frame with the learned
change, and the change (amplified about grey), side by side in one PNG, with a crop of the face at 2x.

    /usr/bin/python3 scripts/learned-reference.py AVATAR_DIR/checkpoint.pt OUT.png [--gain 8]
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from train.checkpoint import load_checkpoint  # noqa: E402


def to_image(x: torch.Tensor) -> Image.Image:
    return Image.fromarray((x.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--gain", type=float, default=8.0, help="the change is drawn as 0.5 + gain * change (default 8)")
    a = p.parse_args()
    ck = load_checkpoint(a.checkpoint, map_location="cpu")
    state = ck["model"]
    if "ref_delta" not in state:
        p.error(f"{a.checkpoint}: no learned reference (trained without --learned-reference)")
    ref, delta = state["reference"].float(), state["ref_delta"].float()
    if ref.dim() != 3:
        p.error("one reference frame expected")
    s = ref.shape[-1]
    panels = [ref, ref + delta, 0.5 + a.gain * delta]
    c0, c1 = s // 4, s // 4 + s // 2  # the centre half, where the face is, at 2x
    crops = [enlarge(x[:, c0:c1, c0:c1], s) for x in panels]
    top = np.concatenate([np.asarray(to_image(x)) for x in panels], 1)
    bottom = np.concatenate([np.asarray(to_image(x)) for x in crops], 1)
    Image.fromarray(np.concatenate([top, bottom], 0)).save(a.out)
    d = delta.abs() * 255
    print(f"{a.out}: change of the reference, 0-255 levels: mean {float(d.mean()):.2f}, "
          f"99th percentile {float(torch.quantile(d.flatten()[::7], 0.99)):.2f}, max {float(d.max()):.2f}")
    return 0


def enlarge(x: torch.Tensor, size: int) -> torch.Tensor:
    """Nearest-neighbour enlargement (pixels stay visible)."""
    return torch.nn.functional.interpolate(x[None], size=(size, size), mode="nearest")[0]


if __name__ == "__main__":
    sys.exit(main())
