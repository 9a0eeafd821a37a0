"""Head geometry for variant W: where the rigid head moves in the picture, from the tracked pose.

MediaPipe's pose is a rotation (pitch, yaw, roll; R = Rz(roll) Ry(yaw) Rx(pitch), shared/src/pose.ts) and a
translation (cm) of a canonical face in the camera's frame, seen through a perspective camera. From a dataset's
landmarks and poses we fit, once, that camera (focal length and principal point in output pixels) and the 3D
positions of a few rigid face points (nose, eye corners, forehead, temples). Projecting those points at the
caller's pose and at a reference frame's pose and fitting a 2D affine between the two point sets gives where each
head pixel of the output should be read in the reference: exact geometry that extrapolates to poses the clip never
showed, where a transform learned as a linear function of the pose only interpolates. Everything here is made of
elementary tensor ops, so it exports to ONNX inside the model.
"""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
import torch

# Landmarks on the rigid part of the face (MediaPipe's 478-point mesh): nose, eye corners, forehead, temples.
RIGID_LANDMARKS = [1, 4, 5, 6, 168, 197, 195, 33, 263, 133, 362, 10, 234, 454, 127, 356, 9, 8, 109, 338]

# The head's outline (warp_head_outline): points on the upper half of the head's silhouette seen from the front,
# at these angles of an ellipse (0 = landmark 454's side, 90 = the top of the head, 180 = landmark 234's side), in the
# upright plane through the two side points beside the ears (landmarks 234 and 454), centred between them,
# OUTLINE_WIDTH times as wide as they are apart (the skull and the hair reach past them) and reaching above the
# forehead's top point (landmark 10) by OUTLINE_TOP times their half-distance (the crown lies above the hairline).
# No landmark lies on the hair or the skull's outline; these follow from the fitted face points, and they turn about
# the head as its silhouette does, where the face's own points (mostly 5-8 cm in front of it) would carry the
# silhouette as far as the forehead.
OUTLINE_ANGLES_DEG = (30.0, 60.0, 90.0, 120.0, 150.0)
OUTLINE_WIDTH = 1.2
OUTLINE_TOP = 0.8


def head_outline_points(points: torch.Tensor) -> torch.Tensor:
    """The fitted rigid face points [len(RIGID_LANDMARKS), 3] (cm) -> the head's outline points [m, 3] (see
    OUTLINE_ANGLES_DEG), in the same frame and dtype."""
    side_l, side_r = points[RIGID_LANDMARKS.index(234)], points[RIGID_LANDMARKS.index(454)]
    top = points[RIGID_LANDMARKS.index(10)]
    centre = (side_l + side_r) / 2.0
    half = (side_r[0] - side_l[0]).abs() / 2.0
    half_w = OUTLINE_WIDTH * half
    half_h = (top[1] - centre[1]) + OUTLINE_TOP * half
    a = torch.tensor(OUTLINE_ANGLES_DEG, dtype=points.dtype, device=points.device) * (np.pi / 180.0)
    return torch.stack([centre[0] + half_w * torch.cos(a), centre[1] + half_h * torch.sin(a),
                        centre[2].expand(a.shape[0])], 1)


def euler_matrix(angles: torch.Tensor) -> torch.Tensor:
    """angles [B, 3] (pitch, yaw, roll, radians) -> R [B, 3, 3] = Rz(roll) Ry(yaw) Rx(pitch).

    Each elementary rotation's nine entries are a constant plus multiples of the angle's cosine and sine, so all
    three come from one product with a constant table and two matrix products follow: a dozen nodes in the
    exported graph instead of fifty scalar ones (each costs onnxruntime a few microseconds a frame)."""
    cs = torch.stack([torch.cos(angles), torch.sin(angles)], 2)[:, :, None, :]  # [B, 3, 1, 2]
    trig, one = _euler_tables_on(angles.device, angles.dtype)
    e = torch.matmul(cs, trig) + one  # [B, 3, 1, 9]
    e = e.reshape(-1, 3, 3, 3)  # Rx, Ry, Rz
    return torch.matmul(torch.matmul(e[:, 2], e[:, 1]), e[:, 0])


def _euler_tables() -> "Tuple[torch.Tensor, torch.Tensor]":
    """(cos, sin) -> entries [3, 2, 9] and the constant entries [3, 1, 9] of Rx(pitch), Ry(yaw), Rz(roll)."""
    trig = torch.zeros(3, 2, 9, dtype=torch.float64)
    one = torch.zeros(3, 1, 9, dtype=torch.float64)
    # Rx = [[1, 0, 0], [0, c, -s], [0, s, c]]; Ry = [[c, 0, s], [0, 1, 0], [-s, 0, c]]; Rz = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    for k, cos_at, sin_at, one_at in ((0, (4, 8), {5: -1.0, 7: 1.0}, 0), (1, (0, 8), {2: 1.0, 6: -1.0}, 4),
                                      (2, (0, 4), {1: -1.0, 3: 1.0}, 8)):
        for i in cos_at:
            trig[k, 0, i] = 1.0
        for i, sign in sin_at.items():
            trig[k, 1, i] = sign
        one[k, 0, one_at] = 1.0
    return trig, one


_EULER_TABLES: "Dict[Tuple[torch.device, torch.dtype], Tuple[torch.Tensor, torch.Tensor]]" = {
    (torch.device("cpu"), torch.float64): _euler_tables()}


