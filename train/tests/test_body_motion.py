"""Variant W's body motion (`--body-motion`, train/model_warp.py finish_coarse and Trainer.init_body_map): a second
affine, linear in the whole normalised pose, weighted by a learned static map, moves what lies below the head."""
import json

import numpy as np
import pytest
import torch

from train.config import ModelConfig
from train.dataset import Dataset
from train.model_warp import WarpModel
from train.onnx_check import run_onnx
from train.reexport import checkpoint_from_avatar, reexport
from train.synth import write_synthetic_dataset
from train.trainer import Trainer

from .conftest import check_warp_switch, tiny_train_config
from .test_reexport import trained_avatar
from .test_warp import export_jittered, tiny_warp_config


def body_config(size: int = 32, grid: int = 16) -> ModelConfig:
    cfg = tiny_warp_config(size)
    cfg.warp_coarse_motion, cfg.warp_body_motion, cfg.warp_grid = True, True, grid
    return cfg.validate()


def reads(m: WarpModel, z: torch.Tensor) -> torch.Tensor:
    """Where each output pixel reads the reference, minus the pixel: [B, 2, S, S]."""
    s = m.size
    with torch.no_grad():
        out = m(z)
    return torch.stack([out["sx"], out["sy"]], 1).reshape(-1, 2, s, s) - m.pxy.reshape(1, 2, s, s)


def test_the_body_moves_where_its_map_is_on_linearly_in_the_pose():
    torch.manual_seed(0)
    m = WarpModel(body_config()).eval()
    m.set_reference(torch.rand(3, 32, 32))
    z = torch.zeros(3, 60)
    z[1, 3], z[2, 3] = 1.0, 2.0  # the head's x translation (normalised): 0, 1, 2
    before = reads(m, z)
    with torch.no_grad():
        m.body.weight[4, 3] = 0.1  # the body's x shift follows tx
        m.body_map.fill_(-30.0)
        m.body_map[..., 8:, :] = 30.0  # on for the bottom half of the flow grid only
    d = reads(m, z) - before  # what the body adds
    shift = 0.1 * m.cfg.rigid_scale * 32 / 2.0  # pixels per unit of tx
    assert float(d[0].abs().max()) < 1e-5  # at tx = 0 it adds nothing
    for i, t in ((1, 1.0), (2, 2.0)):
        assert torch.allclose(d[i, 0, 20:], torch.full((12, 32), shift * t), atol=1e-4)  # bottom: x moves by shift t
        assert float(d[i, 1].abs().max()) < 1e-5  # never y
        assert float(d[i, 0, :12].abs().max()) < 1e-5  # top rows: untouched (bilinear up-sampling blends row 16)


def test_the_body_learns_a_shoulder_that_follows_the_translation():
    """Frames whose lower half (a 'shoulder' edge) is shifted by 2 px per unit of tx, and no head motion: training
    only the body's parameters finds the shift (the rigidity can only move the edge as a fraction of the head's
    motion, the flow not at all: it does not see the translation)."""
    torch.manual_seed(1)
    s = 32
    m = WarpModel(body_config(s)).train()
    xx = torch.arange(s, dtype=torch.float32)[None, :].expand(s, s)
    yy = torch.arange(s, dtype=torch.float32)[:, None].expand(s, s)

    def picture(dx: float) -> torch.Tensor:
        edge = torch.sigmoid((xx - 12.0 - dx) * 1.5) * (yy >= 16)  # a vertical edge in the bottom half, moved by dx
        return torch.stack([edge, 1 - edge, 0.5 * torch.ones(s, s)])
    m.set_reference(picture(0.0))
    with torch.no_grad():
        m.rigid_map.fill_(-30.0)  # no head motion anywhere
        m.body_map.fill_(0.0)
    opt = torch.optim.Adam([m.body.weight, m.body.bias, m.body_map], lr=0.05)
    tx = torch.linspace(-1.5, 1.5, 8)
    z = torch.zeros(8, 60)
    z[:, 3] = tx
    gt = torch.stack([picture(2.0 * float(t)) for t in tx])
    first = None
    for _ in range(100):
        loss = (m(z)["warp"] - gt).abs().mean()
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.1 * first
    m.eval()
    d = reads(m, z)
    # at the edge (output column 12 + 2 tx) the output shows the reference's edge: it reads 2 tx to the left
    got = torch.stack([d[i, 0, 20:, int(round(12 + 2 * float(t)))].mean() for i, t in enumerate(tx)])
    assert torch.allclose(got, -2.0 * tx, atol=0.3), got


def test_the_trainer_starts_the_body_map_off_the_face_and_the_still_background(tmp_path):
    size = 128
    root = write_synthetic_dataset(tmp_path / "face", n=24, size=size, n_test=4, seed=3, kind="face")
    ds = Dataset(root)
    tr = Trainer(ds, body_config(size, 32), tiny_train_config(iterations=2), torch.device("cpu"), "tiny", "t", 25,
                 tmp_path / "out", progress=False)
    b = torch.sigmoid(tr.model.body_map.detach())[0, 0].numpy()
    assert b.min() == pytest.approx(0.05, abs=1e-4) and b.max() == pytest.approx(0.5, abs=1e-4)
    frames = ds.read_frames(ds.train_idx, size).astype(np.float32)
    motion = frames.mean(1).std(0).reshape(32, 4, 32, 4).mean((1, 3))
    # cells further than 3 (the motion map's smoothing, 9 px) from any where the clip changes
    moving = torch.from_numpy((motion > 1e-6).astype(np.float32))[None, None]
    still = (torch.nn.functional.max_pool2d(moving, 7, stride=1, padding=3)[0, 0] == 0).numpy()
    assert still.sum() >= 8 and b[still].max() < 0.06  # off where the clip never changes
    assert b[motion >= np.quantile(motion, 0.9)].min() > 0.45  # on where it moves most (no landmarks: no face box)
    # with the reference's face box (from its landmarks; this dataset has none): off there too
    tr.reference_face_box = lambda margin: (32, 48, 96, 112)
    tr.init_body_map()
    b2 = torch.sigmoid(tr.model.body_map.detach())[0, 0].numpy()
    assert b2[12:28, 8:24].max() < 0.06 and b2[still].max() < 0.06
    outside = np.ones_like(still)
    outside[12:28, 8:24] = False
    assert np.array_equal(b2[outside], b[outside])
    for _ in range(2):
        assert np.isfinite(tr.step()["loss"])
    assert float(tr.model.body.weight.abs().sum()) > 0  # the first steps reach the body's affine


