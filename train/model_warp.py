"""Variant W: a per-person deformation model that re-uses real texture instead of synthesising it.

One real training frame (the reference, chosen near the neutral face) is a constant inside the model. For every
output pixel p the model computes where to read it in the reference:

    s(p) = p + r(p) * (A(pose) p - p) + f(p)

- A(pose): a 2D affine transform that is a LINEAR function of the normalised head pose (6 numbers -> 6 affine
  parameters). Linear in pose, so it extrapolates to head positions the training clip never showed. With the fitted
  head geometry (`warp_geometry`) A is the geometry's affine plus this learned one as a correction, which without
  `warp_learned_rotation` (the preset's choice) only shifts and scales.
- r(p) in [0, 1]: how rigidly pixel p follows the head (head ~1, static background ~0), a learned static map plus
  a per-frame correction.
- f(p): a residual flow for the non-rigid motion (jaw, lips, cheeks, brows, lids), predicted by a small MLP and
  CNN from expression, gaze and the out-of-plane angles only (not from the translation or roll, which are rigid:
  this keeps pose and expression apart).

With `warp_aligned` (`--aligned`), the CNN's maps (flow, rigidity correction, synthesis features) are laid out in
the reference's frame, on the head, and each flow-grid cell reads them where the rigid head motion puts it in the
reference (sampled at the flow grid's resolution with a gather, sample_bilinear): an expression's motion then moves
with the head instead of having to be learned again at every head position and roll.

With `warp_dense_geometry` (`--dense-geometry`), the geometry moves the head by more than its affine: what the
affine leaves at the fitted face points (a turned head's nose and cheeks move differently from the face's plane, 7-15
px on the synthetic presenter) is spread over the reference by a thin-plate spline through them, tabulated on a
33 x 33 grid from constants, and each output cell reads it where the head puts the cell (a fixed point, four bilinear
reads); the colour layers move with it. With `warp_head_outline` (`--head-outline`) the spline also goes through
a few points of the head's outline above the face, placed from the fitted face points (face_geometry.py): the hair
and the skull's outline of a turned head then move as an outline does, not as far as the forehead.

With `warp_coarse_motion` (`--coarse-motion`, one reference), s(p) - p is composed at the flow grid's cells and
up-sampled once as two channels (instead of up-sampling r, f and the dense warp and composing them at every output
pixel), and the refinement's sigmoid comes before its up-sampling: the same model up to how a product and a sigmoid
are interpolated between the cells (`finish_coarse`), with less work at full resolution.

With `warp_body_motion` (`--body-motion`, with coarse motion), the body below the head gets its own motion: a term
b(p) (B(pose) p - p) is added to s(p) - p, B a second affine LINEAR in the whole normalised pose (translation and
roll included) and b a learned static map on the flow grid. Shoulders follow the head's translation partly and its
turns a little, which neither the rigidity (a fraction of the head's own motion) nor the flow (no translation or
roll in its inputs) can carry.

The reference is sampled bilinearly at s (one Gather from a table of each source pixel's 4 neighbours: exact,
cheaper than GridSample in onnxruntime). A small refinement CNN at half resolution sees the warped image and the
motion features and predicts a synthesised colour and a blend mask for what a warp cannot show (mouth interior,
teeth, eyelids):  rgb = m * warp + (1 - m) * synth.

With `warp_eyes` (`--eyes`), an eye layer goes on top: a full-resolution change of colour over both eyes (a patch
of S/2 x 3S/16 placed on the reference's eyes) drawn by its own small decoder from the eye and brow controls, gaze
and pitch/yaw only, and carried to the output by the rigid head motion (one GridSample over a window of the output
around the eyes): rgb = rgb + eyes. A warp cannot close a lid over an eye or move an iris under a lid, and the
half-resolution synthesis draws them soft.

With `warp_mouth` (`--mouth`), a mouth layer of the same kind goes on top too: a patch of 3S/8 x S/4 placed on the
reference's lips (reaching below them, where an opening jaw goes), drawn from the jaw and mouth controls,
cheekPuff and pitch/yaw: teeth and the dark of an open mouth that the warp cannot show and the half-resolution
synthesis draws as a pink smudge.

The same code runs in training and in the exported ONNX graph (cond [B, 60] -> rgb [B, 3, S, S]).
"""
from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn
import torch.nn.functional as Fn

from .config import POSE_SIZE, GAZE_SIZE, ModelConfig
from .face_geometry import OUTLINE_ANGLES_DEG, RIGID_LANDMARKS, affine_to, head_outline_points, project

# the eye layer's controls: brows (1-5), cheek squints (7, 8), blinks, looks, squints and wides (9-22)
EYE_BLENDSHAPES = [1, 2, 3, 4, 5] + list(range(7, 23))
EYE_COARSE = (3, 8)  # the eye decoder's first map (rows, columns); doubled up to (3S/16, S/2)
EYE_CHANNELS = [32, 32, 16, 16]  # per doubling stage (further stages keep the last)
EYE_TAPER = 4.0  # pixels over which a colour layer's change of colour fades to zero at the patch's border
# the mouth layer's controls: cheekPuff (6), the jaw and mouth blendshapes (23-49)
MOUTH_BLENDSHAPES = [6] + list(range(23, 50))
MOUTH_COARSE = (4, 6)  # the mouth decoder's first map; doubled up to (S/4, 3S/8)
MOUTH_CHANNELS = [32, 32, 16, 16]


# the dense warp (warp_dense_geometry): the thin-plate spline's smoothing (normalised units; 0 interpolates the face
# points exactly, which bends the spline hard between close points), the nodes of its table over the reference
# (DENSE_TABLE x DENSE_TABLE, from edge to edge of the frame), the output cells it is found at (DENSE_CELLS x
# DENSE_CELLS, then up-sampled: the spline is smooth) and the fixed-point steps from the affine
TPS_SMOOTHING = 0.01
DENSE_TABLE = 33
DENSE_CELLS = 32
DENSE_ITERATIONS = 4


def tps_system(ref_u: torch.Tensor, ref_v: torch.Tensor, size: int,
               smoothing: float = TPS_SMOOTHING) -> "tuple[torch.Tensor, torch.Tensor]":
    """A thin-plate spline with centres at the points (ref_u, ref_v) [n] (landmark coordinates, pixel i spanning
    [i, i + 1)): the centres in normalised coordinates [n, 2] and the matrix [n + 3, n] that turns values at the
    centres in pixels [n, C] into its coefficients in normalised units (n kernel weights, then the constant and the
    x and y terms), smoothed by `smoothing`. Solved once, in float64, when the geometry is set."""
    c = torch.stack([ref_u, ref_v], 1).double() * (2.0 / size) - 1.0
    n = c.shape[0]
    k = _tps_kernel(((c[:, None] - c[None]) ** 2).sum(-1)) + smoothing * torch.eye(n, dtype=c.dtype, device=c.device)
    p = torch.cat([torch.ones(n, 1, dtype=c.dtype, device=c.device), c], 1)
    system = torch.zeros(n + 3, n + 3, dtype=c.dtype, device=c.device)
    system[:n, :n], system[:n, n:], system[n:, :n] = k, p, p.t()
    return c.float(), (torch.linalg.inv(system)[:, :n] * (2.0 / size)).float()


def dense_table(ref_u: torch.Tensor, ref_v: torch.Tensor, size: int, nodes: int = DENSE_TABLE) -> torch.Tensor:
    """The constant [nodes^2, n] that turns the thin-plate spline's values at the reference's face points (ref_u,
    ref_v) [n] (pixels) into its values at a nodes x nodes table over the reference (row-major; node k of a row at
    normalised x = 2k / (nodes - 1) - 1, the frame's left edge to its right edge)."""
    centres, solve = tps_system(ref_u, ref_v, size)
    t = torch.linspace(-1.0, 1.0, nodes, dtype=torch.float64, device=ref_u.device)
    ty, tx = torch.meshgrid(t, t, indexing="ij")
    q = torch.stack([tx.reshape(-1), ty.reshape(-1)], 1)[None]  # [1, nodes^2, 2]
    # the spline of each face point's unit value, at every node
    return (tps_eval(centres.double(), solve.double()[None], q)[0] * (size / 2.0)).float()  # values in pixels