def _euler_tables_on(device: torch.device, dtype: torch.dtype) -> "Tuple[torch.Tensor, torch.Tensor]":
    """The tables on `device` in `dtype`, copied there once: a copy in every forward would be a host-to-device
    transfer per step on a GPU, and one that a CUDA graph capture refuses."""
    key = (device, dtype)
    if key not in _EULER_TABLES:
        trig, one = _EULER_TABLES[(torch.device("cpu"), torch.float64)]
        _EULER_TABLES[key] = (trig.to(device, dtype), one.to(device, dtype))
    return _EULER_TABLES[key]


def project(pose: torch.Tensor, points: torch.Tensor, cam: torch.Tensor) -> "Tuple[torch.Tensor, torch.Tensor]":
    """pose [B, 6] (raw: radians, cm), points [N, 3], cam [3] (focal, cx, cy in output pixels, landmark
    convention: pixel i spans [i, i+1)) -> u, v [B, N]."""
    r = euler_matrix(pose[:, :3])
    p = torch.matmul(r, points.t()) + pose[:, 3:, None]  # [B, 3, N]
    depth = -p[:, 2]
    u = cam[1] + cam[0] * p[:, 0] / depth
    v = cam[2] - cam[0] * p[:, 1] / depth
    return u, v


def affine_to(u: torch.Tensor, v: torch.Tensor, ref_u: torch.Tensor, ref_v: torch.Tensor) -> torch.Tensor:
    """Least-squares 2D affines mapping the points (u, v) [B, N] onto each reference's (ref_u, ref_v) [K, N]:
    [K, B, 2, 3] (rows: x' = a00 x + a01 y + a02, y' = a10 x + a11 y + a12). Solved on centred points (a 2x2
    inverse in closed form: well conditioned in float32, and no Inverse op in ONNX)."""
    mu, mv = u.mean(1, keepdim=True), v.mean(1, keepdim=True)  # [B, 1]
    cu, cv = u - mu, v - mv
    suu, suv, svv = (cu * cu).sum(1), (cu * cv).sum(1), (cv * cv).sum(1)  # [B]
    det = suu * svv - suv * suv
    q = torch.stack([cu, cv], 2)  # [B, N, 2]
    ru = torch.matmul(ref_u[:, None, None, :], q[None])[:, :, 0]  # [K, B, 2]: sum_n ref_u * (cu, cv)
    rv = torch.matmul(ref_v[:, None, None, :], q[None])[:, :, 0]
    # L = [[ru0, ru1], [rv0, rv1]] @ inv([[suu, suv], [suv, svv]])
    i00, i01, i11 = svv / det, -suv / det, suu / det
    l00 = ru[..., 0] * i00 + ru[..., 1] * i01
    l01 = ru[..., 0] * i01 + ru[..., 1] * i11
    l10 = rv[..., 0] * i00 + rv[..., 1] * i01
    l11 = rv[..., 0] * i01 + rv[..., 1] * i11  # each [K, B]
    # x' = L (p - mean) + ref mean
    t0 = ref_u.mean(1, keepdim=True) - l00 * mu[:, 0] - l01 * mv[:, 0]
    t1 = ref_v.mean(1, keepdim=True) - l10 * mu[:, 0] - l11 * mv[:, 0]
    return torch.stack([torch.stack([l00, l01, t0], -1), torch.stack([l10, l11, t1], -1)], 2)


def fit_face_geometry(landmarks: np.ndarray, poses: np.ndarray, size: int, iterations: int = 1500,
                      seed: int = 0) -> "Tuple[np.ndarray, np.ndarray, float]":
    """Fits the camera and the rigid points to a dataset's frames: landmarks [N, 478, 2] (output pixels, NaN where
    no face), poses [N, 6] (raw). Returns (points [k, 3], cam [3], mean reprojection error in pixels)."""
    lm = torch.tensor(landmarks[:, RIGID_LANDMARKS], dtype=torch.float64)
    pose = torch.tensor(poses, dtype=torch.float64)
    ok = torch.isfinite(lm).all(-1).all(-1) & torch.isfinite(pose).all(-1)
    if int(ok.sum()) < 10:
        raise ValueError("fewer than 10 frames with landmarks: cannot fit the face geometry")
    lm, pose = lm[ok], pose[ok]
    g = torch.Generator().manual_seed(seed)
    pts = (torch.randn(len(RIGID_LANDMARKS), 3, generator=g, dtype=torch.float64) * 2).requires_grad_(True)
    log_f = torch.tensor(float(np.log(size * 0.8)), dtype=torch.float64, requires_grad=True)
    centre = torch.tensor([size / 2, size / 2], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([pts, log_f, centre], lr=0.05)
    for it in range(iterations):
        if it == iterations * 2 // 3:
            for group in opt.param_groups:
                group["lr"] = 0.01
        opt.zero_grad()
        cam = torch.cat([log_f.exp()[None], centre])
        u, v = project(pose, pts, cam)
        err = ((u - lm[..., 0]) ** 2 + (v - lm[..., 1]) ** 2).mean()
        err.backward()
        opt.step()
    # a few quasi-Newton steps finish what Adam started (sub-pixel where the data allow it)
    lbfgs = torch.optim.LBFGS([pts, log_f, centre], lr=1.0, max_iter=100, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        lbfgs.zero_grad()
        u, v = project(pose, pts, torch.cat([log_f.exp()[None], centre]))
        e = ((u - lm[..., 0]) ** 2 + (v - lm[..., 1]) ** 2).mean()
        e.backward()
        return e

    lbfgs.step(closure)
    with torch.no_grad():
        cam = torch.cat([log_f.exp()[None], centre])
        u, v = project(pose, pts, cam)
        rep = float(((u - lm[..., 0]) ** 2 + (v - lm[..., 1]) ** 2).sqrt().mean())
    return pts.detach().float().numpy(), cam.detach().float().numpy(), rep
