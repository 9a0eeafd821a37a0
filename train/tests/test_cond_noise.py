"""--cond-noise: each training batch's gaze and blendshape values get Gaussian noise; the pose never does."""
import pytest
import torch

from train.cli import parser
from train.config import POSE_SIZE
from train.dataset import Dataset
from train.trainer import Trainer

from .conftest import tiny_model_config, tiny_train_config


def conditioning_seen(ds: Dataset, tmp_path, noise: float) -> "tuple[torch.Tensor, torch.Tensor]":
    cfg = tiny_model_config("F", n_latents=len(ds.train_idx))
    tr = Trainer(ds, cfg, tiny_train_config(cond_noise=noise, batch=64), torch.device("cpu"), "tiny", "t", 25,
                 tmp_path, progress=False)
    fixed = tr.batch()
    tr.batch = lambda: fixed  # type: ignore[method-assign]
    seen = []
    forward = tr.model.forward
    tr.model.forward = lambda c, **kw: (seen.append(c.detach().clone()), forward(c, **kw))[1]  # type: ignore[method-assign]
    tr.step()
    return fixed[1], seen[0]


def test_noise_on_gaze_and_blendshapes_only(synth_dataset, tmp_path):
    given, seen = conditioning_seen(Dataset(synth_dataset), tmp_path, 0.5)
    assert torch.equal(seen[:, :POSE_SIZE], given[:, :POSE_SIZE])
    d = seen[:, POSE_SIZE:] - given[:, POSE_SIZE:]
    assert float(d.std()) == pytest.approx(0.5, rel=0.1) and abs(float(d.mean())) < 0.05


def test_no_noise_by_default(synth_dataset, tmp_path):
    given, seen = conditioning_seen(Dataset(synth_dataset), tmp_path, 0.0)
    assert torch.equal(seen, given)


def test_the_option_parses():
    assert parser().parse_args(["train", "--data", "d", "--out", "o", "--cond-noise", "0.2"]).cond_noise == 0.2
    with pytest.raises(SystemExit):
        parser().parse_args(["train", "--data", "d", "--out", "o", "--cond-noise", "-1"])
