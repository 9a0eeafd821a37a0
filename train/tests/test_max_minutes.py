"""--max-minutes: the training loop stops on a wall-clock budget, with a final held-out evaluation."""
import time

import torch

from train.cli import parser
from train.dataset import Dataset
from train.trainer import Trainer

from .conftest import tiny_model_config, tiny_train_config


def test_the_loop_stops_after_the_budget_and_evaluates(synth_dataset, tmp_path):
    ds = Dataset(synth_dataset)
    cfg = tiny_model_config("F", n_latents=len(ds.train_idx))
    tr = Trainer(ds, cfg, tiny_train_config(iterations=1_000_000, eval_every=100_000, checkpoint_every=100_000),
                 torch.device("cpu"), "tiny", "t", 25, tmp_path, progress=False)
    tr.max_seconds = 1.0
    t0 = time.time()
    tr.run()
    assert time.time() - t0 < 10
    assert tr.stopped_early and 0 < tr.iteration < 1_000_000
    assert tr.history and tr.history[-1]["iteration"] == tr.iteration


def test_without_a_budget_it_runs_all_iterations(synth_dataset, tmp_path):
    ds = Dataset(synth_dataset)
    cfg = tiny_model_config("F", n_latents=len(ds.train_idx))
    tr = Trainer(ds, cfg, tiny_train_config(iterations=5, eval_every=5, checkpoint_every=5), torch.device("cpu"), "tiny", "t",
                 25, tmp_path, progress=False)
    tr.run()
    assert tr.iteration == 5 and not tr.stopped_early


def test_the_option_parses():
    a = parser().parse_args(["train", "--data", "d", "--out", "o", "--max-minutes", "0.5"])
    assert a.max_minutes == 0.5
    assert parser().parse_args(["train", "--data", "d", "--out", "o"]).max_minutes is None
