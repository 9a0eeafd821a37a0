"""Re-export from an avatar folder (train/reexport.py, `python3 -m train export --from-avatar`): the weights read back
from avatar.onnx are the model's own, the rebuilt graph gives the same frames, and what cannot be rebuilt is refused
with nothing written."""
import json

import numpy as np
import pytest
import torch

from train.cli import main
from train.export import export_avatar, untrained_conditioning
from train.model_warp import WarpModel
from train.onnx_check import ParityError, run_onnx
from train.reexport import checkpoint_from_avatar, reexport

from .conftest import tiny_train_config
from .test_warp import eye_config


def trained_avatar(out, dense: bool = False, gate: bool = False, coarse: bool = False, learned_reference: bool = False,
                   outline: bool = False, body: bool = False, eye_origin=(61.0, 47.0)):  # eye_origin: the eye layer's centre
    """A variant W avatar with everything a re-export must find: head geometry, head-aligned maps, both colour
    layers away from their default corners, weights that all do something (and, with `dense`, the geometry's dense
    warp; with `gate`, the background gate; with `coarse`, the displacement composed on the flow grid; with
    `learned_reference`, a learned change of the reference's colours; with `outline`, the head's outline in the
    dense warp; with `body`, the body's own motion)."""
    torch.manual_seed(5)
    cfg = eye_config(mouth=True)
    cfg.warp_aligned, cfg.warp_geometry, cfg.warp_dense_geometry = True, True, dense
    cfg.warp_background_gate, cfg.warp_coarse_motion = gate, coarse
    cfg.warp_learned_reference, cfg.warp_head_outline, cfg.warp_body_motion = learned_reference, outline, body
    m = WarpModel(cfg.validate()).eval()
    g = torch.Generator().manual_seed(1)
    m.set_reference(torch.rand(3, 128, 128, generator=g))
    m.set_geometry(torch.rand(20, 3, generator=g) * 10 - 5, torch.tensor([150.0, 61.5, 70.25]),
                   torch.tensor([0.01, -0.02, 0.03, 0.5, -1.5, -28.0]), torch.tensor([0.1, 0.2, 0.15, 1.5, 1.2, 2.0]),
                   torch.tensor([[0.05, -0.1, 0.02, 0.4, -1.0, -27.0]]))
    m.eye_patch.set_origin(*eye_origin)
    m.mouth_patch.set_origin(66.0, 93.0)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    c = untrained_conditioning()
    training = {"provenance": "trained", "preset": "warp", "variant": "W", "iterations": 7,
                "trainConfig": tiny_train_config().to_dict(), "dataset": {"path": "somewhere", "frameCount": 64},
                "heldOutPsnrDb": 21.5, "heldOutFrames": 4, "psnrSplit": "test", "trainingSeconds": 3.0, "device": "cpu"}
    export_avatar(m, None, out, "A", 25, c["mean"], c["std"], c["neutral"], training)
    return m


def test_a_corner_equal_to_another_constant_reads_back_through_the_exporters_identity(tmp_path):
    """The exporter shares equal scalar constants: an eye layer at x0 == y0 reaches one of its Subs through an
    Identity of the other's constant (the shipped default avatar of 2 Dec 2026: its eye layer's corner at (57, 57))."""
    import onnx
    m = trained_avatar(tmp_path / "a", dense=True, coarse=True, eye_origin=(77.0, 57.0))  # the centre: corner (45, 45)
    assert any(n.op_type == "Identity" for n in onnx.load(str(tmp_path / "a" / "avatar.onnx")).graph.node)
    ck = checkpoint_from_avatar(tmp_path / "a")
    assert ck["model"]["eye_patch.origin"].tolist() == m.state_dict()["eye_patch.origin"].tolist() == [45.0, 45.0]
    assert torch.equal(ck["model"]["mouth_patch.origin"], m.state_dict()["mouth_patch.origin"])


@pytest.mark.parametrize("dense,gate,coarse,outline", [(False, False, False, False), (True, False, False, False),
                                                       (True, True, False, False), (True, False, True, False),
                                                       (True, False, True, True)])
