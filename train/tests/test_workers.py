"""--workers N: one training spread over N processes, each with a share of every batch, trains as one process does
(the same frames drawn, the gradients of the whole batch, the same --hard-frames errors), and fails rather than
hangs when a worker dies."""
from pathlib import Path
from typing import Any, Dict

import pytest
import torch

from train.cli import parser
from train.data_parallel import Workers
from train.dataset import Dataset
from train.trainer import Trainer

from .conftest import tiny_model_config, tiny_train_config


def job_and_trainer(ds_path: Path, tmp_path: Path, **train) -> "tuple[Dict[str, Any], Trainer]":
    tmp_path.mkdir(parents=True, exist_ok=True)
    ds = Dataset(ds_path)
    mcfg = tiny_model_config("F", n_latents=len(ds.train_idx))
    tcfg = tiny_train_config(**train)
    tr = Trainer(ds, mcfg, tcfg, torch.device("cpu"), "tiny", "t", 25, tmp_path, progress=False)
    job = {"data": str(ds_path), "out": str(tmp_path), "model_config": mcfg.to_dict(), "train_config": tcfg.to_dict(),
           "preset": "tiny", "name": "t", "checkpoint": None, "max_seconds": None}
    return job, tr


def test_two_workers_train_as_one_process(synth_dataset, tmp_path):
    opts = dict(iterations=6, batch=4, hard_frames=0.5, cond_noise=0.1, eval_every=1000, checkpoint_every=1000)
    _, alone = job_and_trainer(synth_dataset, tmp_path / "a", **opts)
    alone.run()

    job, lead = job_and_trainer(synth_dataset, tmp_path / "b", **opts)
    workers = Workers(2, 1, job)
    try:
        lead.group = workers.group
        lead.group.broadcast_weights(lead.model)
        lead.run()
    finally:
        workers.close()
        workers.close()  # twice is safe
    assert lead.iteration == alone.iteration == 6
    assert torch.equal(lead.gen.get_state(), alone.gen.get_state())  # the same frames and noise were drawn
    assert torch.allclose(lead.frame_error, alone.frame_error, rtol=1e-4, atol=1e-7)
    for (k, a), b in zip(alone.model.state_dict().items(), lead.model.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=2e-5), k
    for (k, a), b in zip(alone.model.named_parameters(), lead.model.parameters()):  # the last step's: the batch mean
        assert (a.grad is None) == (b.grad is None), k
        if a.grad is not None:
            assert torch.allclose(a.grad, b.grad, rtol=1e-3, atol=1e-6), k
    start = job_and_trainer(synth_dataset, tmp_path / "c", **opts)[1].model.state_dict()
    assert any(not torch.equal(start[k], v) for k, v in lead.model.state_dict().items())  # it did train
    assert not workers.procs[0].is_alive()


def test_a_worker_that_dies_stops_the_run(synth_dataset, tmp_path):
    job, lead = job_and_trainer(synth_dataset, tmp_path, iterations=1_000_000, eval_every=100_000,
                                checkpoint_every=100_000)
    workers = Workers(2, 1, job)
    try:
        lead.group = workers.group
        lead.group.broadcast_weights(lead.model)
        workers.procs[0].kill()
        with pytest.raises(RuntimeError):
            lead.run()
    finally:
        workers.close()


def test_a_batch_the_workers_cannot_share_is_refused(synth_dataset, tmp_path):
    from train.commands import cmd_train
    args = parser().parse_args(["train", "--data", str(synth_dataset), "--out", str(tmp_path / "o"), "--preset", "cpu",
                                "--size", "256", "--workers", "3", "--batch", "4", "--iterations", "2", "--no-progress"])
    with pytest.raises(ValueError, match="--workers 3 must divide the batch"):
        cmd_train(args)


def test_the_option_parses():
    assert parser().parse_args(["train", "--data", "d", "--out", "o", "--workers", "2"]).workers == 2
    assert parser().parse_args(["train", "--data", "d", "--out", "o"]).workers is None
    for bad in ("0", "-1", "x"):
        with pytest.raises(SystemExit):
            parser().parse_args(["train", "--data", "d", "--out", "o", "--workers", bad])
