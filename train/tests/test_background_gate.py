"""Variant W's background gate (`--background-gate`, train/model_warp.py and Trainer.init_background_gate): the
expression flow is multiplied by a learned map that starts closed where the training clip never changes."""
import argparse

import numpy as np
import pytest
import torch

from train.config import preset_configs
from train.dataset import Dataset
from train.model_warp import WarpModel
from train.synth import write_synthetic_dataset
from train.trainer import GATE_SPREAD_CELLS, Trainer, apply_warp_options

from .conftest import check_warp_switch, tiny_train_config
from .test_warp import export_jittered, tiny_warp_config


def gated_config(size: int = 32, grid: int = 16):
    cfg = tiny_warp_config(size)
    cfg.warp_background_gate, cfg.warp_grid = True, grid
    return cfg.validate()


def test_the_gate_scales_the_expression_flow_and_nothing_else():
    torch.manual_seed(0)
    m = WarpModel(gated_config()).eval()
    m.set_reference(torch.rand(3, 32, 32))
    with torch.no_grad():
        m.head.bias[:2] = 0.5  # the same flow everywhere
        m.head.bias[2] = 4.0  # (rigidity logit: the head motion too, which the gate leaves alone)
        m.rigid.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.1, -0.05]))
        m.flow_gate.fill_(-30.0)
        m.flow_gate[..., 8:, :] = 30.0  # closed on the top half, open on the bottom half
    z = torch.zeros(1, 60)
    with torch.no_grad():
        out = m(z)
        m.flow_gate.fill_(30.0)
        open_out = m(z)
    flow, open_flow = out["flow"][0], open_out["flow"][0]  # [2, S, S] pixels
    assert float(open_flow.abs().min()) > 0.5
    assert float(flow[:, :12].abs().max()) < 1e-6  # top rows: no expression flow (bilinear up-sampling blends row 16)
    assert torch.allclose(flow[:, 20:], open_flow[:, 20:])
    # the rigid head motion still moves the closed half: its reads differ from the identity by the head's shift
    px = torch.arange(32.0)[None, :].expand(32, 32)
    shift = out["sx"][0].reshape(32, 32) - px
    assert float(shift[:12].abs().mean()) > 0.1


def test_the_trainer_starts_the_gate_closed_on_the_still_background(tmp_path):
    size = 128
    root = write_synthetic_dataset(tmp_path / "face", n=24, size=size, n_test=4, seed=3, kind="face")
    ds = Dataset(root)
    frames = ds.read_frames(ds.train_idx, size).astype(np.float32)
    motion = frames.mean(1).std(0)  # [S, S]: where the clip changes
    tr = Trainer(ds, gated_config(size, 32), tiny_train_config(iterations=2), torch.device("cpu"), "tiny", "t", 25,
                 tmp_path / "out", progress=False)
    gate = torch.sigmoid(tr.model.flow_gate.detach())[0, 0].numpy()  # [G, G]
    assert gate.min() == pytest.approx(0.05, abs=1e-4) and gate.max() == pytest.approx(0.95, abs=1e-4)
    cell = size // gate.shape[0]
    cell_motion = motion.reshape(gate.shape[0], cell, gate.shape[1], cell).mean((1, 3))
    assert gate[cell_motion >= np.quantile(cell_motion, 0.9)].min() > 0.9  # where the face moves: open
    # cells of a background that never changes, further than GATE_SPREAD_CELLS (and the motion map's smoothing,
    # 9 px) from any that does: closed
    moving = torch.from_numpy((cell_motion > 1e-6).astype(np.float32))[None, None]
    r = GATE_SPREAD_CELLS + 2
    far = (torch.nn.functional.max_pool2d(moving, 2 * r + 1, stride=1, padding=r)[0, 0] == 0).numpy()
    assert far.sum() >= 8 and gate[far].max() < 0.06
    for _ in range(2):
        assert np.isfinite(tr.step()["loss"])


def test_gated_model_exports_with_parity(tmp_path):
    torch.manual_seed(4)
    m = WarpModel(gated_config()).eval()
    m.set_reference(torch.rand(3, 32, 32))
    with torch.no_grad():
        m.flow_gate.copy_(torch.randn_like(m.flow_gate) * 3)
    man = export_jittered(m, tmp_path, "g", 4)
    assert man["training"]["parityMaxAbsDiff"] < 1e-4
    assert man["training"]["model"]["warp_background_gate"] is True


def test_background_gate_options():
    check_warp_switch("background_gate", preset_default=False)
