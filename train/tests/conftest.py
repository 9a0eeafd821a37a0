import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)

from train.config import ModelConfig, TrainConfig  # noqa: E402
from train.synth import write_synthetic_dataset  # noqa: E402


def tiny_model_config(variant: str = "F", n_latents: int = 20, size: int = 32) -> ModelConfig:
    return ModelConfig(size=size, grid=8, mlp_layers=2, mlp_width=32, n_f=8, pos_freqs=3, cond_freqs=2, latent_dim=8,
                       decoder_channels=[8, 8], variant=variant, n_latents=n_latents).validate()


def tiny_train_config(**kw) -> TrainConfig:
    base = dict(iterations=20, batch=4, lr=3e-3, lr_final=1e-3, latent_lr=3e-3, eval_every=10, eval_frames=4,
                checkpoint_every=10, seed=0)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("ds") / "synth", n=64, size=32, n_test=6, invalid=[3])


def check_warp_switch(name: str, preset_default: bool) -> None:
    """A variant W switch of `dnp train` (trainer.WARP_SWITCHES): the warp preset's default, --NAME and --no-NAME
    set it, both together contradict, and other presets refuse it."""
    import argparse
    from train.config import preset_configs
    from train.trainer import apply_warp_options
    key, flag = "warp_" + name, "--" + name.replace("_", "-")
    mcfg = preset_configs("warp", 256, None)[0]
    assert getattr(mcfg, key) is preset_default
    for value in (not preset_default, preset_default):
        apply_warp_options(mcfg, argparse.Namespace(**{(name if value else "no_" + name): True}))
        assert getattr(mcfg, key) is value
    with pytest.raises(ValueError, match=f"{flag} and --no-{flag[2:]} contradict"):
        apply_warp_options(mcfg, argparse.Namespace(**{name: True, "no_" + name: True}))
    with pytest.raises(ValueError, match=f"{flag} is for variant W"):
        apply_warp_options(preset_configs("cpu", 64, None)[0], argparse.Namespace(**{name: True}))
