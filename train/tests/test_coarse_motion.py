"""Variant W's displacement composed on the flow grid (`--coarse-motion`, train/model_warp.py `finish_coarse`): the
same model as composing at every output pixel, up to how a product and a sigmoid are interpolated between the
grid's cells; the colour layers read the dense warp from the grid with the same values; training, export, options."""
import argparse

import pytest
import torch

from train.config import ModelConfig, preset_configs
from train.export import export_avatar, untrained_conditioning
from train.losses import warp_loss
from train.model_warp import WarpModel, up
from train.trainer import apply_warp_options
from .conftest import check_warp_switch
from .test_dense_geometry import _model

SIZE = 128


def _pair(eyes: bool = True, mouth: bool = True, dense: bool = True) -> "tuple[WarpModel, WarpModel]":
    """The same weights with and without coarse motion: a head turned by the geometry, the rigidity and the flow
    varying over the frame, both colour layers drawing."""
    models = [_model(dense, aligned=True, eyes=eyes, mouth=mouth, coarse=coarse) for coarse in (False, True)]
    torch.manual_seed(11)
    with torch.no_grad():
        for p in models[0].parameters():
            p.add_(torch.randn_like(p) * 0.02)
        # a rigidity that goes from the background (0) to the head (1) over a few cells, as a trained one does
        g = models[0].flow_grid
        models[0].rigid_map.copy_(up(torch.randn(1, 1, 4, 4) * 4.0, 4, g))
    models[1].load_state_dict(models[0].state_dict())
    return models[0], models[1]


def _cond(n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(5)
    return torch.randn(n, 60, generator=g) * 0.8


def test_coarse_motion_is_the_same_model_up_to_interpolation():
    fine, coarse = _pair()
    cond = _cond(6)
    with torch.no_grad():
        a, b = fine(cond), coarse(cond)
    # where the warp reads: the same in the frame's interior up to the interpolated product (under a pixel),
    # and the same on average
    dx = (a["sx"] - b["sx"]).abs().reshape(-1, SIZE, SIZE)
    dy = (a["sy"] - b["sy"]).abs().reshape(-1, SIZE, SIZE)
    inner = (slice(None), slice(4, -4), slice(4, -4))
    assert float(dx[inner].max()) < 1.0 and float(dy[inner].max()) < 1.0
    assert float(dx.mean()) < 0.05 and float(dy.mean()) < 0.05
    assert float(dx.max()) > 0.0  # not the same graph (otherwise this test compares nothing)
    assert float((a["flow"] - b["flow"]).abs().max()) < 1e-5  # the training loss sees the same flow
    assert float((a["rgb"] - b["rgb"]).abs().mean()) < 0.01
    assert float((a["mask"] - b["mask"]).abs().max()) < 0.05


def test_colour_layers_read_the_dense_warp_from_the_grid_with_the_same_values():
    fine, _ = _pair()
    cond = _cond(4)
    z = torch.clamp(cond, -6.0, 6.0)
    with torch.no_grad():
        coef, spline = fine.geometry_motion(z[:, :6])
        rigid = fine.rigid_pixels(fine.rigid(z[:, :6]) * (fine.cfg.rigid_scale * SIZE / 2.0), coef)
        dense = fine.dense_motion(rigid, spline)  # [B, 2, G, G]
        full = up(dense, fine.flow_grid, SIZE).reshape(-1, 2, SIZE * SIZE)
        for layer in (fine.eye_patch, fine.mouth_patch):
            assert layer is not None
            layer.head.bias.normal_(0.0, 0.2)
            c1, i1 = layer(z, rigid, full)
            c2, i2 = layer(z, rigid, dense_grid=dense, grid=fine.flow_grid)
            assert torch.equal(i1, i2)
            assert float(c1.abs().max()) > 0.05  # the layer draws something
            assert float((c1 - c2).abs().max()) < 1e-5


def test_coarse_motion_trains_a_step():
    _, coarse = _pair()
    coarse.train()
    cond = _cond(2)
    gt = torch.rand(2, 3, SIZE, SIZE)
    out = coarse(cond)
    terms = warp_loss(out, gt, torch.ones(1, 1, SIZE, SIZE))
    terms["loss"].backward()
    for name in ("head.weight", "rigid_map", "refine_out.weight", "eye_patch.head.weight", "mouth_patch.head.weight"):
        grad = dict(coarse.named_parameters())[name].grad
        assert grad is not None and float(grad.abs().sum()) > 0, name


def test_coarse_motion_exports_with_parity(tmp_path):
    _, coarse = _pair()
    c = untrained_conditioning()
    man = export_avatar(coarse, None, tmp_path, "c", 25, c["mean"], c["std"], c["neutral"], {"provenance": "test"})
    assert man["training"]["parityMaxAbsDiff"] < 1e-4
    assert man["training"]["model"]["warp_coarse_motion"] is True


def test_coarse_motion_without_the_dense_warp_or_layers():
    fine, coarse = _pair(eyes=False, mouth=False, dense=False)
    with torch.no_grad():
        a, b = fine(_cond(3)), coarse(_cond(3))
    assert float((a["sx"] - b["sx"]).abs().mean()) < 0.05 and float((a["sy"] - b["sy"]).abs().mean()) < 0.05
    assert float((a["sx"] - b["sx"]).abs().max()) > 0.0


def test_coarse_motion_options():
    with pytest.raises(ValueError, match="warp_coarse_motion"):
        ModelConfig(size=64, variant="W", warp_grid=16, warp_refs=2, warp_coarse_motion=True).validate()
    check_warp_switch("coarse_motion", preset_default=True)  # the warp preset's since 1 Dec 2026
    with pytest.raises(ValueError, match="--coarse-motion needs one reference frame"):
        apply_warp_options(preset_configs("warp", 256, None)[0], argparse.Namespace(coarse_motion=True, refs=2))
