"""train/face_geometry.py: the camera + rigid face points fit, the least-squares affine, and variant W with the
fitted geometry inside the exported graph."""
import numpy as np
import torch

from train.config import ModelConfig
from train.export import export_avatar, untrained_conditioning
from train.face_geometry import RIGID_LANDMARKS, affine_to, fit_face_geometry, project
from train.model_warp import WarpModel


def _scene(n_frames=150, seed=0):
    g = torch.Generator().manual_seed(seed)
    pts = torch.randn(len(RIGID_LANDMARKS), 3, generator=g, dtype=torch.float64) * torch.tensor([4.0, 5.0, 2.0],
                                                                                                 dtype=torch.float64)
    cam = torch.tensor([210.0, 130.0, 118.0], dtype=torch.float64)
    pose = torch.cat([(torch.rand(n_frames, 3, generator=g, dtype=torch.float64) - 0.5) * 0.4,
                      (torch.rand(n_frames, 2, generator=g, dtype=torch.float64) - 0.5) * 3,
                      -25 + (torch.rand(n_frames, 1, generator=g, dtype=torch.float64) - 0.5) * 3], 1)
    return pts, cam, pose


def test_fit_recovers_the_projection_of_a_known_scene():
    pts, cam, pose = _scene()
    u, v = project(pose, pts, cam)
    lm = np.full((len(pose), 478, 2), np.nan, np.float32)
    lm[:, RIGID_LANDMARKS] = torch.stack([u, v], -1).numpy()
    lm[5] = np.nan  # a frame without a face is ignored
    fit_pts, fit_cam, err = fit_face_geometry(lm, pose.float().numpy(), 256, iterations=1500)
    assert err < 0.05, f"reprojection error {err:.3f} px"
    assert abs(float(fit_cam[0]) - 210.0) < 10.0
    # held-out poses project to the same pixels through the fitted camera and points
    _, _, pose2 = _scene(20, seed=1)
    a = torch.stack(project(pose2, pts, cam), -1)
    b = torch.stack(project(pose2, torch.from_numpy(fit_pts).double(), torch.from_numpy(fit_cam).double()), -1)
    assert float((a - b).norm(dim=-1).max()) < 1.0


def test_affine_to_recovers_an_exact_affine():
    g = torch.Generator().manual_seed(2)
    u, v = torch.rand(3, 12, generator=g) * 200, torch.rand(3, 12, generator=g) * 200
    true = torch.tensor([[[1.05, -0.1, 3.0], [0.08, 0.97, -5.0]], [[0.9, 0.0, 10.0], [0.0, 0.9, 2.0]]])  # [K=2, 2, 3]
    ref_u = true[:, 0, 0, None] * u[0] + true[:, 0, 1, None] * v[0] + true[:, 0, 2, None]  # refs from frame 0
    ref_v = true[:, 1, 0, None] * u[0] + true[:, 1, 1, None] * v[0] + true[:, 1, 2, None]
    a = affine_to(u, v, ref_u, ref_v)  # [K, B, 2, 3]
    assert a.shape == (2, 3, 2, 3)
    assert torch.allclose(a[:, 0], true, atol=1e-3)


def _geometry_model(size=32, refs=1):
    cfg = ModelConfig(size=size, variant="W", mlp_layers=2, mlp_width=32, n_f=4, warp_grid=16, warp_channels=[16, 8],
                      refine_channels=8, refine_layers=2, warp_geometry=True, warp_refs=refs).validate()
    m = WarpModel(cfg).eval()
    pts, cam, pose = _scene(refs + 1)
    cam = cam * size / 256
    m.set_reference(torch.rand(3, size, size) if refs == 1 else torch.rand(refs, 3, size, size),
                    None if refs == 1 else torch.zeros(refs, 6))
    m.set_geometry(pts.float(), cam.float(), torch.tensor([0.0, 0, 0, 0, 0, -25]), torch.tensor([0.1, 0.1, 0.1, 1, 1, 1]),
                   pose[:refs].float())
    return m, pose


def test_geometric_motion_is_zero_at_the_reference_pose_and_moves_the_head_elsewhere():
    m, pose = _geometry_model()
    z = (pose[:2].float() - m.pose_mean) / m.pose_std
    gx, gy = m.displacements(m.geometric_affine(z), m.p1)
    assert float(gx[0, 0].abs().max()) < 0.05 and float(gy[0, 0].abs().max()) < 0.05
    assert float((gx[0, 1].abs() + gy[0, 1].abs()).mean()) > 0.5


def test_variant_w_with_geometry_exports_with_parity(tmp_path):
    for refs in (1, 3):
        torch.manual_seed(refs)
        m, _ = _geometry_model(refs=refs)
        with torch.no_grad():
            for p in m.parameters():
                p.add_(torch.randn_like(p) * 0.05)
        c = untrained_conditioning()
        man = export_avatar(m, None, tmp_path / f"k{refs}", "g", 25, c["mean"], c["std"], c["neutral"],
                            {"provenance": "test"})
        assert man["training"]["parityMaxAbsDiff"] < 1e-4, refs
        assert man["training"]["model"]["warp_geometry"] is True


def test_a_model_whose_geometry_was_never_fitted_is_well_defined():
    # untrained avatars (`export --untrained --preset warp`) never see a dataset: the default geometry must not
    # produce NaN coordinates (a NaN index crashed the export once)
    cfg = ModelConfig(size=32, variant="W", mlp_layers=2, mlp_width=32, n_f=4, warp_grid=16, warp_channels=[16, 8],
                      refine_channels=8, refine_layers=2, warp_geometry=True).validate()
    m = WarpModel(cfg).eval()
    with torch.no_grad():
        out = m(torch.randn(3, 60))
        gx, gy = m.displacements(m.geometric_affine(torch.zeros(1, 6)), m.p1)
    assert torch.isfinite(out["rgb"]).all() and torch.isfinite(out["sx"]).all()
    assert float(gx.abs().max()) < 0.05 and float(gy.abs().max()) < 0.05  # at the mean pose: no motion
