"""The head's outline in the dense warp (`--head-outline`, train/face_geometry.py head_outline_points): where its
points go, the warp it gives a turned head's outline, the options, a training step and the exported graph."""
import argparse

import numpy as np
import pytest
import torch

from train.config import ModelConfig, preset_configs
from train.dataset import Dataset
from train.face_geometry import (OUTLINE_ANGLES_DEG, OUTLINE_TOP, OUTLINE_WIDTH, RIGID_LANDMARKS, head_outline_points,
                                 project)
from train.model_warp import WarpModel
from train.synth import write_synthetic_dataset
from train.trainer import Trainer, apply_warp_options

from .conftest import check_warp_switch, tiny_train_config
from .test_warp import export_jittered, tiny_warp_config, with_landmarks

SIZE = 128
CAMERA = torch.tensor([SIZE * 0.9, SIZE / 2.0, SIZE / 2.0])
REF_POSE = torch.tensor([[0.0, 0, 0, 0, 0, -30]])


def face_points() -> torch.Tensor:
    """20 points of a face (cm, MediaPipe's canonical frame: x to the image's right, y up, z towards the camera):
    spread over the face 4-8 cm in front of the head's centre, the side points beside the ears (234, 454) at the
    centre's depth, the forehead's top (10) 7 cm above them."""
    g = torch.Generator().manual_seed(3)
    xy = (torch.rand(len(RIGID_LANDMARKS), 2, generator=g) - 0.5) * torch.tensor([9.0, 12.0])
    pts = torch.cat([xy, 4.0 + 4.0 * torch.exp(-(xy ** 2).sum(1, keepdim=True) / 20.0)], 1)
    for lm, p in ((234, [-8.0, 0.5, 0.5]), (454, [8.0, 0.3, 0.7]), (10, [0.0, 7.5, 5.5])):
        pts[RIGID_LANDMARKS.index(lm)] = torch.tensor(p)
    return pts


def model(outline: bool) -> WarpModel:
    cfg = ModelConfig(size=SIZE, variant="W", mlp_layers=2, mlp_width=32, n_f=4, warp_grid=32, warp_channels=[16, 8],
                      refine_channels=8, refine_layers=2, warp_geometry=True, warp_dense_geometry=True,
                      warp_coarse_motion=True, warp_head_outline=outline).validate()
    m = WarpModel(cfg).eval()
    m.set_reference(torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(4)))
    m.set_geometry(face_points(), CAMERA, torch.tensor([0.0, 0, 0, 0, 0, -30]), torch.tensor([0.2, 0.2, 0.2, 2, 2, 2]),
                   REF_POSE)
    with torch.no_grad():
        m.rigid_map.fill_(12.0)  # every pixel follows the head (untrained: half)
    return m


def test_the_outline_lies_above_the_face_in_the_plane_of_its_side_points():
    pts = face_points()
    o = head_outline_points(pts)
    assert o.shape == (len(OUTLINE_ANGLES_DEG), 3) and o.dtype == pts.dtype
    side_l, side_r, top = (pts[RIGID_LANDMARKS.index(k)] for k in (234, 454, 10))
    centre = (side_l + side_r) / 2
    assert torch.allclose(o[:, 2], centre[2].expand(len(o)))  # the upright plane through the side points
    half = float(side_r[0] - side_l[0]) / 2
    half_w, half_h = OUTLINE_WIDTH * half, float(top[1] - centre[1]) + OUTLINE_TOP * half
    # on the upper half of the ellipse about them: its top above the forehead's point, its sides wider
    ex, ey = (o[:, 0] - centre[0]) / half_w, (o[:, 1] - centre[1]) / half_h
    assert torch.allclose(ex ** 2 + ey ** 2, torch.ones(len(o)), atol=1e-5) and bool((ey > 0).all())
    assert float(o[:, 1].max()) == pytest.approx(float(top[1]) + OUTLINE_TOP * half, abs=1e-5)
    assert float(o[:, 0].min()) < float(side_l[0]) / 2 and float(o[:, 0].max()) > float(side_r[0]) / 2
    assert torch.allclose(head_outline_points(pts.double()).float(), o, atol=1e-5)  # any dtype, the same points


