"""--ema: an exponential moving average of the weights is what evaluation, the checkpoint's "model" and export read;
the last step's weights ("model_raw") are what a resumed run goes on from."""
import pytest
import torch

from train.checkpoint import load_checkpoint, model_from_checkpoint
from train.cli import parser
from train.dataset import Dataset
from train.trainer import Trainer

from .conftest import tiny_model_config, tiny_train_config


def trainer(ds: Dataset, tmp_path, **kw) -> Trainer:
    cfg = tiny_model_config("F", n_latents=len(ds.train_idx))
    return Trainer(ds, cfg, tiny_train_config(**kw), torch.device("cpu"), "tiny", "t", 25, tmp_path, progress=False)


def weights(tr: Trainer) -> "dict[str, torch.Tensor]":
    return {k: v.detach().clone() for k, v in tr.model.state_dict().items()}


def test_the_average_follows_the_steps_with_a_ramped_decay(synth_dataset, tmp_path):
    tr = trainer(Dataset(synth_dataset), tmp_path, ema=0.5)
    w0 = weights(tr)
    tr.step()
    w1 = weights(tr)
    tr.step()
    w2 = weights(tr)
    d1, d2 = min(0.5, 2 / 11), min(0.5, 3 / 12)  # the decay ramps up: (1 + n) / (10 + n), at most --ema
    assert tr.ema is not None and tr.ema_updates == 2
    moved = 0
    for k, e in tr.ema.items():
        if not e.is_floating_point():
            continue
        want = d2 * (d1 * w0[k] + (1 - d1) * w1[k]) + (1 - d2) * w2[k]
        assert torch.allclose(e, want, atol=1e-6), k
        moved += int(not torch.equal(w1[k], w2[k]))
    assert moved > 0  # the steps changed the weights, so the check above compares different tensors


def test_checkpoint_evaluation_and_resume_use_the_average(synth_dataset, tmp_path):
    ds = Dataset(synth_dataset)
    tr = trainer(ds, tmp_path, ema=0.9, iterations=12, eval_every=6, checkpoint_every=6)
    tr.run()
    rec = tr.history[-1]
    assert "psnr_raw" in rec and rec["psnr"] != rec["psnr_raw"]
    ck = load_checkpoint(tr.save())
    assert set(ck["model"]) == set(ck["model_raw"]) and ck["ema_updates"] == 12
    assert any(not torch.equal(ck["model"][k], ck["model_raw"][k]) for k in ck["model"])
    for k, v in tr.model.state_dict().items():  # the model holds the last step's weights between evaluations
        assert torch.equal(v, ck["model_raw"][k])
    exported = model_from_checkpoint(ck).state_dict()  # what export reads: the average
    for k, v in exported.items():
        assert torch.equal(v, ck["model"][k])
    # a resumed run goes on from the raw weights, and its average from the checkpoint's average
    again = trainer(ds, tmp_path / "again", ema=0.9)
    again.load_state(ck)
    assert again.ema is not None and again.ema_updates == 12
    for k, v in again.model.state_dict().items():
        assert torch.equal(v, ck["model_raw"][k])
        assert torch.equal(again.ema[k], ck["model"][k])
    assert again.eval_psnr() == pytest.approx(rec["psnr_raw"], abs=1e-4)
    assert again.evaluate()["psnr"] == pytest.approx(rec["psnr"], abs=1e-4)


def test_without_it_nothing_changes(synth_dataset, tmp_path):
    tr = trainer(Dataset(synth_dataset), tmp_path, iterations=6, eval_every=6, checkpoint_every=6)
    tr.run()
    assert tr.ema is None and "psnr_raw" not in tr.history[-1]
    ck = load_checkpoint(tr.save())
    assert "model_raw" not in ck
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, ck["model"][k])


def test_the_option_parses():
    a = parser().parse_args(["train", "--data", "d", "--out", "o", "--ema", "0.999"])
    assert a.ema == 0.999
    assert parser().parse_args(["train", "--data", "d", "--out", "o"]).ema is None
    for bad in ("1", "1.5", "-0.1", "x"):
        with pytest.raises(SystemExit):
            parser().parse_args(["train", "--data", "d", "--out", "o", "--ema", bad])
