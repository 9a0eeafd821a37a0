"""Variant W's dense geometric warp (`--dense-geometry`, train/model_warp.py): the thin-plate spline through the
fitted face points, the warp it gives a turned head, the configuration checks and the exported graph."""
import argparse

import pytest
import torch

from train.config import ModelConfig, preset_configs
from train.face_geometry import RIGID_LANDMARKS, project
from train.model_warp import DENSE_TABLE, TPS_SMOOTHING, WarpModel, dense_table, tps_eval, tps_system
from train.trainer import apply_warp_options

from .test_warp import export_jittered

SIZE = 128


def _face_points() -> torch.Tensor:
    """20 points of a face-like solid (cm): spread over 12 x 14 cm, 5 cm deep (the nose well in front of the
    cheeks), so that turning it moves its points by more than an affine can follow."""
    g = torch.Generator().manual_seed(3)
    xy = (torch.rand(len(RIGID_LANDMARKS), 2, generator=g) - 0.5) * torch.tensor([12.0, 14.0])
    depth = 5.0 * torch.exp(-(xy ** 2).sum(1) / 20.0)  # a bump: the centre stands out
    return torch.cat([xy, depth[:, None]], 1)


def _model(dense: bool, aligned: bool = False, eyes: bool = False, mouth: bool = False, coarse: bool = False) -> WarpModel:
    cfg = ModelConfig(size=SIZE, variant="W", mlp_layers=2, mlp_width=32, n_f=4, warp_grid=32, warp_channels=[16, 8],
                      refine_channels=8, refine_layers=2, warp_geometry=True, warp_aligned=aligned, warp_eyes=eyes,
                      warp_mouth=mouth, warp_dense_geometry=dense, warp_coarse_motion=coarse).validate()
    m = WarpModel(cfg).eval()
    m.set_reference(torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(4)))
    m.set_geometry(_face_points(), torch.tensor([SIZE * 0.9, SIZE / 2.0, SIZE / 2.0]),
                   torch.tensor([0.0, 0, 0, 0, 0, -30]), torch.tensor([0.2, 0.2, 0.2, 2.0, 2.0, 2.0]),
                   torch.tensor([[0.0, 0, 0, 0, 0, -30]]))
    with torch.no_grad():
        m.rigid_map.fill_(12.0)  # every pixel follows the head (untrained: half)
    return m


def test_the_spline_interpolates_its_centres_and_smoothing_bends_it_less():
    g = torch.Generator().manual_seed(0)
    u, v = torch.rand(20, generator=g) * 100 + 14, torch.rand(20, generator=g) * 100 + 14
    values = torch.randn(20, 2, generator=g, dtype=torch.float64) * 5  # pixels
    for smoothing, tol in ((0.0, 1e-3), (TPS_SMOOTHING, None)):  # (the matrix is stored in float32)
        centres, solve = tps_system(u, v, SIZE, smoothing)
        assert centres.shape == (20, 2) and solve.shape == (23, 20)
        coef = torch.matmul(solve.double(), values)[None]  # [1, 23, 2] normalised units
        at = tps_eval(centres.double(), coef, centres.double()[None])[0] * (SIZE / 2.0)  # back to pixels
        if tol is not None:
            assert float((at - values).abs().max()) < tol
        else:  # smoothed: close to the values, not through them
            err = float((at - values).norm(dim=1).mean())
            assert 0.01 < err < 0.5 * float(values.norm(dim=1).mean())
    # the model's table over the reference holds the same spline at its nodes (edge to edge of the frame)
    table = dense_table(u.double(), v.double(), SIZE)
    assert table.shape == (DENSE_TABLE * DENSE_TABLE, 20)
    t = torch.linspace(-1.0, 1.0, DENSE_TABLE, dtype=torch.float64)
    ty, tx = torch.meshgrid(t, t, indexing="ij")
    nodes = torch.stack([tx.reshape(-1), ty.reshape(-1)], 1)[None]
    exact = tps_eval(centres.double(), coef, nodes)[0] * (SIZE / 2.0)
    assert float((torch.matmul(table.double(), values) - exact).abs().max()) < 1e-3
    # a constant shift is reproduced everywhere, far from the centres too (the spline's affine part)
    centres, solve = tps_system(u, v, SIZE)
    coef = torch.matmul(solve.double(), torch.full((20, 2), 3.0, dtype=torch.float64))[None]
    far = tps_eval(centres.double(), coef, torch.tensor([[[0.9, -0.9], [-0.95, 0.95]]], dtype=torch.float64))
    assert torch.allclose(far * (SIZE / 2.0), torch.full_like(far, 3.0), atol=1e-6)


def test_a_turned_head_is_read_where_the_reference_has_its_points():
    pose = torch.tensor([[0.05, 0.45, 0.03, 0.5, -0.5, -30.0]])  # 26 degrees of yaw, a little pitch and roll
    errors = {}
    for dense in (False, True):
        m = _model(dense)
        z = (pose - m.pose_mean) / m.pose_std
        cond = torch.cat([z, torch.zeros(1, 54)], 1)
        with torch.no_grad():
            out = m(cond)
        u, v = project(pose.double(), m.face_points.double(), m.camera.double())  # the caller's points
        # the sampling position of the pixel under each caller's point (landmark coordinates: pixel i at i + 1/2)
        ix, iy = u[0].floor().long().clamp(0, SIZE - 1), v[0].floor().long().clamp(0, SIZE - 1)
        sx, sy = out["sx"][0].reshape(SIZE, SIZE), out["sy"][0].reshape(SIZE, SIZE)
        got = torch.stack([sx[iy, ix], sy[iy, ix]], 1).double() + 0.5
        want = torch.stack([m.ref_u[0], m.ref_v[0]], 1).double()
        errors[dense] = float((got - want).norm(dim=1).mean())
    # the affine leaves pixels at the points (1.9 here); the dense warp brings them to a fraction of a pixel (the
    # read-out pixel's own rounding is up to 0.7 px)
    assert errors[False] > 1.2, errors
    assert errors[True] < 0.45 * errors[False], errors


