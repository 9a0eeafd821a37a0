import pytest
import torch

from train.config import preset_configs, variant_switches
from train.dataset import Dataset
from train.model import ExportModel, PortraitModel, inference_flops, posenc
from train.trainer import Trainer

from .conftest import tiny_model_config, tiny_train_config


def test_posenc_matches_eq3():
    x = torch.tensor([[0.25, -0.5]])
    y = posenc(x, 2)
    assert y.shape == (1, 10)
    import math
    assert y[0, 2].item() == pytest.approx(math.sin(math.pi * 0.25))  # x, k=0
    assert y[0, 3].item() == pytest.approx(math.sin(2 * math.pi * 0.25))  # x, k=1
    assert y[0, 7].item() == pytest.approx(math.cos(2 * math.pi * 0.25), abs=1e-6)  # x, k=1
    assert y[0, 4].item() == pytest.approx(math.sin(math.pi * -0.5))  # y, k=0


def test_variant_switches_follow_the_ablation():
    assert not variant_switches("A").decoder and variant_switches("A").mlp
    assert variant_switches("B").decoder and not variant_switches("B").mlp
    c, d, e, f = (variant_switches(v) for v in "CDEF")
    assert (c.latents, d.latents, d.lowres_loss, e.lowres_loss, e.gaze, f.gaze) == (False, True, False, True, False, True)
    with pytest.raises(ValueError):
        variant_switches("G")


@pytest.mark.parametrize("variant", list("ABCDEF"))
def test_every_variant_trains_a_step(synth_dataset, tmp_path, variant):
    ds = Dataset(synth_dataset)
    cfg = tiny_model_config(variant, n_latents=len(ds.train_idx))
    tr = Trainer(ds, cfg, tiny_train_config(iterations=2), torch.device("cpu"), "tiny", "t", 25, tmp_path, progress=False)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    terms = tr.step()
    assert torch.isfinite(torch.tensor(terms["loss"]))
    assert ("low" in terms) == (variant in "EF")
    changed = [k for k, v in tr.model.state_dict().items() if not torch.equal(v, before[k])]
    assert "fc_c.weight" in changed
    assert any(k.startswith("latents.") for k in changed) == (variant in "DEF")
    out = tr.model(torch.zeros(2, 60))
    assert out["rgb"].shape == (2, 3, 32, 32)


def test_gaze_is_an_input_only_from_variant_f():
    torch.manual_seed(0)
    for variant, matters in (("E", False), ("F", True)):
        m = PortraitModel(tiny_model_config(variant)).eval()
        a, b = torch.zeros(1, 60), torch.zeros(1, 60)
        b[0, 6:8] = 1.5
        with torch.no_grad():
            d = (m(a)["rgb"] - m(b)["rgb"]).abs().max().item()
        assert (d > 1e-4) == matters


def test_split_first_layer_export_graph_equals_the_training_graph():
    torch.manual_seed(0)
    m = PortraitModel(tiny_model_config("F")).eval()
    torch.nn.init.normal_(m.latents.weight)
    x = torch.randn(3, 60)
    with torch.no_grad():
        ref = m(x)["rgb"]  # mean latent code
        exp = ExportModel(m, m.mean_latent())(x)
    assert (ref - exp).abs().max().item() < 1e-5


def test_flops_of_the_presets():
    cpu, _ = preset_configs("cpu", 256)
    paper, _ = preset_configs("paper", 512)
    f_cpu = inference_flops(cpu)["total"]
    assert 0.5e9 < f_cpu < 4.0e9  # real-time on one CPU thread
    assert inference_flops(paper)["total"] > 3 * f_cpu
    # hand count for the tiny config: MLP 1 hidden 32x32 + head 32->8 on 8x8, convs 16^2*9*8*8 + 32^2*9*8*8 + 32^2*9*8*3
    t = tiny_model_config("F")
    macs = 64 * 32 * 32 + 64 * 32 * 8 + 256 * 9 * 64 + 1024 * 9 * 64 + 1024 * 9 * 24
    assert inference_flops(t)["total"] == 2 * macs + inference_flops(t)["first_layer_per_frame"]


def test_sizes_the_decoder_cannot_reach_are_refused():
    with pytest.raises(ValueError, match="power of two"):
        preset_configs("cpu", 200)
    with pytest.raises(ValueError, match="decoder stages"):
        preset_configs("cpu", 1024)
    preset_configs("paper", 1024)
