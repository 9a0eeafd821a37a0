"""Variant W's learned reference (`--learned-reference`, train/model_warp.py): a learned change of the reference
frame's colours, read by GridSample while training and folded into the graph's neighbour table for eval and export."""
import numpy as np
import onnx
import pytest
import torch

from train.dataset import Dataset
from train.model_warp import WarpModel, neighbour_table
from train.onnx_check import run_onnx
from train.reexport import checkpoint_from_avatar, reexport
from train.trainer import REFERENCE_LR_SCALE, Trainer

from .conftest import check_warp_switch, tiny_train_config
from .test_reexport import trained_avatar
from .test_warp import export_jittered, tiny_warp_config


def learned_config(size: int = 32):
    cfg = tiny_warp_config(size)
    cfg.warp_learned_reference = True
    return cfg.validate()


def moving_model(seed: int = 0) -> WarpModel:
    """A model with a learned change of its reference and motion that reads between the pixels."""
    torch.manual_seed(seed)
    m = WarpModel(learned_config())
    m.set_reference(torch.rand(3, 32, 32))
    with torch.no_grad():
        m.ref_delta.normal_(0.0, 0.1)
        m.head.bias[:2] = 0.02  # a sub-pixel flow everywhere
        m.rigid.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0, 0.03, -0.02]))
    return m


def test_learned_reference_options():
    check_warp_switch("learned_reference", preset_default=False)
    bad = learned_config()
    bad.warp_refs = 2
    with pytest.raises(ValueError, match="learned_reference"):
        bad.validate()


def test_training_and_eval_read_the_same_reference():
    m = moving_model()
    z = torch.randn(3, 60) * 0.5
    m.train()
    with torch.no_grad():
        a = m(z)
    m.eval()
    with torch.no_grad():
        b = m(z)
    # eval reads the folded table: reference + change
    assert torch.equal(m.table, neighbour_table(m.reference + m.ref_delta))
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))  # the border clamps differ by 1e-3 px
    assert float((a["warp"] - b["warp"])[inner].abs().max()) < 1e-5
    assert float((a["rgb"] - b["rgb"]).abs().max()) < 1e-3
    # and the change is what is read: without it the warp differs by about its size
    with torch.no_grad():
        m.ref_delta.zero_()
    m.eval()
    with torch.no_grad():
        c = m(z)
    assert float((b["warp"] - c["warp"]).abs().mean()) > 0.05


def test_the_gradient_reaches_the_reference_and_only_where_it_is_read():
    m = moving_model().train()
    with torch.no_grad():
        m.rigid.bias.zero_()
        m.head.bias[:2] = 0.0
        m.head.weight.zero_()
    out = m(torch.zeros(1, 60))
    out["warp"][..., :8, :].sum().backward()  # the top 8 rows of the output read the top 8 rows of the reference
    g = m.ref_delta.grad
    assert g is not None and float(g[:, :7].abs().min()) > 0
    assert float(g[:, 10:].abs().max()) == 0


def test_the_trainer_learns_the_reference_at_a_slower_rate(synth_dataset, tmp_path):
    ds = Dataset(synth_dataset)
    tr = Trainer(ds, learned_config(), tiny_train_config(iterations=3), torch.device("cpu"), "tiny", "t", 25,
                 tmp_path / "out", progress=False)
    assert float(tr.model.ref_delta.abs().max()) == 0
    groups = [g for g in tr.opt.param_groups if any(p is tr.model.ref_delta for p in g["params"])]
    assert len(groups) == 1 and len(groups[0]["params"]) == 1
    assert groups[0]["base_lr"] == pytest.approx(tr.tcfg.lr * REFERENCE_LR_SCALE)
    for _ in range(3):
        assert np.isfinite(tr.step()["loss"])
    assert float(tr.model.ref_delta.abs().max()) > 0
    tr.model.eval()
    assert torch.equal(tr.model.table, neighbour_table(tr.model.reference + tr.model.ref_delta.detach()))


def test_export_folds_the_change_into_the_graph_with_parity(tmp_path):
    m = moving_model(1).eval()
    man = export_jittered(m, tmp_path / "a", "r", 3)
    assert man["training"]["parityMaxAbsDiff"] < 1e-4
    assert man["training"]["model"]["warp_learned_reference"] is True
    names = {i.name for i in onnx.load(str(tmp_path / "a" / "avatar.onnx")).graph.initializer}
    assert not any("ref_delta" in n for n in names)
    x = np.random.default_rng(0).standard_normal((2, 60)).astype(np.float32) * 0.5
    got, _ = run_onnx(tmp_path / "a" / "avatar.onnx", "cond", x)
    with torch.no_grad():
        want = m.eval()(torch.from_numpy(x))["rgb"].numpy()
    assert float(np.abs(got - want).max()) < 1e-4


def test_reexport_reads_the_folded_reference_back(tmp_path):
    trained_avatar(tmp_path / "a", dense=True, learned_reference=True)
    ck = checkpoint_from_avatar(tmp_path / "a")
    assert float(ck["model"]["ref_delta"].abs().max()) == 0
    man = reexport(tmp_path / "a", tmp_path / "b")
    assert man["training"]["reExported"]["maxAbsDiffFromPrevious"] < 1e-4