def test_body_motion_exports_with_parity_and_reads_back(tmp_path):
    torch.manual_seed(4)
    m = WarpModel(body_config()).eval()
    m.set_reference(torch.rand(3, 32, 32))
    man = export_jittered(m, tmp_path / "a", "b", 4)
    assert man["training"]["parityMaxAbsDiff"] < 1e-4
    assert man["training"]["model"]["warp_body_motion"] is True
    # re-export from the folder finds the body's weights and map (the trained-avatar fixture: geometry, layers)
    m2 = trained_avatar(tmp_path / "c", dense=True, coarse=True, body=True)
    ck = checkpoint_from_avatar(tmp_path / "c")
    for k in ("body.weight", "body.bias", "body_map"):
        assert torch.equal(ck["model"][k], m2.state_dict()[k]), k
    man2 = reexport(tmp_path / "c", tmp_path / "d")
    assert man2["training"]["reExported"]["maxAbsDiffFromPrevious"] < 1e-4
    x = np.random.default_rng(0).standard_normal((4, 60)).astype(np.float32)
    a, _ = run_onnx(tmp_path / "c" / "avatar.onnx", "cond", x)
    b, _ = run_onnx(tmp_path / "d" / "avatar.onnx", "cond", x)
    assert float(np.abs(a - b).max()) < 1e-4


def test_body_motion_options():
    check_warp_switch("body_motion", preset_default=False)
    cfg = tiny_warp_config()
    cfg.warp_body_motion = True
    with pytest.raises(ValueError, match="warp_body_motion .* needs warp_coarse_motion"):
        cfg.validate()


def test_init_from_avatar_adds_body_motion_to_an_avatar_made_without_it(synth_dataset, tmp_path, capsys):
    """`train --init-from-avatar DIR --body-motion` on an avatar trained without it: the body's motion is added at
    zero (the same frames until the training moves it), then trained; --resume still refuses the change, and an
    avatar without coarse motion is refused."""
    from train.checkpoint import load_checkpoint
    from train.cli import main
    common = ["--data", str(synth_dataset), "--size", "128", "--eval-every", "2", "--checkpoint-every", "2",
              "--no-progress", "--no-aligned", "--no-eyes"]
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert main(["train", *common, "--out", str(a), "--iterations", "2", "--coarse-motion"]) == 0
    assert load_checkpoint(a / "checkpoint.pt")["model_config"]["warp_body_motion"] is False
    capsys.readouterr()
    assert main(["train", *common, "--out", str(b), "--iterations", "2", "--body-motion", "--init-from-avatar", str(a)]) == 0
    assert "trained without body motion: added, starting at zero" in capsys.readouterr().err
    mb = json.loads((b / "avatar.json").read_text())
    assert mb["training"]["model"]["warp_body_motion"] is True
    x = (torch.randn(4, 60, generator=torch.Generator().manual_seed(3)) * 0.7).numpy()
    ya, _ = run_onnx(a / "avatar.onnx", "cond", x)
    yb, _ = run_onnx(b / "avatar.onnx", "cond", x)
    assert np.abs(ya - yb).max() < 1e-5  # the body's affine starts at zero
    ckb = load_checkpoint(b / "checkpoint.pt")
    assert float(ckb["model"]["body.weight"].abs().max()) == 0.0
    assert 0.05 - 1e-4 <= float(torch.sigmoid(ckb["model"]["body_map"]).min())  # as init_body_map starts it
    assert main(["train", *common, "--out", str(c), "--iterations", "5", "--body-motion", "--init-from-avatar", str(a)]) == 0
    ckc = load_checkpoint(c / "checkpoint.pt")
    assert ckc["iteration"] == 5 and ckc["model_config"]["warp_body_motion"] is True
    assert float(ckc["model"]["body.weight"].abs().max()) > 0  # trained
    # reading the new avatar back and going on with it keeps the body
    assert main(["train", *common, "--out", str(tmp_path / "d"), "--iterations", "6", "--init-from-avatar", str(c)]) == 0
    assert load_checkpoint(tmp_path / "d" / "checkpoint.pt")["model_config"]["warp_body_motion"] is True
    capsys.readouterr()
    assert main(["train", *common, "--out", str(a), "--iterations", "4", "--body-motion", "--resume"]) == 1
    assert "--body-motion does not match the checkpoint, whose body motion is off" in capsys.readouterr().err
    e = tmp_path / "e"
    assert main(["train", *common, "--out", str(e), "--iterations", "2", "--no-coarse-motion"]) == 0
    assert main(["train", *common, "--out", str(tmp_path / "f"), "--body-motion", "--init-from-avatar", str(e)]) == 1
    assert "--body-motion needs coarse motion, which" in capsys.readouterr().err
