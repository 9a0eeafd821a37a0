"""--hard-frames: training frames are drawn more often the worse the model draws them; each step keeps the drawn
frames' squared errors, and a checkpoint carries them to a resumed run."""
import pytest
import torch

from train.cli import parser
from train.dataset import Dataset
from train.trainer import Trainer

from .conftest import tiny_model_config, tiny_train_config


def trainer(ds: Dataset, tmp_path, hard: float, batch: int = 4) -> Trainer:
    cfg = tiny_model_config("F", n_latents=len(ds.train_idx))
    return Trainer(ds, cfg, tiny_train_config(hard_frames=hard, batch=batch), torch.device("cpu"), "tiny", "t", 25,
                   tmp_path, progress=False)


def test_frames_drawn_by_their_error(synth_dataset, tmp_path):
    tr = trainer(Dataset(synth_dataset), tmp_path, 0.5, batch=4000)
    n = len(tr.frame_error)
    tr.frame_error = torch.full((n,), 1e-4)
    tr.frame_error[0] = 1e-4 * (n + 1)  # frame 0 holds (n + 1) / 2n of all error, about half
    pos = tr.batch()[0]
    share = float((pos == 0).float().mean())
    assert share == pytest.approx(0.5 / n + 0.5 * (n + 1) / (2 * n), abs=0.03)
    others = torch.bincount(pos[pos != 0], minlength=n)[1:].float()
    assert float(others.min()) > 0  # the uniform part still reaches every frame


def test_uniform_without_the_option(synth_dataset, tmp_path):
    tr = trainer(Dataset(synth_dataset), tmp_path, 0.0, batch=4000)
    tr.frame_error[0] = 1.0
    share = float((tr.batch()[0] == 0).float().mean())
    assert share == pytest.approx(1 / len(tr.frame_error), abs=0.02)


def test_a_step_records_the_drawn_frames_errors(synth_dataset, tmp_path):
    tr = trainer(Dataset(synth_dataset), tmp_path, 0.5)
    before = tr.frame_error.clone()
    drawn = tr.batch()
    tr.batch = lambda: drawn  # type: ignore[method-assign]
    tr.step()
    changed = (tr.frame_error != before).nonzero().flatten().tolist()
    assert sorted(set(changed)) == sorted(set(drawn[0].tolist()))
    assert all(0 < float(tr.frame_error[i]) < float(before[i]) + 1 for i in changed)


def test_resume_keeps_the_errors(synth_dataset, tmp_path):
    ds = Dataset(synth_dataset)
    tr = trainer(ds, tmp_path, 0.5)
    for _ in range(3):
        tr.step()
    state = tr.state()
    again = trainer(ds, tmp_path, 0.5)
    again.load_state(state)
    assert torch.equal(again.frame_error, tr.frame_error)


def test_the_option_parses():
    assert parser().parse_args(["train", "--data", "d", "--out", "o", "--hard-frames", "0.5"]).hard_frames == 0.5
    for bad in ("-0.1", "1.5", "x"):
        with pytest.raises(SystemExit):
            parser().parse_args(["train", "--data", "d", "--out", "o", "--hard-frames", bad])
