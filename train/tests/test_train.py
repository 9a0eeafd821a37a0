import numpy as np
import pytest
import torch

from train.checkpoint import load_checkpoint, model_from_checkpoint
from train.dataset import Dataset
from train.trainer import Trainer

from .conftest import tiny_model_config, tiny_train_config


def make_trainer(ds, out, iterations, variant="F", **kw):
    cfg = tiny_model_config(variant, n_latents=len(ds.train_idx))
    return Trainer(ds, cfg, tiny_train_config(iterations=iterations, **kw), torch.device("cpu"), "tiny", "t", 25, out,
                   progress=False)


@pytest.fixture(scope="module")
def trained(synth_dataset, tmp_path_factory):
    ds = Dataset(synth_dataset)
    tr = make_trainer(ds, tmp_path_factory.mktemp("run"), 150, eval_every=50, checkpoint_every=1000)
    losses = []
    while tr.iteration < 150:
        losses.append(tr.step()["loss"])
        if tr.iteration % 50 == 0:
            tr.evaluate()
    return ds, tr, losses


def test_loss_falls_and_held_out_psnr_rises(trained):
    _, tr, losses = trained
    assert np.mean(losses[-20:]) < 0.5 * np.mean(losses[:10])
    psnrs = [h["psnr"] for h in tr.history]
    assert [h["split"] for h in tr.history] == ["test"] * 3
    assert psnrs[-1] > psnrs[0] + 0.5


def test_the_expression_input_matters_after_training(trained):
    """The synthetic blob is red for blendshape 0 = 1 and blue for 0: the trained model must follow that input."""
    ds, tr, _ = trained
    raw = ds.cond[ds.train_idx[0]].copy()
    raw[:2] = 0  # blob centred
    lo, hi = raw.copy(), raw.copy()
    lo[8], hi[8] = 0.0, 1.0
    with torch.no_grad():
        out = tr.model(tr.normalise(np.stack([lo, hi])))["rgb"]
    centre = out[:, :, 12:20, 12:20].mean(dim=(2, 3))  # [2, 3] mean colour at the centre
    assert centre[1, 0] - centre[0, 0] > 0.1  # more red
    assert centre[0, 2] - centre[1, 2] > 0.1  # more blue


def test_checkpoint_resume_continues_exactly(synth_dataset, tmp_path):
    ds = Dataset(synth_dataset)
    straight = make_trainer(ds, tmp_path / "a", 12)
    for _ in range(12):
        straight.step()
    first = make_trainer(ds, tmp_path / "b", 12)
    (tmp_path / "b").mkdir()
    for _ in range(6):
        first.step()
    path = first.save()
    ck = load_checkpoint(path)
    assert ck["iteration"] == 6
    assert ck["dataset"]["manifestSha256"] == ds.manifest_sha256
    assert ck["model_config"]["variant"] == "F" and ck["train_config"]["iterations"] == 12
    resumed = make_trainer(ds, tmp_path / "b", 12)
    resumed.load_state(ck)
    for _ in range(6):
        resumed.step()
    for k, v in straight.model.state_dict().items():
        assert torch.allclose(v, resumed.model.state_dict()[k], atol=1e-6), k
    m = model_from_checkpoint(ck)
    assert m.cfg.n_latents == len(ds.train_idx)