def test_a_turned_head_reads_its_outline_where_the_reference_has_it():
    # turned by 17 degrees and tilted: the face's points (4-8 cm in front of the centre) move further than the
    # outline (at the centre's depth); the dense warp through the face alone carries the outline as far as the face
    pose = torch.tensor([[0.08, 0.3, 0.05, 0.3, -0.2, -30.0]])
    errors = {}
    for outline in (False, True):
        m = model(outline)
        cond = torch.cat([(pose - m.pose_mean) / m.pose_std, torch.zeros(1, 54)], 1)
        with torch.no_grad():
            out = m(cond)
        o = head_outline_points(m.face_points.double())
        u, v = project(pose.double(), o, m.camera.double())  # the caller's outline
        ru, rv = project(REF_POSE.double(), o, m.camera.double())  # the reference's
        ix, iy = u[0].floor().long(), v[0].floor().long()
        assert bool(((ix >= 0) & (ix < SIZE) & (iy >= 0) & (iy < SIZE)).all())
        sx, sy = out["sx"][0].reshape(SIZE, SIZE), out["sy"][0].reshape(SIZE, SIZE)
        got = torch.stack([sx[iy, ix], sy[iy, ix]], 1).double() + 0.5
        errors[outline] = float((got - torch.stack([ru[0], rv[0]], 1)).norm(dim=1).mean())
    # without the outline the warp misses it by pixels; with it, by about a pixel: the read-out pixel's
    # rounding (<= 0.7 px), the spline's smoothing and the flow grid's 4-pixel cells
    assert errors[False] > 3.0, errors
    assert errors[True] < 1.2 and errors[True] < 0.25 * errors[False], errors


def test_at_the_reference_pose_the_outline_changes_nothing():
    a, b = model(False), model(True)
    b.load_state_dict({**b.state_dict(), **{k: v for k, v in a.state_dict().items() if k != "dense_table"}})
    cond = torch.zeros(2, 60)
    cond[:, :6] = (REF_POSE - a.pose_mean) / a.pose_std
    with torch.no_grad():
        x, y = a(cond), b(cond)
    assert float((x["sx"] - y["sx"]).abs().max()) < 1e-3 and float((x["sy"] - y["sy"]).abs().max()) < 1e-3


def test_head_outline_options():
    check_warp_switch("head_outline", preset_default=False)
    with pytest.raises(ValueError, match="warp_head_outline"):
        ModelConfig(size=64, variant="W", warp_grid=16, warp_geometry=True, warp_head_outline=True).validate()
    args = lambda **kw: argparse.Namespace(**{"head_outline": True, **kw})  # noqa: E731
    with pytest.raises(ValueError, match="--head-outline needs the dense warp"):
        apply_warp_options(preset_configs("warp", 256, None)[0], args(no_dense_geometry=True))
    with pytest.raises(ValueError, match="--head-outline needs the fitted geometry"):
        apply_warp_options(preset_configs("warp", 256, None)[0], args(no_geometry=True))
    with pytest.raises(ValueError, match="--head-outline needs one reference frame"):
        apply_warp_options(preset_configs("warp", 256, None)[0], args(refs=2))
    many = preset_configs("warp", 256, None)[0]  # several references take it away with the dense warp (a note)
    many.warp_head_outline = True
    notes = apply_warp_options(many, argparse.Namespace(refs=3))
    assert many.warp_head_outline is False and any("outline" in n for n in notes)


def test_the_trainer_places_the_outline_from_its_fitted_face_points(tmp_path):
    root = write_synthetic_dataset(tmp_path / "face", n=16, size=32, n_test=4, seed=5, kind="face")
    with_landmarks(root, np.random.default_rng(2).uniform(4, 28, (16, 478, 2)))
    cfg = tiny_warp_config()
    cfg.warp_geometry = cfg.warp_dense_geometry = cfg.warp_head_outline = True
    tr = Trainer(Dataset(root), cfg.validate(), tiny_train_config(iterations=2), torch.device("cpu"), "tiny", "t", 25,
                 tmp_path / "out", progress=False)
    m = tr.model
    assert torch.allclose(m.outline_points, head_outline_points(m.face_points), atol=1e-5)
    ru, rv = project(torch.from_numpy(tr.ds.cond[[tr.reference_index], :6]).double(), m.outline_points.double(),
                     m.camera.double())
    assert torch.allclose(m.outline_u.double(), ru[0], atol=1e-3) and torch.allclose(m.outline_v.double(), rv[0], atol=1e-3)
    assert m.dense_table.shape[1] == len(RIGID_LANDMARKS) + len(OUTLINE_ANGLES_DEG)
    assert np.isfinite(tr.step()["loss"])
    # a dataset without landmarks has no geometry, so no outline either
    v1 = write_synthetic_dataset(tmp_path / "v1", n=8, size=32, n_test=2, seed=6, kind="face")
    cfg = tiny_warp_config()
    cfg.warp_geometry = cfg.warp_dense_geometry = cfg.warp_head_outline = True
    tr = Trainer(Dataset(v1), cfg.validate(), tiny_train_config(iterations=2), torch.device("cpu"), "tiny", "t", 25,
                 tmp_path / "out1", progress=False)
    assert tr.mcfg.warp_head_outline is False and not hasattr(tr.model, "outline_u")


def test_the_outline_exports_with_parity(tmp_path):
    man = export_jittered(model(True), tmp_path, "o", 11)
    assert man["training"]["parityMaxAbsDiff"] < 1e-4
    assert man["training"]["model"]["warp_head_outline"] is True