def test_weights_read_back_from_the_graph_are_the_models(tmp_path, dense, gate, coarse, outline):
    m = trained_avatar(tmp_path / "a", dense, gate, coarse, outline=outline)
    ck = checkpoint_from_avatar(tmp_path / "a")
    state = m.state_dict()
    assert sorted(ck["model"]) == sorted(state)
    assert ("dense_table" in state) == dense and ("flow_gate" in state) == gate
    assert ("outline_u" in state) == outline
    for k, v in state.items():
        assert torch.equal(ck["model"][k], v), k
    assert ck["model"]["eye_patch.origin"].tolist() == m.eye_patch.origin.tolist() != [32.0, 37.0]
    assert ck["history"][-1]["psnr"] == 21.5 and ck["iteration"] == 7


@pytest.mark.parametrize("dense,gate,coarse,outline", [(False, False, False, False), (True, False, False, False),
                                                       (True, True, False, False), (True, False, True, False),
                                                       (True, False, True, True)])
def test_reexport_writes_the_same_frames_and_keeps_the_folder(tmp_path, dense, gate, coarse, outline):
    trained_avatar(tmp_path / "a", dense, gate, coarse, outline=outline)
    out = tmp_path / "b"
    out.mkdir()
    (out / "PROVENANCE.md").write_text("kept")
    man = reexport(tmp_path / "a", out)
    assert (out / "PROVENANCE.md").read_text() == "kept"
    assert man["training"]["reExported"]["maxAbsDiffFromPrevious"] < 1e-4
    assert man["training"]["heldOutPsnrDb"] == 21.5 and man["name"] == "A"
    assert json.loads((out / "avatar.json").read_text()) == man
    x = np.random.default_rng(0).standard_normal((4, 60)).astype(np.float32)
    a, _ = run_onnx(tmp_path / "a" / "avatar.onnx", "cond", x)
    b, _ = run_onnx(out / "avatar.onnx", "cond", x)
    assert float(np.abs(a - b).max()) < 1e-4 and float(a.std()) > 0.01


def test_reexport_refuses_what_it_cannot_rebuild(tmp_path):
    trained_avatar(tmp_path / "a")
    man_path = tmp_path / "a" / "avatar.json"
    good = json.loads(man_path.read_text())
    # a graph that gives other frames (here: the manifest says the conditioning is clipped far harder)
    bad = json.loads(json.dumps(good))
    bad["training"]["model"]["cond_clip"] = 0.5
    man_path.write_text(json.dumps(bad))
    with pytest.raises(ParityError, match="differ"):
        reexport(tmp_path / "a", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    for change, message in ((("training", "provenance", "untrained"), "not a trained"),
                            (("training", "model", "variant", "F"), "variant F"),
                            (("model", "precision", "fp16"), "float32 RGB")):
        bad = json.loads(json.dumps(good))
        node = bad
        for k in change[:-2]:
            node = node[k]
        node[change[-2]] = change[-1]
        man_path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=message):
            checkpoint_from_avatar(tmp_path / "a")
    man_path.write_text(json.dumps(good))
    assert main(["export", "--from-avatar", str(tmp_path / "a"), "--out", str(tmp_path / "c"), "--fp16"]) == 1
    assert main(["export", "--from-avatar", str(tmp_path / "missing"), "--out", str(tmp_path / "c")]) == 1
    assert not (tmp_path / "c").exists()