def _tps_kernel(d2: torch.Tensor) -> torch.Tensor:
    """r^2 log r of the squared distances d2 (0 at 0)."""
    return 0.5 * d2 * torch.log(d2 + 1e-12)


def tps_eval(centres: torch.Tensor, coef: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The spline of `coef` [B, n + 3, C] (centres [n, 2]) at the points q [B, Q, 2] -> [B, Q, C]."""
    n = centres.shape[0]
    # |q - c|^2 = |q|^2 + |c|^2 - 2 q.c: one small product instead of a [B, Q, n, 2] difference
    d2 = ((q * q).sum(2, keepdim=True) + (centres * centres).sum(1) - 2.0 * torch.matmul(q, centres.t())).clamp_min(0.0)
    affine = coef[:, n:n + 1] + torch.matmul(q, coef[:, n + 1:n + 3])  # [B, Q, C]
    return torch.matmul(_tps_kernel(d2), coef[:, :n]) + affine


def neighbour_table(ref: torch.Tensor) -> torch.Tensor:
    """ref [3, S, S] -> [S*S, 12]: for each source pixel (y, x) the colours of (y,x), (y,x+1), (y+1,x), (y+1,x+1),
    clamped at the border."""
    s = ref.shape[-1]
    pad = Fn.pad(ref[None], (0, 1, 0, 1), mode="replicate")[0]  # [3, S+1, S+1]
    parts = [pad[:, :s, :s], pad[:, :s, 1:], pad[:, 1:, :s], pad[:, 1:, 1:]]
    return torch.cat([p.reshape(3, -1).t() for p in parts], 1).contiguous()


def stacked_table(ref: torch.Tensor) -> torch.Tensor:
    """The neighbour table of one reference [3, S, S] or of K references [K, 3, S, S] stacked: [K*S*S, 12]."""
    if ref.dim() == 3:
        return neighbour_table(ref)
    return torch.cat([neighbour_table(r) for r in ref], 0).contiguous()


def bilinear_gather(table: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor, size: int) -> torch.Tensor:
    """Samples the reference (of size S, as its neighbour table) at pixel coordinates (sx, sy) [B, P] ->
    [B, 3, P] reshaped to [B, 3, S, S] when P = S*S (bilinear, border-clamped)."""
    out = _gather(table, sx, sy, size, None)  # [3, B, P]
    p = sx.shape[1]
    out = out.transpose(0, 1)  # [B, 3, P]
    return out.reshape(-1, 3, size, size) if p == size * size else out


def _gather(table: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor, size: int,
            offset: Optional[torch.Tensor]) -> torch.Tensor:
    """[3, B, P] colours of the table at (sx, sy) [B, P]; `offset` [1, P] (integer-valued) selects each point's
    reference in a stacked table of several (K x S*S rows)."""
    hi = float(size - 1) - 1e-3
    x = sx.clamp(0.0, hi)
    y = sy.clamp(0.0, hi)
    x0 = torch.floor(x)
    y0 = torch.floor(y)
    fx = x - x0
    fy = y - y0
    flat = y0 * size + x0
    if offset is not None:
        flat = flat + offset
    return _weigh_corners(table, flat.long(), fx, fy)


def _weigh_corners(table: torch.Tensor, idx: torch.Tensor, fx: torch.Tensor, fy: torch.Tensor,
                   dims: "Optional[tuple[int, int]]" = None) -> torch.Tensor:
    """The table's rows idx [B, P] (4 neighbours x C channels each) weighted bilinearly by (fx, fy) [B, P] -> [C, B, P].
    Layout chosen for onnxruntime: one Gather on axis 0 of the table (folded to a constant at export for the
    reference), and weights [B, P] broadcast over the leading axes only (broadcasts over an inner axis of size 1 are
    slow there). `dims`: (C, P) as plain numbers, for the export (else read from the shapes: nodes of the graph)."""
    c, p = dims if dims is not None else (table.shape[1] // 4, idx.shape[1])
    g = table[idx].permute(2, 0, 1).reshape(4, c, -1, p)  # [4 neighbours, C, B, P]
    return g[0] * ((1 - fx) * (1 - fy)) + g[1] * (fx * (1 - fy)) + g[2] * ((1 - fx) * fy) + g[3] * (fx * fy)


def bilinear_gather_xy(table: torch.Tensor, sxy: torch.Tensor, size: int) -> torch.Tensor:
    """bilinear_gather with the coordinates stacked: sxy [B, 2, P] (x, y) -> [B, 3, S, S] (P = S*S) or [B, 3, P].
    Clamped, floored and split in one op each for both axes (fewer nodes: each costs onnxruntime ~5-30 us)."""
    p = sxy.shape[2]
    hi = float(size - 1) - 1e-3
    c = sxy.clamp(0.0, hi)
    c0 = torch.floor(c)
    f = c - c0
    out = _weigh_corners(table, (c0[:, 1] * size + c0[:, 0]).long(), f[:, 0], f[:, 1],
                         (3, size * size) if p == size * size else None).transpose(0, 1)  # [B, 3, P]
    return out.reshape(-1, 3, size, size) if p == size * size else out


def blend_gather(table: torch.Tensor, sx: torch.Tensor, sy: torch.Tensor, size: int, refs: int,
                 weights: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """K references stacked in `table`: samples reference k at (sx, sy) [B, K*P] (k-major) and blends them with
    `weights` [B, K*P] (summing to 1 over k) -> [B, 3, S, S] when P = S*S (else [B, 3, P])."""
    b = sx.shape[0]
    p = sx.shape[1] // refs
    g = _gather(table, sx, sy, size, offset) * weights  # [3, B, K*P]
    out = g.reshape(3, b, refs, p).sum(2).transpose(0, 1)  # [B, 3, P]
    return out.reshape(-1, 3, size, size) if p == size * size else out


def up(maps: torch.Tensor, size_in: int, size_out: int) -> torch.Tensor:
    """Bilinear resampling (align_corners=False) of square maps [B, C, size_in, size_in] to size_out: by a constant
    scale factor, the same samples as interpolate(size=...) for the whole ratios used here, without the nodes that
    compute a size from the input's shape in the exported graph."""
    if size_in == size_out:
        return maps
    return Fn.interpolate(maps, scale_factor=size_out / size_in, mode="bilinear", align_corners=False)


def sample_bilinear(maps: torch.Tensor, q: torch.Tensor,
                    dims: "Optional[tuple[int, int, int, int]]" = None) -> torch.Tensor:
    """Bilinear samples of maps [B, C, H, W] at q [B, 2, P] (x, y) in pixel units (pixel i's centre at i), clamped
    to the map (grid_sample's "border" padding with align_corners=False) -> [B, C, P].

    Instead of GridSample: each cell's four corners side by side in a table [B*(H-1)*(W-1), 4C], then one Gather of
    a row per point. onnxruntime's CPU GridSample takes 10-30 ns per sample and channel (1.2 ms for the default
    avatar's 11 head-aligned maps at 64x64 points); a row gather ~20 ns for all channels. (For the colour layers'
    3-channel patches the extra nodes cost as much as GridSample: they keep it.)

    `dims`: (C, H, W, P) as plain numbers, for the export (sizes read from a tensor's shape become nodes of the graph)."""
    c, h, w, p = dims if dims is not None else (maps.shape[1], maps.shape[2], maps.shape[3], q.shape[2])
    return sample_table(corner_table(maps, (c, h, w)), h, w, q, dims=(c, p))


def corner_table(maps: torch.Tensor, dims: "Optional[tuple[int, int, int]]" = None) -> torch.Tensor:
    """maps [B, C, H, W] -> each cell's four corners side by side [B*(H-1)*(W-1), 4C] (for sample_table); `dims` as
    for sample_bilinear."""
    c, h, w = dims if dims is not None else (maps.shape[1], maps.shape[2], maps.shape[3])
    cells = (h - 1) * (w - 1)
    table = torch.cat([maps[:, :, :-1, :-1], maps[:, :, :-1, 1:], maps[:, :, 1:, :-1], maps[:, :, 1:, 1:]], 1)
    return table.reshape(-1, 4 * c, cells).transpose(1, 2).reshape(-1, 4 * c)


def batch_rows(q: torch.Tensor, cells: int) -> torch.Tensor:
    """The first row of each batch item's cells in a corner_table of `cells` cells an item: [B, 1] int64 (for the
    points q [B, ...])."""
    return (torch.arange(q.shape[0], dtype=torch.int64, device=q.device) * cells).reshape(-1, 1)


def sample_table(table: torch.Tensor, h: int, w: int, q: torch.Tensor, rows: Optional[torch.Tensor] = None,
                 dims: "Optional[tuple[int, int]]" = None) -> torch.Tensor:
    """sample_bilinear of the maps (H x W) whose corner_table is `table`, at q [B, 2, P] (x, y) -> [B, C, P]; `rows`:
    batch_rows(q, cells), when the caller reads the same table again; `dims`: (C, P) as for _weigh_corners. Both
    axes are clamped, floored and split in one op each (fewer nodes in the graph)."""
    cells = (h - 1) * (w - 1)
    if h == w:
        c = q.clamp(0.0, float(w - 1))
        c0 = torch.floor(c).clamp(max=float(w - 2))
    else:
        hi = q.new_tensor([w - 1.0, h - 1.0]).reshape(1, 2, 1)
        c = torch.minimum(q.clamp(min=0.0), hi)
        c0 = torch.minimum(torch.floor(c), hi - 1.0)
    f = c - c0
    # in integers: cell numbers above 2048 are not exact in the fp16 export
    ci = c0.to(torch.int64)
    row = ci[:, 1] * (w - 1) + ci[:, 0] + (batch_rows(q, cells) if rows is None else rows)
    return _weigh_corners(table, row, f[:, 0], f[:, 1], dims).transpose(0, 1)  # [B, C, P]


class ColourPatch(nn.Module):
    """A colour layer: a full-resolution change of colour over one region of the face, a patch of h x w pixels in
    the reference's frame (its top-left corner `origin`, placed from the reference's landmarks by set_origin),
    drawn by its own small decoder (MLP -> coarse map -> up-sample+conv stages -> 3 channels, tapered to zero over
    EYE_TAPER pixels at the border) from the conditioning values `select` (indices into the normalised
    conditioning), and carried to the output by the rigid head motion (one GridSample over a window of the output
    around where the head carries it, scatter-added into the frame). It starts at zero change:
    a layer with its own opacity was switched off by the first steps of training (a wrong patch costs more at
    first than a closed lid gains) and never came back; a change can only be learned."""

    def __init__(self, size: int, h: int, w: int, coarse, channels, select, origin):
        super().__init__()
        self.size, self.h, self.w = size, h, w
        self.coarse, self.c0 = tuple(coarse), channels[0]
        self.register_buffer("origin", torch.tensor([float(v) for v in origin]))
        self.register_buffer("select", torch.tensor(list(select)), persistent=False)
        n = 64
        self.mlp = nn.Sequential(nn.Linear(len(select), n), nn.ReLU(), nn.Linear(n, n), nn.ReLU(),
                                 nn.Linear(n, channels[0] * coarse[0] * coarse[1]))
        self.up = nn.ModuleList()
        c_in, r = channels[0], coarse[1]
        chans = list(channels)
        while r < w:
            c_out = chans.pop(0) if chans else c_in
            self.up.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            c_in, r = c_out, r * 2
        self.head = nn.Conv2d(c_in, 3, 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        ty = torch.arange(h, dtype=torch.float32) + 0.5
        tx = torch.arange(w, dtype=torch.float32) + 0.5
        fy = (torch.minimum(ty, h - ty) / EYE_TAPER).clamp(0, 1)
        fx = (torch.minimum(tx, w - tx) / EYE_TAPER).clamp(0, 1)
        self.register_buffer("window", (fy[:, None] * fx[None, :])[None, None], persistent=False)
        # the output window the layer is drawn over: the patch with room for the head's scale and roll (the
        # rigid head motion carries the patch there, so only these pixels can change; sampling the whole frame
        # took 2.6 of 15.6 ms a frame for the default avatar's two layers). Only poses far outside any training
        # range (a head turned 50 degrees and more) push a patch past it.
        self.win_h, self.win_w = min(size, h * 3 // 2 + 32), min(size, w * 3 // 2 + 16)
        # the window's pixels (j', i', 1), columns and rows from its centre [3, N] (one product places them all;
        # 0.25 MB of the ONNX file a layer), and their offsets in the flat frame from its corner
        wj = torch.arange(self.win_w, dtype=torch.float32) - (self.win_w - 1) / 2.0
        wi = torch.arange(self.win_h, dtype=torch.float32) - (self.win_h - 1) / 2.0
        gi, gj = torch.meshgrid(wi, wj, indexing="ij")
        self.register_buffer("win_p1", torch.stack([gj.reshape(-1), gi.reshape(-1), torch.ones(gj.numel())], 0),
                             persistent=False)
        self.register_buffer("win_scale", torch.tensor([2.0 / w, 2.0 / h]).reshape(1, 2, 1), persistent=False)
        self.register_buffer("win_cols", torch.arange(self.win_w).reshape(1, 1, -1), persistent=False)
        self.register_buffer("win_rows", (torch.arange(self.win_h) * size).reshape(1, -1, 1), persistent=False)
        self.register_buffer("rgb_planes", torch.zeros(1, 3, 1, dtype=torch.int64), persistent=False)

    @torch.no_grad()
    def set_origin(self, centre_x: float, centre_y: float) -> None:
        """Centres the patch on (centre_x, centre_y) of the reference (pixels; the corner is rounded to whole
        pixels and kept inside the frame)."""
        s = self.size
        x0 = int(round(min(max(centre_x - self.w / 2.0, 0.0), s - self.w)))
        y0 = int(round(min(max(centre_y - self.h / 2.0, 0.0), s - self.h)))
        self.origin.copy_(torch.tensor([x0, y0], dtype=torch.float32))

    def draw(self, z: torch.Tensor) -> torch.Tensor:
        """z [B, 60] clipped normalised conditioning -> the change of colour on the reference [B, 3, h, w], fading
        to zero at the patch's border."""
        x = torch.index_select(z, 1, self.select).clamp(-3.0, 3.0)
        x = self.mlp(x).reshape(-1, self.c0, self.coarse[0], self.coarse[1])
        for conv in self.up:
            x = torch.relu(conv(Fn.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)))
        return self.head(x) * self.window

    def forward(self, z: torch.Tensor, rigid: torch.Tensor, dense: Optional[torch.Tensor] = None,
                dense_grid: Optional[torch.Tensor] = None, grid: int = 0) -> "tuple[torch.Tensor, torch.Tensor]":
        """z [B, 60] clipped normalised conditioning; rigid [B, 2, 3] the rigid head motion as displacements
        (pixels) of the output pixel (x, y): (dx, dy) = rigid @ (x, y, 1); with the geometry's dense warp, `dense`
        [B, 2, S*S] its displacements beyond the affine at every output pixel, or `dense_grid` [B, 2, G, G] the same
        at the flow grid's cells (G = `grid`; read bilinearly at the window's pixels: the same values) -> the change of colour
        over the layer's window [B, 3, N] and the flat output pixel index of each of its points [B, 3, N] (for a
        scatter-add into the frame [B, 3, S*S])."""
        s = self.size
        patch = self.draw(z)
        # output pixel p reads the reference at p + rigid @ (p, 1) = (I + L) p + t
        l00, l01, tx = rigid[:, 0, 0:1] + 1.0, rigid[:, 0, 1:2], rigid[:, 0, 2:3]  # each [B, 1]
        l10, l11, ty = rigid[:, 1, 0:1], rigid[:, 1, 1:2] + 1.0, rigid[:, 1, 2:3]
        # where the patch's centre lands in the output: solve (I + L) p = c - t
        rx = self.origin[0] + (self.w - 1) / 2.0 - tx
        ry = self.origin[1] + (self.h - 1) / 2.0 - ty
        det = l00 * l11 - l01 * l10
        ox = (l11 * rx - l01 * ry) / det
        oy = (l00 * ry - l10 * rx) / det
        # the window: whole output pixels around it, kept inside the frame
        x0 = torch.floor(ox - (self.win_w - 1) / 2.0 + 0.5).clamp(0.0, float(s - self.win_w)).detach()
        y0 = torch.floor(oy - (self.win_h - 1) / 2.0 + 0.5).clamp(0.0, float(s - self.win_h)).detach()
        # window pixel (j, i), as (j', i') = (j, i) - the window's centre e, in the patch's normalised coordinates
        # (align_corners=False): an affine map q = M (j', i') + m, M = diag(2/w, 2/h) (I + L),
        # m = diag(2/w, 2/h) ((I + L) ((x0, y0) + e) + t - origin + 1/2) - 1, near 0 (small terms: exact enough
        # in the fp16 export)
        fx, fy = 2.0 / self.w, 2.0 / self.h
        ex, ey = x0 + (self.win_w - 1) / 2.0, y0 + (self.win_h - 1) / 2.0
        mx = (l00 * ex + l01 * ey + tx - self.origin[0] + 0.5) * fx - 1.0
        my = (l10 * ex + l11 * ey + ty - self.origin[1] + 0.5) * fy - 1.0
        q = torch.matmul(torch.cat([l00 * fx, l01 * fx, mx, l10 * fy, l11 * fy, my], 1).reshape(-1, 2, 3),
                         self.win_p1)  # [B, 2, N]
        # in integers: a flat index above 2048 is not exact in the fp16 export
        corner = (y0.to(torch.int64) * s + x0.to(torch.int64)).reshape(-1, 1, 1)
        n = self.win_h * self.win_w
        flat = ((corner + self.win_rows) + self.win_cols).reshape(-1, 1, n)  # [B, 1, N]: the window's pixels
        if dense is not None:  # the patch moves with the face under it: the dense warp's displacement there too
            q = q + torch.gather(dense, 2, torch.cat([flat, flat], 1)) * self.win_scale
        elif dense_grid is not None:  # the same, read from the flow grid (its cell centres at pixel (i + 1/2) r - 1/2)
            # the window's pixels: its centre (ex, ey) plus win_p1's offsets from it (half-integers: exact)
            at = (torch.cat([ex, ey], 1).reshape(-1, 2, 1) + self.win_p1[:2] + 0.5) * (grid / float(s)) - 0.5
            q = q + sample_bilinear(dense_grid, at, (2, grid, grid, n)) * self.win_scale
        grid = q.transpose(1, 2).reshape(-1, self.win_h, self.win_w, 2)  # [B, h', w', 2]
        out = Fn.grid_sample(patch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        out = out.reshape(-1, 3, n)
        index = flat + self.rgb_planes  # [B, 3, N]
        return out, index


# checkpoints from before ColourPatch named the eye layer's parts on the model itself
_OLD_EYE_KEYS = {"eye_mlp.": "eye_patch.mlp.", "eye_up.": "eye_patch.up.", "eye_head.": "eye_patch.head.",
                 "eye_origin": "eye_patch.origin"}


class WarpModel(nn.Module):
    """cond [B, 60] (normalised) -> {'rgb', 'warp', 'flow', 'mask'}; see the module docstring."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        s = cfg.size
        self.size = s
        self.coarse = 8  # the MLP's output map
        self.flow_grid = cfg.warp_grid  # flow resolution before the bilinear up-sampling to S
        k = self.refs = cfg.warp_refs
        # set from data by set_reference(); one reference: [3, S, S], K references: [K, 3, S, S]
        self.register_buffer("reference", torch.full((3, s, s) if k == 1 else (k, 3, s, s), 0.5))
        self.register_buffer("table", stacked_table(self.reference))
        # warp_learned_reference: a learned change of the reference's colours. While training, the warp reads the
        # frame's table plus the change (sample_reference); in eval mode (and so in the exported graph) `table` is
        # the table of reference + change, made again on every switch to eval and every load, a constant of the graph
        self.ref_delta = nn.Parameter(torch.zeros(3, s, s)) if cfg.warp_learned_reference else None
        if self.ref_delta is not None:  # the frame's own table, read while training (sample_reference)
            self.register_buffer("base_table", stacked_table(self.reference), persistent=False)
        if k > 1:
            # each reference's normalised head pose: the affine that maps the output onto reference k is
            # rigid(pose) - W pose_k + shift_k, the identity when the caller's pose is the reference's
            self.register_buffer("ref_pose", torch.zeros(k, POSE_SIZE))
            self.ref_shift = nn.Parameter(torch.zeros(k, 6))
            # row offset of reference k in the stacked table, per sampled point (k-major)
            self.register_buffer("ref_offset", (torch.arange(k, dtype=torch.float32)[:, None] * (s * s))
                                 .expand(k, s * s).reshape(1, -1).clone(), persistent=False)
        yy, xx = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32), indexing="ij")
        self.register_buffer("px", xx.reshape(1, -1), persistent=False)
        self.register_buffer("py", yy.reshape(1, -1), persistent=False)
        self.register_buffer("pxy", torch.stack([xx.reshape(-1), yy.reshape(-1)], 0)[None], persistent=False)  # [1, 2, P]
        self.register_buffer("p1", torch.cat([self.px, self.py, torch.ones_like(self.px)], 0), persistent=False)
        # normalised coordinates u = (p + 0.5) / S * 2 - 1 and a row of ones: the affine is one MatMul per axis
        self.register_buffer("u1", torch.cat([(self.px + 0.5) * (2.0 / s) - 1.0, (self.py + 0.5) * (2.0 / s) - 1.0,
                                              torch.ones_like(self.px)], 0), persistent=False)
        self.aligned = cfg.warp_aligned
        self.coarse_motion = cfg.warp_coarse_motion
        if self.aligned or self.coarse_motion:
            # the centres of the flow grid's cells in output pixels, for carrying the head-aligned maps to the output
            # (sampled at the flow grid's resolution, cheap)
            g = cfg.warp_grid
            c = (torch.arange(g, dtype=torch.float32) + 0.5) * (s / g) - 0.5
            cy, cx = torch.meshgrid(c, c, indexing="ij")
            cx, cy = cx.reshape(1, -1), cy.reshape(1, -1)
            self.register_buffer("grid_p1", torch.cat([cx, cy, torch.ones_like(cx)], 0), persistent=False)
        self.geometry = cfg.warp_geometry
        self.outline = cfg.warp_head_outline and self.geometry
        self.dense = cfg.warp_dense_geometry
        if self.geometry:
            # exact head geometry (train/face_geometry.py), set from data by set_geometry(); the learned affine
            # below is then a correction on top of it
            n = len(RIGID_LANDMARKS)
            self.register_buffer("face_points", torch.zeros(n, 3))
            self.register_buffer("camera", torch.tensor([float(s), s / 2.0, s / 2.0]))
            self.register_buffer("pose_mean", torch.zeros(POSE_SIZE))
            self.register_buffer("pose_std", torch.ones(POSE_SIZE))
            self.register_buffer("ref_u", torch.zeros(k, n))
            self.register_buffer("ref_v", torch.zeros(k, n))
            m = len(OUTLINE_ANGLES_DEG) if self.outline else 0
            if self.outline:  # the head's outline (set_geometry: from the face points) and where the reference shows it
                self.register_buffer("outline_points", torch.zeros(m, 3))
                self.register_buffer("outline_u", torch.zeros(m))
                self.register_buffer("outline_v", torch.zeros(m))
            if self.dense:
                # the dense warp: the constant from what the affine leaves at the face points (and the outline's)
                # to the thin-plate spline's table over the reference (set_geometry), and the output cells it is
                # found at
                self.register_buffer("dense_table", torch.zeros(DENSE_TABLE * DENSE_TABLE, n + m))
                c = (torch.arange(DENSE_CELLS, dtype=torch.float32) + 0.5) * (s / DENSE_CELLS) - 0.5
                cy, cx = torch.meshgrid(c, c, indexing="ij")
                cx, cy = cx.reshape(1, -1), cy.reshape(1, -1)
                self.register_buffer("dense_p1", torch.cat([cx, cy, torch.ones_like(cx)], 0), persistent=False)
            # until set_geometry() (training) or a checkpoint sets them: a generic face 30 cm in front of a camera
            # with a 64° field of view, references at the mean pose, so that an untrained model is well defined
            g = torch.Generator().manual_seed(0)
            self.set_geometry(torch.rand(n, 3, generator=g) * torch.tensor([12.0, 14.0, 4.0]) - torch.tensor([6.0, 7.0, 2.0]),
                              torch.tensor([s * 0.8, s / 2.0, s / 2.0]), torch.tensor([0.0, 0, 0, 0, 0, -30]),
                              torch.tensor([0.2, 0.2, 0.2, 2.0, 2.0, 2.0]), torch.tensor([[0.0, 0, 0, 0, 0, -30]] * k))
        if self.geometry:  # geometry_motion: landmark coordinates' affine -> displacements of pixel indices
            self.register_buffer("to_index", torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]],
                                                          dtype=torch.float64), persistent=False)
            self.register_buffer("to_index_shift", torch.tensor([[-1.0, 0.0, -0.5], [0.0, -1.0, -0.5]],
                                                                dtype=torch.float64), persistent=False)
        # rigid_pixels: the learned affine `a` (acting on u = (p + 1/2) 2/S - 1) -> displacements in pixels, flat
        # [a0 k, a1 k, a4 + (a0 + a1) c, a2 k, a3 k, a5 + (a2 + a3) c] with k = 2/S, c = 1/S - 1: one product
        kk, cc = 2.0 / s, 1.0 / s - 1.0
        to_pixels = torch.zeros(6, 6)
        for row, col, val in ((0, 0, kk), (1, 1, kk), (4, 2, 1.0), (0, 2, cc), (1, 2, cc),
                              (2, 3, kk), (3, 4, kk), (5, 5, 1.0), (2, 5, cc), (3, 5, cc)):
            to_pixels[row, col] = val
        self.register_buffer("to_pixels", to_pixels, persistent=False)
        # rigid part: pose (6, normalised) -> affine delta (6) in normalised image coordinates [-1, 1]
        self.rigid = nn.Linear(POSE_SIZE, 6)
        nn.init.zeros_(self.rigid.weight)
        nn.init.zeros_(self.rigid.bias)
        # with the geometry and without warp_learned_rotation, the correction keeps only its diagonal (scale) and shift
        self.rigid_free = not (self.geometry and not cfg.warp_learned_rotation)
        if not self.rigid_free:
            self.register_buffer("rigid_keep", torch.tensor([[1.0, 0.0, 0.0, 1.0, 1.0, 1.0]]), persistent=False)
        # non-rigid part: expression, gaze and pitch/yaw -> coarse map -> CNN up to the flow grid
        d_in = 52 + GAZE_SIZE + 2
        w = cfg.mlp_width
        layers = []
        for i in range(cfg.mlp_layers):
            layers += [nn.Linear(d_in if i == 0 else w, w), nn.ReLU()]
        self.mlp = nn.Sequential(*layers)
        c0 = cfg.warp_channels[0]
        self.to_map = nn.Linear(w, c0 * self.coarse * self.coarse)
        self.up = nn.ModuleList()
        c_in = c0
        r = self.coarse
        chans = list(cfg.warp_channels[1:])
        while r < self.flow_grid:
            c_out = chans.pop(0) if chans else c_in
            self.up.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            c_in = c_out
            r *= 2
        nf = cfg.n_f
        # flow x, flow y, rigidity logit, nf features; with K references also the flows of references 1..K-1
        # and K blend logits
        self.head = nn.Conv2d(c_in, 3 + nf + (3 * k - 2 if k > 1 else 0), 3, padding=1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        if k > 1:
            with torch.no_grad():  # start on reference 0 (the neutral one), as a single-reference model does
                self.head.bias[3 + nf + 2 * (k - 1)] = 3.0
        self.rigid_map = nn.Parameter(torch.zeros(1, 1, self.flow_grid, self.flow_grid))  # static rigidity logit
        self.background_gate = cfg.warp_background_gate
        if self.background_gate:  # the expression flow's gate (logit), open until the trainer starts it from the clip
            self.flow_gate = nn.Parameter(torch.full((1, 1, self.flow_grid, self.flow_grid), 4.0))
            self.register_buffer("gate_ones", torch.ones(1, 1 + nf + (3 * k - 2 if k > 1 else 0), self.flow_grid,
                                                         self.flow_grid), persistent=False)
        self.body_motion = cfg.warp_body_motion
        if self.body_motion:
            # the body's own motion (finish_coarse): the whole normalised pose -> a second affine (as `rigid`, in
            # normalised coordinates; zero: no motion until trained), weighted at each flow-grid cell by a static
            # map (logit; the trainer starts it on what moves in the clip outside the face, init_body_map)
            self.body = nn.Linear(POSE_SIZE, 6)
            nn.init.zeros_(self.body.weight)
            nn.init.zeros_(self.body.bias)
            self.body_map = nn.Parameter(torch.full((1, 1, self.flow_grid, self.flow_grid), -3.0))
        # refinement at S/2: warped image (3) + features (nf) -> synthesised RGB (3) + blend logit (1)
        rc = cfg.refine_channels
        self.refine = nn.ModuleList([nn.Conv2d(3 + nf, rc, 3, padding=1)] +
                                    [nn.Conv2d(rc, rc, 3, padding=1) for _ in range(cfg.refine_layers - 1)])
        self.refine_out = nn.Conv2d(rc, 4, 3, padding=1)
        with torch.no_grad():
            self.refine_out.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 3.0]))  # start: the warp everywhere
        self.eyes, self.mouth = cfg.warp_eyes, cfg.warp_mouth
        self.init_colour_layers()

    def init_colour_layers(self) -> None:
        s = self.size
        self.eye_patch: Optional[ColourPatch] = None
        self.mouth_patch: Optional[ColourPatch] = None
        if self.eyes:
            h = 3 * s // 16
            self.eye_patch = ColourPatch(s, h, s // 2, EYE_COARSE, EYE_CHANNELS,
                                         [POSE_SIZE + GAZE_SIZE + i for i in EYE_BLENDSHAPES] + [POSE_SIZE, POSE_SIZE + 1, 0, 1],
                                         (s // 4, round(s * 0.38 - h / 2.0)))
        if self.mouth:
            h, w = s // 4, 3 * s // 8
            self.mouth_patch = ColourPatch(s, h, w, MOUTH_COARSE, MOUTH_CHANNELS,
                                           [POSE_SIZE + GAZE_SIZE + i for i in MOUTH_BLENDSHAPES] + [0, 1],
                                           ((s - w) // 2, round(s * 0.72 - h / 2.0)))
        self._register_load_state_dict_pre_hook(self._rename_old_eye_keys)

    @staticmethod
    def _rename_old_eye_keys(state_dict, prefix, *_args) -> None:
        for key in [k for k in state_dict if k.startswith(prefix)]:
            rest = key[len(prefix):]
            for old, new in _OLD_EYE_KEYS.items():
                if rest.startswith(old):
                    state_dict[prefix + new + rest[len(old):]] = state_dict.pop(key)
                    break

    # -- the reference frame ---------------------------------------------------------------------------------
    @torch.no_grad()
    def set_reference(self, ref: torch.Tensor, pose: Optional[torch.Tensor] = None) -> None:
        """ref: float [3, S, S] (one reference) or [K, 3, S, S] in [0, 1]; pose: [K, 6] normalised head poses of
        the K references (K > 1)."""
        if ref.shape != self.reference.shape:
            raise ValueError(f"reference must be {list(self.reference.shape)}, got {list(ref.shape)}")
        self.reference.copy_(ref)
        self.sync_table()
        if self.refs > 1:
            self.ref_pose.copy_(pose if pose is not None else torch.zeros_like(self.ref_pose))

    def seen_reference(self) -> torch.Tensor:
        """The reference the warp reads: the frame, plus the learned change with warp_learned_reference."""
        return self.reference if self.ref_delta is None else self.reference + self.ref_delta

    @torch.no_grad()
    def sync_table(self) -> None:
        """Makes `table` the neighbour table of seen_reference() (what eval mode and the export read)."""
        self.table.copy_(stacked_table(self.seen_reference()))
        if self.ref_delta is not None:
            self.base_table.copy_(stacked_table(self.reference))

    def sample_reference(self, sxy: torch.Tensor) -> torch.Tensor:
        """The reference read bilinearly at sxy [B, 2, S*S] (pixels) -> [B, 3, S, S]. In eval mode (and the export)
        from `table`, which holds the learned change too. While training with warp_learned_reference, the frame's
        own table plus the change read by GridSample (the same bilinear, border-clamped read; its gradient reaches
        ref_delta far faster than a Gather's on the CPU: 2.2 against 1.1 it/s with the table made at every step)."""
        s = self.size
        if self.ref_delta is None or not self.training:
            return bilinear_gather_xy(self.table, sxy, s)
        warp = bilinear_gather_xy(self.base_table, sxy, s)
        grid = (sxy.clamp(0.0, float(s - 1)) * (2.0 / (s - 1)) - 1.0).reshape(-1, 2, s, s).permute(0, 2, 3, 1)
        delta = self.ref_delta[None].expand(grid.shape[0], -1, -1, -1)
        return warp + Fn.grid_sample(delta, grid, mode="bilinear", padding_mode="border", align_corners=True)

    def train(self, mode: bool = True) -> "WarpModel":
        if not mode and self.ref_delta is not None:
            self.sync_table()
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True):  # type: ignore[no-untyped-def, override]
        result = super().load_state_dict(state_dict, strict)
        if self.ref_delta is not None:
            self.sync_table()
        return result

    @torch.no_grad()
    def set_geometry(self, points: torch.Tensor, camera: torch.Tensor, pose_mean: torch.Tensor,
                     pose_std: torch.Tensor, ref_poses: torch.Tensor) -> None:
        """The fitted rigid face points [n, 3], camera [3] (focal, cx, cy), the conditioning's pose normalisation
        [6] + [6], and the raw poses of the K references [K, 6]."""
        self.face_points.copy_(points)
        self.camera.copy_(camera)
        self.pose_mean.copy_(pose_mean)
        self.pose_std.copy_(pose_std)
        u, v = project(ref_poses.to(points.dtype), points, camera)
        self.ref_u.copy_(u)
        self.ref_v.copy_(v)
        u0, v0 = u[0].double(), v[0].double()
        if self.outline:
            outline = head_outline_points(points.double())
            ou, ov = project(ref_poses[:1].double(), outline, camera.double())
            self.outline_points.copy_(outline)
            self.outline_u.copy_(ou[0])
            self.outline_v.copy_(ov[0])
            # (from the stored float32 values: a re-export reads them back from the graph and builds the same table)
            u0, v0 = torch.cat([u0, self.outline_u.double()]), torch.cat([v0, self.outline_v.double()])
        if self.dense:
            self.dense_table.copy_(dense_table(u0, v0, self.size))

    def geometric_affine(self, pose: torch.Tensor) -> torch.Tensor:
        """pose [B, 6] normalised -> the rigid head's motion into each reference as the coefficients [K, B, 2, 3]
        of displacements in pixels: (dx, dy) = coef @ (x, y, 1) for an output pixel (x, y)."""
        return self.geometry_motion(pose)[0]

    def geometry_motion(self, pose: torch.Tensor) -> "tuple[torch.Tensor, Optional[torch.Tensor]]":
        """geometric_affine's coefficients [K, B, 2, 3] and, with the dense warp, the table over the reference
        [B, 2, T, T] (pixels) of the thin-plate spline through what the affine leaves at the face points: the
        reference's point minus where the affine puts the caller's."""
        # in float64 up to the per-pixel step: the projection and the solve are tiny, and float32 there costs the
        # exported graph its parity with PyTorch (different op implementations, amplified by the solve)
        d = torch.float64
        raw = pose.to(d) * self.pose_std.to(d) + self.pose_mean.to(d)
        u, v = project(raw, self.face_points.to(d), self.camera.to(d))
        ref_u, ref_v = self.ref_u.to(d), self.ref_v.to(d)
        a = affine_to(u, v, ref_u, ref_v)  # [K, B, 2, 3], landmark coordinates (+0.5)
        spline = None
        if self.dense:
            a0 = a[0]  # [B, 2, 3]
            at_u, at_v, to_u, to_v = u, v, ref_u[0], ref_v[0]
            if self.outline:  # the head's outline: where the caller's pose puts it, and where the reference has it
                ou, ov = project(raw, self.outline_points.to(d), self.camera.to(d))
                at_u, at_v = torch.cat([u, ou], 1), torch.cat([v, ov], 1)
                to_u, to_v = torch.cat([to_u, self.outline_u.to(d)]), torch.cat([to_v, self.outline_v.to(d)])
            rx = to_u - (a0[:, 0, 0:1] * at_u + a0[:, 0, 1:2] * at_v + a0[:, 0, 2:3])  # [B, n (+ m)] pixels
            ry = to_v - (a0[:, 1, 0:1] * at_u + a0[:, 1, 1:2] * at_v + a0[:, 1, 2:3])
            # (dense_table takes pixels: no scalar constant here, which re-export would confuse with the focal length)
            values = torch.matmul(self.dense_table.to(d), torch.stack([rx, ry], 2)).to(torch.float32)  # [B, T*T, 2]
            spline = values.transpose(1, 2).reshape(-1, 2, DENSE_TABLE, DENSE_TABLE)
        # as displacements of the pixel indices x, y: gx = (a00 - 1) x + a01 y + (a02 + (a00 + a01) / 2 - 1/2), so
        # that no large coordinate is subtracted from another in float32 (one product and a sum with constants)
        return (torch.matmul(a, self.to_index.to(d)) + self.to_index_shift.to(d)).to(torch.float32), spline  # [K, B, 2, 3]

    @staticmethod
    def displacements(coef: torch.Tensor, p1: torch.Tensor) -> "tuple[torch.Tensor, torch.Tensor]":
        """coef [K, B, 2, 3] (geometric_affine) at the points p1 [3, P] (x, y, 1) -> dx, dy [K, B, P] (pixels)."""
        g = torch.matmul(coef, p1)  # [K, B, 2, P]
        return g[:, :, 0], g[:, :, 1]

    # -- forward ---------------------------------------------------------------------------------------------
    def forward(self, cond: torch.Tensor, frame_idx: Optional[torch.Tensor] = None,
                latent: Optional[torch.Tensor] = None, want_low: bool = True) -> Dict[str, torch.Tensor]:
        cfg = self.cfg
        s = self.size
        z = torch.clamp(cond, -cfg.cond_clip, cfg.cond_clip)
        pose = z[:, :POSE_SIZE]
        # the non-rigid branch sees only bounded inputs: it cannot extrapolate wildly on unseen poses
        expr_in = torch.cat([z[:, POSE_SIZE + GAZE_SIZE:], z[:, POSE_SIZE:POSE_SIZE + GAZE_SIZE].clamp(-3, 3),
                             pose[:, :2].clamp(-2.5, 2.5)], 1)
        h = self.mlp(expr_in)
        x = self.to_map(h).reshape(-1, cfg.warp_channels[0], self.coarse, self.coarse)
        for conv in self.up:
            x = torch.relu(conv(Fn.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)))
        head = self.head(x)  # [B, 3 + nf (+ 3K - 2), G, G]
        k, nf = self.refs, cfg.n_f
        a = self.rigid(pose) * (cfg.rigid_scale * s / 2.0)  # [B, 6]: a11-1, a12, a21, a22-1, tx, ty (x S/2: pixels)
        if not self.rigid_free:
            a = a * self.rigid_keep
        coef, spline = self.geometry_motion(pose) if self.geometry else (None, None)  # solved once, used at both resolutions
        # one reference (the colour layers need one): the rigid head motion as pixel displacements [B, 2, 3]
        rigid = self.rigid_pixels(a, coef) if k == 1 else None
        dense = None
        if spline is not None:  # the geometry's non-affine motion at the flow grid's cells [B, 2, G, G] (pixels)
            assert rigid is not None
            dense = self.dense_motion(rigid, spline)
        grid_motion = None  # the rigid head motion at the flow grid's cells [B, 2, G*G] (pixels), dense warp included
        if self.aligned or self.coarse_motion:
            assert rigid is not None
            grid_motion = self.grid_motion(rigid, dense)
        if self.aligned:
            assert grid_motion is not None
            head = self.align(head, grid_motion)
        if self.background_gate:  # one product with a map the runtime folds: [gate, gate, 1, 1, ...]
            g = torch.sigmoid(self.flow_gate)
            head = head * torch.cat([g, g, self.gate_ones], 1)
        feats = head[:, 3:3 + nf]
        if self.coarse_motion:
            assert rigid is not None and grid_motion is not None
            return self.finish_coarse(z, head, rigid, grid_motion, dense, want_low)
        motion = up(head[:, :3] if dense is None else torch.cat([head[:, :3], dense], 1), self.flow_grid, s)
        flow = motion[:, :2] * (cfg.flow_scale * s)  # pixels
        rig_logit = motion[:, 2:3] + up(self.rigid_map, self.flow_grid, s)
        rig = torch.sigmoid(rig_logit).reshape(-1, s * s)
        dense_px = None if dense is None else motion[:, 3:5].reshape(-1, 2, s * s)  # [B, 2, P] pixels
        # rigid affine in normalised coordinates u = (p + 0.5) / S * 2 - 1: `a` above
        weights = None
        if k == 1:
            assert rigid is not None
            # the rigid displacement of every pixel, x and y in one product: [B, 2, 3] @ [3, P]
            head_motion = torch.matmul(rigid, self.p1)  # [B, 2, P]
            if dense_px is not None:
                head_motion = head_motion + dense_px
            sxy = self.pxy + rig[:, None] * head_motion + flow.reshape(-1, 2, s * s)  # [B, 2, P]
            warp = self.sample_reference(sxy)
            sx, sy = sxy[:, 0], sxy[:, 1]
        else:
            if coef is not None:
                gx, gy = self.displacements(coef, self.p1)
            # reference k: affine rigid(pose) - W pose_k + shift_k; layout [K, B, P] (broadcasts on leading axes)
            off = (self.ref_shift - torch.matmul(self.ref_pose, self.rigid.weight.t())) * (cfg.rigid_scale * s / 2.0)
            ak = a[None] + off[:, None]  # [K, B, 6]
            dx = torch.matmul(torch.cat([ak[..., 0:2], ak[..., 4:5]], 2), self.u1)  # [K, B, P]
            dy = torch.matmul(torch.cat([ak[..., 2:4], ak[..., 5:6]], 2), self.u1)
            if self.geometry:
                dx, dy = dx + gx, dy + gy
            extra = head[:, 3 + nf:]
            more = up(extra[:, :2 * (k - 1)], self.flow_grid, s)
            flows = torch.cat([flow, more * (cfg.flow_scale * s)], 1)  # [B, 2K, S, S]
            fk = flows.reshape(-1, k, 2, s * s).permute(2, 1, 0, 3)  # [2, K, B, P]
            sx = (self.px + rig * dx + fk[0]).transpose(0, 1).reshape(-1, k * s * s)  # [B, K*P], k-major
            sy = (self.py + rig * dy + fk[1]).transpose(0, 1).reshape(-1, k * s * s)
            wk = up(torch.softmax(extra[:, 2 * (k - 1):], 1), self.flow_grid, s)  # [B, K, S, S], convex
            weights = wk.reshape(-1, k * s * s)
            warp = blend_gather(self.table, sx, sy, s, k, weights, self.ref_offset)
            flow = flows
        # refinement at half resolution
        half = s // 2
        r = self.refine_hidden(warp, up(feats, self.flow_grid, half))
        r = torch.sigmoid(up(self.refine_out(r), half, s))
        synth, mask = r[:, :3], r[:, 3:4]
        rgb = synth + mask * (warp - synth)  # = mask warp + (1 - mask) synth, in three ops
        if self.eye_patch is not None or self.mouth_patch is not None or self.ref_delta is not None:
            assert rigid is not None
            rgb = self.add_colour_layers(rgb, z, rigid, dense=dense_px)
        out = {"rgb": rgb}
        if want_low:  # what the training losses need
            out.update(warp=warp, flow=flow, mask=mask, sx=sx, sy=sy)
            if weights is not None:
                out["weights"] = weights
        return out

    def finish_coarse(self, z: torch.Tensor, head: torch.Tensor, rigid: torch.Tensor, grid_motion: torch.Tensor,
                      dense: Optional[torch.Tensor], want_low: bool) -> Dict[str, torch.Tensor]:
        """The rest of forward() with `warp_coarse_motion` (one reference): the displacement
        r (rigid motion + dense warp) + flow is composed at the flow grid's cells and up-sampled once (two channels
        instead of five up-sampled and composed at every output pixel); the refinement's sigmoid comes before its
        up-sampling. `head` [B, 3 + nf, G, G] the (aligned, gated) CNN maps; `grid_motion` [B, 2, G*G] from
        grid_motion(); `dense` [B, 2, G, G] the dense warp alone (for the colour layers) or None."""
        cfg, s, g, nf = self.cfg, self.size, self.flow_grid, self.cfg.n_f
        rig = torch.sigmoid(head[:, 2:3] + self.rigid_map).reshape(-1, 1, g * g)
        flow_g = head[:, :2] * (cfg.flow_scale * s)  # pixels
        disp = rig * grid_motion + flow_g.reshape(-1, 2, g * g)  # [B, 2, G*G]
        if self.body_motion:  # the body's affine at the grid's cells, weighted by its map
            body = torch.matmul(self.body(z[:, :POSE_SIZE]) * (cfg.rigid_scale * s / 2.0), self.to_pixels)
            body = torch.matmul(body.reshape(-1, 2, 3), self.grid_p1)  # [B, 2, G*G] pixels
            disp = disp + torch.sigmoid(self.body_map).reshape(1, 1, g * g) * body
        sxy = self.pxy + up(disp.reshape(-1, 2, g, g), g, s).reshape(-1, 2, s * s)
        warp = self.sample_reference(sxy)
        half = s // 2
        r = self.refine_hidden(warp, up(head[:, 3:3 + nf], g, half))
        r = up(torch.sigmoid(self.refine_out(r)), half, s)
        synth, mask = r[:, :3], r[:, 3:4]
        rgb = synth + mask * (warp - synth)
        rgb = self.add_colour_layers(rgb, z, rigid, dense_grid=dense)
        out = {"rgb": rgb}
        if want_low:  # what the training losses need: the flow at full resolution for its smoothness term
            out.update(warp=warp, flow=up(flow_g, g, s), mask=mask, sx=sxy[:, 0], sy=sxy[:, 1])
        return out

    def add_colour_layers(self, rgb: torch.Tensor, z: torch.Tensor, rigid: torch.Tensor,
                          dense: Optional[torch.Tensor] = None, dense_grid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """rgb [B, 3, S, S] with the eye and mouth layers' changes of colour added, clamped to [0, 1] (without
        layers: unchanged, or only clamped with a learned reference, whose colours may leave [0, 1]); `dense` /
        `dense_grid` as for ColourPatch.forward."""
        layers = [layer for layer in (self.eye_patch, self.mouth_patch) if layer is not None]
        if not layers:
            return rgb if self.ref_delta is None else rgb.clamp(0.0, 1.0)
        s = self.size
        drawn = [layer(z, rigid, dense, dense_grid, self.flow_grid) for layer in layers]
        # one scatter-add for both layers (each scatter copies the whole frame first); where their windows overlap,
        # the changes add up
        change = torch.cat([d[0] for d in drawn], 2) if len(drawn) > 1 else drawn[0][0]
        index = torch.cat([d[1] for d in drawn], 2) if len(drawn) > 1 else drawn[0][1]
        return rgb.reshape(-1, 3, s * s).scatter_add(2, index, change).reshape(-1, 3, s, s).clamp(0.0, 1.0)

    def refine_hidden(self, warp: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        """The refinement's hidden maps at half resolution from the warped image `warp` [B, 3, S, S] and the motion
        features `feats` [B, nf, S/2, S/2]: its first convolution of their concatenation, computed as the sum of
        two convolutions (the same weights split by input channel; the same function), so that onnxruntime can run
        the one on the features in its blocked-channel layout (a convolution of 3 + nf channels cannot be), then
        the others."""
        first = self.refine[0]
        w, b = first.weight, first.bias
        r = Fn.conv2d(Fn.avg_pool2d(warp, 2), w[:, :3], None, padding=1) + Fn.conv2d(feats, w[:, 3:], b, padding=1)
        r = torch.relu(r)
        for conv in self.refine[1:]:
            r = torch.relu(conv(r))
        return r

    def grid_motion(self, rigid: torch.Tensor, dense: Optional[torch.Tensor]) -> torch.Tensor:
        """The rigid head motion (`rigid` [B, 2, 3] from rigid_pixels, plus the dense warp `dense` [B, 2, G, G] from
        dense_motion) as displacements in pixels of a fully rigid pixel at each flow-grid cell: [B, 2, G*G]."""
        g = self.flow_grid
        d = torch.matmul(rigid, self.grid_p1)  # [B, 2, G*G] pixels
        return d if dense is None else d + dense.reshape(-1, 2, g * g)

    def rigid_pixels(self, a: torch.Tensor, coef: Optional[torch.Tensor]) -> torch.Tensor:
        """The rigid head motion into reference 0 (the learned affine `a` [B, 6] plus, with the geometry, `coef`
        from geometric_affine) as displacements in pixels of the output pixel (x, y): [B, 2, 3] with
        (dx, dy) = it @ (x, y, 1), the displacement the warp gives a fully rigid pixel there."""
        d = torch.matmul(a, self.to_pixels).reshape(-1, 2, 3)  # a acts on u = (p + 1/2) 2/S - 1
        return d if coef is None else d + coef[0]

    def dense_motion(self, rigid: torch.Tensor, spline: torch.Tensor) -> torch.Tensor:
        """The geometry's motion beyond its affine at the flow grid's cells: [B, 2, G, G] pixels, for the rigid head
        motion `rigid` [B, 2, 3] (rigid_pixels). The spline's table (geometry_motion) gives, at a point of the
        reference, how far the affine misses it; the point that an output cell shows is where the affine puts the
        cell plus that, a fixed point found by DENSE_ITERATIONS steps from the affine's at DENSE_CELLS^2 cells
        (bilinear reads of the table), then up-sampled."""
        s, t = self.size, DENSE_TABLE
        # where the affine puts each cell in the reference, in the table's coordinates: node k at pixel k S/(T-1) - 1/2
        f = (t - 1) / float(s)
        q0 = (self.dense_p1[:2] + torch.matmul(rigid, self.dense_p1) + 0.5) * f  # [B, 2, P]
        table = corner_table(spline, (2, t, t))
        rows = batch_rows(q0, (t - 1) * (t - 1))
        dims = (2, DENSE_CELLS * DENSE_CELLS)
        e = sample_table(table, t, t, q0, rows, dims)  # [B, 2, P] pixels
        for _ in range(DENSE_ITERATIONS - 1):
            e = sample_table(table, t, t, q0 + e * f, rows, dims)
        e = e.reshape(-1, 2, DENSE_CELLS, DENSE_CELLS)
        g = self.flow_grid
        return e if g == DENSE_CELLS else up(e, DENSE_CELLS, g)

    def align(self, maps: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """maps [B, C, G, G] (C: the flow CNN's outputs) laid out in the reference's frame -> the same maps in the
        output frame: each flow-grid cell reads the maps where the rigid head motion (`d` [B, 2, G*G] from
        grid_motion: the displacement of a fully rigid pixel there) puts it in the reference."""
        s, g = self.size, self.flow_grid
        # output pixel p + d of the reference, as a coordinate of the maps (cell centres at 0 .. G-1)
        q = (self.grid_p1[:2] + d + 0.5) * (g / s) - 0.5
        c = self.head.out_channels
        return sample_bilinear(maps, q, (c, g, g, g * g)).reshape(-1, c, g, g)

    def mean_latent(self) -> Optional[torch.Tensor]:
        return None


class WarpExport(nn.Module):
    """Inference graph of variant W: cond [B, 60] -> rgb [B, 3, S, S]."""

    def __init__(self, model: WarpModel):
        super().__init__()
        self.model = model

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.model(cond, want_low=False)["rgb"]


@torch.no_grad()
def untrained_warp_init(model: WarpModel, seed: int) -> None:
    """An untrained variant-W avatar for transport tests: a smooth coloured reference with a few soft discs (not a
    face), and random motion weights so that the conditioning visibly moves the picture."""
    g = torch.Generator().manual_seed(seed)
    s = model.size
    t = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    yy, xx = torch.meshgrid(t, t, indexing="ij")
    ref = torch.stack([0.3 + 0.4 * xx, 0.35 + 0.3 * yy, 0.6 - 0.3 * xx * yy])
    for _ in range(6):
        cx, cy, r = (torch.rand(3, generator=g) * torch.tensor([0.8, 0.8, 0.12]) + torch.tensor([0.1, 0.1, 0.05])).tolist()
        disc = torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        ref = ref * (1 - disc) + torch.rand(3, 1, 1, generator=g) * disc
    model.set_reference(ref.clamp(0, 1))
    model.rigid.weight.copy_(torch.randn(model.rigid.weight.shape, generator=g) * 0.3)
    model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=g) * 0.02)


def _patch_macs(s: int, h: int, w: int, n_in: int, coarse, channels) -> int:
    """Multiply-accumulates of a ColourPatch: its MLP, up-sampling convs, head, the grid sample and the sum."""
    m = n_in * 64 + 64 * 64 + 64 * channels[0] * coarse[0] * coarse[1]
    r, c_in, chans = coarse[1], channels[0], list(channels)
    while r < w:
        c_out = chans.pop(0) if chans else c_in
        r *= 2
        m += (h * r // w) * r * 9 * c_in * c_out
        c_in = c_out
    return m + h * w * 9 * c_in * 3 + s * s * 3 * 4


def warp_flops(cfg: ModelConfig) -> Dict[str, int]:
    """2 x multiply-accumulates of the linear layers and convolutions, plus the 12-value bilinear blend."""
    s = cfg.size
    w = cfg.mlp_width
    d_in = 52 + GAZE_SIZE + 2
    macs = {"mlp": d_in * w + (cfg.mlp_layers - 1) * w * w, "to_map": w * cfg.warp_channels[0] * 64, "flow_cnn": 0,
            "refine": 0, "warp": s * s * 12 * cfg.warp_refs}
    r, c_in = 8, cfg.warp_channels[0]
    chans = list(cfg.warp_channels[1:])
    while r < cfg.warp_grid:
        c_out = chans.pop(0) if chans else c_in
        r *= 2
        macs["flow_cnn"] += r * r * 9 * c_in * c_out
        c_in = c_out
    k = cfg.warp_refs
    macs["flow_cnn"] += r * r * 9 * c_in * (3 + cfg.n_f + (3 * k - 2 if k > 1 else 0))
    h = s // 2
    rc = cfg.refine_channels
    macs["refine"] = h * h * 9 * ((3 + cfg.n_f) * rc + (cfg.refine_layers - 1) * rc * rc + rc * 4)
    if cfg.warp_eyes:
        macs["eyes"] = _patch_macs(s, 3 * s // 16, s // 2, len(EYE_BLENDSHAPES) + GAZE_SIZE + 2, EYE_COARSE, EYE_CHANNELS)
    if cfg.warp_mouth:
        macs["mouth"] = _patch_macs(s, s // 4, 3 * s // 8, len(MOUTH_BLENDSHAPES) + 2, MOUTH_COARSE, MOUTH_CHANNELS)
    flops = {k: 2 * v for k, v in macs.items()}
    flops["total"] = sum(flops.values())
    return flops