def test_the_colour_layers_move_with_the_dense_warp():
    # an eye layer that brightens its whole patch: on a turned head its change lands where the warp shows the
    # reference's patch, so that a lid drawn by the layer stays on the warped eye
    pose = torch.tensor([[0.0, 0.45, 0.0, 0.0, 0.0, -30.0]])
    centres = {}
    for dense in (False, True):
        m = _model(dense, eyes=True)
        m.set_reference(torch.full((3, SIZE, SIZE), 0.5))  # grey: the change is never clipped
        with torch.no_grad():
            m.eye_patch.head.bias.fill_(0.3)
            m.refine_out.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 12.0]))  # the warp everywhere
            z = (pose - m.pose_mean) / m.pose_std
            out = m(torch.cat([z, torch.zeros(1, 54)], 1))
            m.eye_patch.head.bias.zero_()
            plain = m(torch.cat([z, torch.zeros(1, 54)], 1))
        change = (out["rgb"] - plain["rgb"])[0].abs().sum(0)  # where the layer drew
        ys, xs = torch.nonzero(change > 0.45, as_tuple=True)  # where the taper is above one half: 2 px inside
        # the output pixels that read the reference more than 2 px inside the patch
        x0, y0 = float(m.eye_patch.origin[0]), float(m.eye_patch.origin[1])
        sx, sy = out["sx"][0].reshape(SIZE, SIZE) + 0.5, out["sy"][0].reshape(SIZE, SIZE) + 0.5
        inside = (sx > x0 + 2) & (sx < x0 + m.eye_patch.w - 2) & (sy > y0 + 2) & (sy < y0 + m.eye_patch.h - 2)
        iy, ix = torch.nonzero(inside, as_tuple=True)
        centres[dense] = (torch.stack([xs.float().mean(), ys.float().mean()]), torch.stack([ix.float().mean(), iy.float().mean()]))
    drawn, warped = centres[True]
    assert float((drawn - warped).norm()) < 0.6, centres
    drawn0, warped0 = centres[False]
    assert float((drawn0 - warped0).norm()) < 0.6, centres  # without the dense warp: both follow the affine
    assert float((warped - warped0).norm()) > 1.0, centres  # and the dense warp does move the eyes


def test_at_the_reference_pose_the_dense_warp_is_the_affine():
    cond = torch.zeros(2, 60)
    m0, m1 = _model(False), _model(True)
    m1.load_state_dict({**m1.state_dict(), **m0.state_dict()})  # the same weights (m1 has the spline's buffers too)
    z = (m1.ref_u.new_tensor([0.0, 0, 0, 0, 0, -30]) - m1.pose_mean) / m1.pose_std
    cond[:, :6] = z
    with torch.no_grad():
        a, b = m0(cond), m1(cond)
    assert float((a["sx"] - b["sx"]).abs().max()) < 1e-3 and float((a["sy"] - b["sy"]).abs().max()) < 1e-3


def test_the_dense_warp_exports_with_parity(tmp_path):
    man = export_jittered(_model(True, aligned=True), tmp_path, "d", 11)
    assert man["training"]["parityMaxAbsDiff"] < 1e-4
    assert man["training"]["model"]["warp_dense_geometry"] is True


def test_the_dense_warp_needs_the_geometry_and_one_reference():
    for geometry, refs in ((False, 1), (True, 2)):
        with pytest.raises(ValueError, match="warp_dense_geometry"):
            ModelConfig(size=64, variant="W", warp_grid=16, warp_geometry=geometry, warp_refs=refs,
                        warp_dense_geometry=True).validate()
    args = lambda **kw: argparse.Namespace(**{"dense_geometry": True, **kw})  # noqa: E731
    mcfg, _ = preset_configs("warp", 256, None)
    assert mcfg.warp_dense_geometry is True  # the warp preset's since 30 Nov 2026
    mcfg.warp_dense_geometry = False
    apply_warp_options(mcfg, args())
    assert mcfg.warp_dense_geometry is True
    with pytest.raises(ValueError, match="drop --no-geometry"):
        apply_warp_options(preset_configs("warp", 256, None)[0], args(no_geometry=True))
    with pytest.raises(ValueError, match="--dense-geometry needs one reference frame"):
        apply_warp_options(preset_configs("warp", 256, None)[0], args(refs=2))
    with pytest.raises(ValueError, match="for variant W"):
        apply_warp_options(preset_configs("cpu", 256, None)[0], args())
    with pytest.raises(ValueError, match="--dense-geometry and --no-dense-geometry contradict"):
        apply_warp_options(preset_configs("warp", 256, None)[0], args(no_dense_geometry=True))
    off = preset_configs("warp", 256, None)[0]
    apply_warp_options(off, argparse.Namespace(no_dense_geometry=True))
    assert off.warp_dense_geometry is False
    off = preset_configs("warp", 256, None)[0]  # --no-geometry takes the preset's dense warp with it
    apply_warp_options(off, argparse.Namespace(no_geometry=True))
    assert off.warp_geometry is False and off.warp_dense_geometry is False
    many = preset_configs("warp", 256, None)[0]  # and so do several references (with a note)
    notes = apply_warp_options(many, argparse.Namespace(refs=3))
    assert many.warp_dense_geometry is False and any("dense warp" in n for n in notes)