def test_init_from_avatar_goes_on_training_the_avatars_weights(synth_dataset, tmp_path, capsys):
    """`train --init-from-avatar DIR`: a variant W avatar folder (no checkpoint) trained further. With no iterations
    left it exports the same frames; with more it trains on from the avatar's iteration; other data is refused."""
    from train.checkpoint import load_checkpoint
    from train.synth import write_synthetic_dataset
    common = ["--data", str(synth_dataset), "--size", "128", "--eval-every", "2", "--checkpoint-every", "2",
              "--no-progress", "--no-aligned"]
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    assert main(["train", *common, "--out", str(a), "--iterations", "2", "--no-eyes"]) == 0
    assert main(["train", *common, "--out", str(b), "--iterations", "2", "--init-from-avatar", str(a)]) == 0
    x = (torch.randn(4, 60, generator=torch.Generator().manual_seed(3)) * 0.7).numpy()
    ya, _ = run_onnx(a / "avatar.onnx", "cond", x)
    yb, _ = run_onnx(b / "avatar.onnx", "cond", x)
    assert np.abs(ya - yb).max() < 1e-5
    assert main(["train", *common, "--out", str(c), "--iterations", "5", "--mse-weight", "3",
                 "--init-from-avatar", str(a)]) == 0
    ck = load_checkpoint(c / "checkpoint.pt")
    assert ck["iteration"] == 5 and ck["train_config"]["mse_weight"] == 3
    assert ck["model_config"] == load_checkpoint(a / "checkpoint.pt")["model_config"]
    before, after = load_checkpoint(a / "checkpoint.pt")["model"], ck["model"]
    assert max(float((after[k].float() - v.float()).abs().max()) for k, v in before.items()) > 1e-7  # 3 more steps
    capsys.readouterr()
    other = write_synthetic_dataset(tmp_path / "other", n=40, size=32, n_test=4)
    assert main(["train", "--data", str(other), "--out", str(tmp_path / "d"), "--init-from-avatar", str(a)]) == 1
    assert "trained on other data" in capsys.readouterr().err
    assert main(["train", *common, "--out", str(c), "--init-from-avatar", str(a)]) == 1  # c has a checkpoint
    assert main(["train", *common, "--out", str(tmp_path / "e"), "--resume", "--init-from-avatar", str(a)]) == 1
    assert "exclude each other" in capsys.readouterr().err
    # the refinement's size comes from the avatar: another one on the command line is refused, not ignored
    assert main(["train", *common, "--out", str(tmp_path / "f"), "--refine-channels", "16",
                 "--init-from-avatar", str(a)]) == 1
    assert "--refine-channels 16 does not match the checkpoint's 8" in capsys.readouterr().err
    assert main(["train", *common, "--out", str(tmp_path / "g"), "--dense-geometry",
                 "--init-from-avatar", str(a)]) == 1
    assert "--dense-geometry does not match the checkpoint, whose dense warp is off" in capsys.readouterr().err
    assert main(["train", *common, "--out", str(tmp_path / "h"), "--background-gate",
                 "--init-from-avatar", str(a)]) == 1
    assert "--background-gate does not match the checkpoint, whose background gate is off" in capsys.readouterr().err
    assert main(["train", *common, "--out", str(tmp_path / "i"), "--learned-reference",
                 "--init-from-avatar", str(a)]) == 1
    assert "--learned-reference does not match the checkpoint, whose learned reference is off" in capsys.readouterr().err
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())


def test_graphs_from_before_the_split_refinement_read_back(tmp_path, monkeypatch):
    # avatars exported before 1 Dec 2026 convolve the concatenation [image, features] once: the weight is an
    # initializer under its own name there, two folded constants now; both read back to the same weights
    def unsplit(self, warp, feats):
        r = torch.cat([torch.nn.functional.avg_pool2d(warp, 2), feats], 1)
        for conv in self.refine:
            r = torch.relu(conv(r))
        return r

    with monkeypatch.context() as mp:
        mp.setattr(WarpModel, "refine_hidden", unsplit)
        m = trained_avatar(tmp_path / "old")
    m2 = trained_avatar(tmp_path / "new")
    import onnx
    names = lambda d: {i.name for i in onnx.load(str(d / "avatar.onnx")).graph.initializer}  # noqa: E731
    assert "model.refine.0.weight" in names(tmp_path / "old") and "model.refine.0.weight" not in names(tmp_path / "new")
    for d, model in ((tmp_path / "old", m), (tmp_path / "new", m2)):
        ck = checkpoint_from_avatar(d)
        assert torch.equal(ck["model"]["refine.0.weight"], model.state_dict()["refine.0.weight"])
