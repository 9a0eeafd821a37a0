"""Variant W (train/model_warp.py): the bilinear gather, a training step, export parity, and that the mouth of a
trained model follows jawOpen on held-out vectors."""
import numpy as np
import pytest
import torch
import torch.nn.functional as Fn

from train.build import build_model
from train.config import ModelConfig, preset_configs
from train.dataset import Dataset
from train.export import export_avatar, untrained_conditioning
from train.model_warp import (WarpExport, WarpModel, bilinear_gather, bilinear_gather_xy, neighbour_table, sample_bilinear,
                              warp_flops)
from train.onnx_check import run_onnx
from train.synth import JAW_OPEN, write_synthetic_dataset
from train.trainer import Trainer

from .conftest import tiny_train_config


def tiny_warp_config(size: int = 32) -> ModelConfig:
    return ModelConfig(size=size, variant="W", mlp_layers=2, mlp_width=32, n_f=4, warp_grid=16,
                       warp_channels=[16, 8], refine_channels=8, refine_layers=2).validate()


def export_jittered(m: WarpModel, out, name: str, seed: int) -> dict:
    """Exports `m` with every weight moved a little (non-zero motion everywhere, so that the parity check exercises
    the warp) and returns the manifest."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    c = untrained_conditioning()
    return export_avatar(m, None, out, name, 25, c["mean"], c["std"], c["neutral"], {"provenance": "test"})


def test_bilinear_gather_matches_grid_sample():
    g = torch.Generator().manual_seed(0)
    ref = torch.rand(3, 16, 16, generator=g)
    sx = torch.rand(2, 256, generator=g) * 15
    sy = torch.rand(2, 256, generator=g) * 15
    ours = bilinear_gather(neighbour_table(ref), sx, sy, 16)
    grid = torch.stack([sx / 15 * 2 - 1, sy / 15 * 2 - 1], -1).reshape(2, 16, 16, 2)
    theirs = Fn.grid_sample(ref[None].expand(2, -1, -1, -1), grid, mode="bilinear", align_corners=True)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_stacked_coordinates_gather_the_same_as_separate_ones():
    g = torch.Generator().manual_seed(1)
    table = neighbour_table(torch.rand(3, 16, 16, generator=g))
    sxy = torch.rand(2, 2, 256, generator=g) * 20 - 2  # some beyond the border (clamped)
    assert torch.equal(bilinear_gather_xy(table, sxy, 16), bilinear_gather(table, sxy[:, 0], sxy[:, 1], 16))


def test_sample_bilinear_matches_grid_sample_with_border_padding():
    """The head-aligned maps' sampler (a gather from a table of cell corners, one per batch item) against PyTorch's
    grid_sample (align_corners=False, border padding), points inside, on the edge and far outside the map."""
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(2, 5, 12, 9, generator=g)  # two batch items, different maps; not square
    ix = torch.rand(2, 300, generator=g) * 14 - 2.5
    iy = torch.rand(2, 300, generator=g) * 18 - 3
    ix[:, :4] = torch.tensor([0.0, 8.0, -40.0, 8.0])
    iy[:, :4] = torch.tensor([0.0, 11.0, 5.0, 60.0])
    ours = sample_bilinear(maps, torch.stack([ix, iy], 1))  # [B, C, P]
    grid = torch.stack([(ix + 0.5) / 9 * 2 - 1, (iy + 0.5) / 12 * 2 - 1], -1)[:, None]  # [B, 1, P, 2]
    theirs = Fn.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=False)[:, :, 0]
    assert ours.shape == (2, 5, 300) and torch.allclose(ours, theirs, atol=1e-5)


def test_identity_at_start_reproduces_the_reference():
    m = WarpModel(tiny_warp_config()).eval()
    ref = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    m.set_reference(ref)
    with torch.no_grad():
        out = m(torch.randn(2, 60))
    # zero-initialised flow and affine: the warp is the reference itself
    assert torch.allclose(out["warp"], ref[None].expand(2, -1, -1, -1), atol=1e-3)


def test_warp_preset_is_variant_w():
    m, t = preset_configs("warp", 256)
    assert m.variant == "W" and m.switches().warp
    assert isinstance(build_model(m), WarpModel)
    assert preset_configs("warp", 256, "F")[0].variant == "F"  # an explicit variant wins


def test_variant_w_trains_a_step_and_uses_a_real_reference(synth_dataset, tmp_path):
    ds = Dataset(synth_dataset)
    tr = Trainer(ds, tiny_warp_config(), tiny_train_config(iterations=3), torch.device("cpu"), "tiny", "t", 25,
                 tmp_path, progress=False)
    assert tr.reference_index in set(ds.train_idx.tolist())
    ref = torch.from_numpy(ds.read_frames([tr.reference_index], 32)[0]).float() / 255
    assert torch.allclose(tr.model.reference, ref)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    for _ in range(3):  # the motion head starts at zero, so the MLP gets gradients from the second step on
        terms = tr.step()
    assert np.isfinite(terms["loss"]) and terms["rec"] > 0
    changed = [k for k, v in tr.model.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("mlp.") for k in changed) and any(k.startswith("refine") for k in changed)


def test_variant_w_export_parity(tmp_path):
    torch.manual_seed(3)
    m = WarpModel(tiny_warp_config()).eval()
    m.set_reference(torch.rand(3, 32, 32))
    man = export_jittered(m, tmp_path, "w", 3)
    assert man["training"]["parityMaxAbsDiff"] < 1e-4
    assert man["training"]["model"]["variant"] == "W"
    x = np.random.default_rng(0).normal(size=(4, 60)).astype(np.float32)
    y, _ = run_onnx(tmp_path / "avatar.onnx", "cond", x)
    with torch.no_grad():
        ref = WarpExport(m)(torch.from_numpy(x)).numpy()
    assert y.shape == (4, 3, 32, 32) and np.abs(y - ref).max() < 1e-4


def test_mouth_follows_jaw_open_on_held_out_vectors(tmp_path):
    root = write_synthetic_dataset(tmp_path / "face", n=120, size=64, n_test=20, seed=2, kind="face")
    ds = Dataset(root)
    cfg = ModelConfig(size=64, variant="W", mlp_layers=2, mlp_width=64, n_f=4, warp_grid=16, warp_channels=[32, 16],
                      refine_channels=8, refine_layers=2).validate()
    tr = Trainer(ds, cfg, tiny_train_config(iterations=500, lr=3e-3, lr_final=5e-4, eval_every=1000,
                                            checkpoint_every=1000), torch.device("cpu"), "tiny", "t", 25, tmp_path,
                 progress=False)
    tr.run()
    jaw = ds.cond[ds.test_idx, 8 + JAW_OPEN]
    with torch.no_grad():
        out = tr.model(tr.normalise(ds.cond[ds.test_idx]), want_low=False)["rgb"].numpy()
    truth = ds.read_frames(ds.test_idx, 64).astype(np.float32) / 255
    # darkness of the mouth area (under the face centre) follows jawOpen; the eyes' area does not move with it
    def dark(img, y0, y1):
        return 1 - img[:, :, y0:y1, 20:44].mean(axis=(1, 2, 3))
    r_mouth = np.corrcoef(jaw, dark(out, 36, 52))[0, 1]
    r_truth = np.corrcoef(jaw, dark(truth, 36, 52))[0, 1]
    assert r_truth > 0.9  # the fixture itself
    assert r_mouth > 0.8, f"rendered mouth darkness vs jawOpen r={r_mouth:.2f}"
    psnr = -10 * np.log10(((out - truth) ** 2).mean())
    assert psnr > 24, f"held-out PSNR {psnr:.1f} dB"


def test_several_references_start_on_the_first_and_export_with_parity(tmp_path):
    cfg = tiny_warp_config()
    cfg.warp_refs = 3
    m = WarpModel(cfg.validate()).eval()
    refs = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    m.set_reference(refs, torch.randn(3, 6, generator=torch.Generator().manual_seed(5)))
    with torch.no_grad():
        out = m(torch.randn(2, 60))
    # zero flow and affine at the start, blend weights mostly on reference 0: the warp is their weighted sum
    w = out["weights"].reshape(2, 3, 32, 32)
    assert w.sum(1).sub(1).abs().max() < 1e-5 and (w[:, 0] > 0.9).all()
    assert torch.allclose(out["warp"], (w[:, :, None] * refs[None]).sum(1), atol=2e-3)
    with torch.no_grad():  # non-zero motion so the parity check exercises every reference's warp
        for p in m.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    c = untrained_conditioning()
    man = export_avatar(m, None, tmp_path, "w3", 25, c["mean"], c["std"], c["neutral"], {"provenance": "test"})
    assert man["training"]["parityMaxAbsDiff"] < 1e-4
    assert man["training"]["model"]["warp_refs"] == 3


def test_several_references_are_chosen_for_what_the_first_cannot_show(synth_dataset, tmp_path):
    ds = Dataset(synth_dataset)
    cfg = tiny_warp_config()
    cfg.warp_refs = 3
    tr = Trainer(ds, cfg.validate(), tiny_train_config(iterations=2), torch.device("cpu"), "tiny", "t", 25, tmp_path,
                 progress=False)
    picks = tr.reference_indices
    assert len(picks) == 3 and len(set(picks)) == 3 and picks[0] == tr.choose_reference()
    name, mouth, _space = tr.reference_measures()[0]
    pos = [int(np.flatnonzero(ds.train_idx == i)[0]) for i in picks]
    # the second reference opens the mouth more than the near-neutral first one
    assert name == "mouth_open" and mouth[pos[1]] >= np.quantile(mouth, 0.97) > mouth[pos[0]]
    refs = torch.from_numpy(ds.read_frames(picks, 32)).float() / 255
    assert torch.allclose(tr.model.reference, refs)
    for _ in range(2):
        terms = tr.step()
    assert np.isfinite(terms["loss"]) and terms["coarse_warp"] > 0


def test_head_aligned_maps_start_on_the_reference_and_export_with_parity(tmp_path):
    cfg = tiny_warp_config()
    cfg.warp_aligned = True
    m = WarpModel(cfg.validate()).eval()
    ref = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(6))
    m.set_reference(ref)
    with torch.no_grad():
        out = m(torch.randn(2, 60))
    # (the last row and column are read 1e-3 px inside the border, as without alignment)
    assert torch.allclose(out["warp"], ref[None].expand(2, -1, -1, -1), atol=2e-3)
    # with the geometry on too: non-zero motion everywhere, the export still matches PyTorch
    cfg2 = tiny_warp_config()
    cfg2.warp_aligned = True
    cfg2.warp_geometry = True
    m2 = WarpModel(cfg2.validate()).eval()
    m2.set_reference(ref)
    man = export_jittered(m2, tmp_path, "wa", 7)
    assert man["training"]["parityMaxAbsDiff"] < 1e-4
    assert man["training"]["model"]["warp_aligned"] is True


def test_without_learned_rotation_the_correction_only_shifts_and_scales(tmp_path):
    cfg = tiny_warp_config()
    cfg.warp_geometry = True
    cfg.warp_learned_rotation = False
    m = WarpModel(cfg.validate()).eval()
    m.set_reference(torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(8)))
    cond = torch.randn(2, 60, generator=torch.Generator().manual_seed(9))

    def warp_after(row: int) -> torch.Tensor:
        with torch.no_grad():
            m.rigid.weight.zero_()
            m.rigid.weight[row] = 1.0
            return m(cond)["warp"]

    with torch.no_grad():
        m.rigid.weight.zero_()
        still = m(cond)["warp"]
    # rows 1 and 2 (a12, a21: rotation and shear) change nothing; the scale (0) and the shift (4) do
    assert torch.equal(warp_after(1), still) and torch.equal(warp_after(2), still)
    assert not torch.allclose(warp_after(0), still) and not torch.allclose(warp_after(4), still)
    free = tiny_warp_config()
    free.warp_geometry = True  # the default: a free correction
    mf = WarpModel(free.validate()).eval()
    mf.load_state_dict(m.state_dict())
    with torch.no_grad():
        mf.rigid.weight.zero_()
        mf.rigid.weight[1] = 1.0  # the same rotation row does turn the head there
        assert not torch.allclose(mf(cond)["warp"], still)
    man = export_jittered(m, tmp_path, "nr", 10)
    assert man["training"]["parityMaxAbsDiff"] < 1e-4
    assert man["training"]["model"]["warp_learned_rotation"] is False


def test_head_aligned_maps_move_with_the_head():
    # the same expression map, carried by a rigid shift of the head, lands shifted by the same amount
    cfg = tiny_warp_config()
    cfg.warp_aligned = True
    m = WarpModel(cfg.validate()).eval()
    g = cfg.warp_grid
    maps = torch.zeros(1, m.head.out_channels, g, g)
    maps[0, 0, 6:10, 6:10] = 1.0
    px_per_cell = 32 // g
    a = torch.zeros(1, 6)
    a[0, 4] = -2 * px_per_cell  # output pixel p reads the reference at p - 2 cells: the head moved right
    moved = m.align(maps, m.grid_motion(m.rigid_pixels(a, None), None))
    assert torch.allclose(moved[0, 0, 6:10, 8:12], torch.ones(4, 4), atol=1e-5)
    assert moved[0, 0, :, :8].abs().max() < 1e-5
    with pytest.raises(ValueError, match="warp_refs"):
        bad = tiny_warp_config()
        bad.warp_aligned, bad.warp_refs = True, 2
        bad.validate()


def eye_config(size: int = 128, mouth: bool = False) -> ModelConfig:
    cfg = tiny_warp_config(size)
    cfg.warp_eyes, cfg.warp_mouth = True, mouth
    return cfg.validate()


def test_colour_layer_config_is_checked():
    assert eye_config().warp_eyes and eye_config(mouth=True).warp_mouth
    for key in ("warp_eyes", "warp_mouth"):
        for size, refs in ((96, 1), (64, 1), (128, 2)):
            bad = tiny_warp_config(size)
            bad.warp_refs = refs
            setattr(bad, key, True)
            with pytest.raises(ValueError, match=key):
                bad.validate()


@pytest.mark.parametrize("which,centre,box", [
    ("eye", (64.0, 40.0), (28, 51, 32, 95)),     # patch 64 x 24: x 32..96, y 28..52 of the reference
    ("mouth", (64.0, 90.0), (74, 105, 40, 87)),  # patch 48 x 32: x 40..88, y 74..106
])
def test_colour_layer_paints_its_patch_where_the_head_carries_it(which, centre, box):
    m = WarpModel(eye_config(mouth=True)).eval()
    m.set_reference(torch.zeros(3, 128, 128))
    layer = m.eye_patch if which == "eye" else m.mouth_patch
    layer.set_origin(*centre)
    assert layer.origin.tolist() == [float(box[2]), float(box[0])]
    with torch.no_grad():
        layer.head.weight.zero_()
        base = m(torch.zeros(1, 60), want_low=False)["rgb"][0]  # the layers start as no change
        layer.head.bias.copy_(torch.tensor([10.0, -10.0, -10.0]))  # everything under it red
        still = m(torch.zeros(1, 60), want_low=False)["rgb"][0]
        # a head moved 6 px right: output pixel p reads the reference at p - 6
        m.rigid.bias.zero_()
        m.rigid.bias[4] = -6.0 / (m.cfg.rigid_scale * 64.0)
        moved = m(torch.zeros(1, 60), want_low=False)["rgb"][0]
    red = lambda img: (img[0] > 0.9) & (img[1] < 0.1)  # noqa: E731
    ys, xs = torch.nonzero(red(still), as_tuple=True)
    assert torch.equal(red(base), torch.zeros_like(red(base)))
    # red over the whole patch (even its tapered border saturates), nothing changed outside it
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == box
    y0, y1, x0, x1 = box
    assert torch.allclose(still[:, :y0], base[:, :y0], atol=1e-6) and torch.allclose(still[:, :, x1 + 1:], base[:, :, x1 + 1:], atol=1e-6)
    ys2, xs2 = torch.nonzero(red(moved), as_tuple=True)
    assert (ys2.min(), ys2.max(), xs2.min(), xs2.max()) == (y0, y1, x0 + 6, x1 + 6)


def test_checkpoints_from_before_colour_patch_load():
    """The eye layer's parameters were once named on the model itself (eye_mlp., eye_up., eye_head., eye_origin)."""
    torch.manual_seed(3)
    m = WarpModel(eye_config()).eval()
    old = {}
    for k, v in m.state_dict().items():
        for new, was in (("eye_patch.mlp.", "eye_mlp."), ("eye_patch.up.", "eye_up."), ("eye_patch.head.", "eye_head."),
                         ("eye_patch.origin", "eye_origin")):
            if k.startswith(new):
                k = was + k[len(new):]
        old[k] = v.clone() + (1.0 if k == "eye_origin" else 0.0)
    assert "eye_mlp.0.weight" in old and "eye_patch.mlp.0.weight" not in old
    again = WarpModel(eye_config())
    again.load_state_dict(old)
    assert torch.equal(again.eye_patch.mlp[0].weight, m.eye_patch.mlp[0].weight)
    assert torch.equal(again.eye_patch.origin, m.eye_patch.origin + 1.0)


def test_colour_layers_export_with_parity(tmp_path):
    torch.manual_seed(8)
    cfg = eye_config(mouth=True)
    cfg.warp_aligned = True
    m = WarpModel(cfg.validate()).eval()
    m.set_reference(torch.rand(3, 128, 128))
    with torch.no_grad():  # layers that draw something (they start at zero change)
        for layer in (m.eye_patch, m.mouth_patch):
            layer.head.weight.normal_(0, 0.05)
    man = export_jittered(m, tmp_path, "we", 8)
    assert man["training"]["parityMaxAbsDiff"] < 1e-4
    assert man["training"]["model"]["warp_eyes"] is True and man["training"]["model"]["warp_mouth"] is True
    # no sizes computed from the input's shape (each such chain is four or five nodes of a few microseconds a frame):
    # the only Shape nodes left give the batch's row offsets of the head-aligned maps' corner table
    import onnx
    ops = [n.op_type for n in onnx.load(str(tmp_path / "avatar.onnx")).graph.node]
    assert ops.count("Shape") <= 1 and ops.count("Range") <= 1


@pytest.mark.parametrize("size_in,size_out", [(8, 16), (16, 64), (32, 64), (64, 256), (128, 256), (16, 16)])
def test_up_samples_as_interpolate_to_a_size(size_in, size_out):
    from train.model_warp import up
    x = torch.randn(2, 5, size_in, size_in, generator=torch.Generator().manual_seed(size_in))
    want = Fn.interpolate(x, size=(size_out, size_out), mode="bilinear", align_corners=False)
    assert torch.equal(up(x, size_in, size_out), want)


def test_trainer_places_the_colour_layers_on_the_reference_eyes_and_lips(tmp_path):
    from train.losses import LEFT_EYE, MOUTH_OUTER_LIPS, RIGHT_EYE
    root = write_synthetic_dataset(tmp_path / "face", n=24, size=128, n_test=4, seed=3, kind="face")
    lm = np.random.default_rng(1).uniform(0, 128, (24, 478, 2)).astype(np.float32)
    lm[:, LEFT_EYE] = (80.0, 50.0)
    lm[:, RIGHT_EYE] = (50.0, 54.0)
    lm[:, MOUTH_OUTER_LIPS] = (66.0, 90.0)
    with_landmarks(root, lm)
    tr = Trainer(Dataset(root), eye_config(mouth=True), tiny_train_config(iterations=2), torch.device("cpu"), "tiny",
                 "t", 25, tmp_path / "out", progress=False)
    assert tr.model.eye_patch.origin.tolist() == [65.0 - 32.0, 52.0 - 12.0]
    assert tr.model.mouth_patch.origin.tolist() == [66.0 - 24.0, 90.0 + 4.0 - 16.0]  # reaching below the lips
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    for _ in range(2):
        assert np.isfinite(tr.step()["loss"])
    for prefix in ("eye_patch.", "mouth_patch."):
        assert any(k.startswith(prefix) and not torch.equal(v, before[k]) for k, v in tr.model.state_dict().items())
    # a dataset without landmarks (version 1) trains without the layers, and says so
    cfg = eye_config(128, mouth=True)
    v1 = write_synthetic_dataset(tmp_path / "v1", n=12, size=128, n_test=2, seed=4, kind="face")
    tr1 = Trainer(Dataset(v1), cfg, tiny_train_config(iterations=1), torch.device("cpu"), "tiny", "t", 25,
                  tmp_path / "out1", progress=False)
    assert not tr1.model.eyes and not cfg.warp_eyes and not tr1.model.mouth and not cfg.warp_mouth


def with_landmarks(root, lm: np.ndarray) -> None:
    """Makes the synthetic dataset at `root` a version 2 one with the landmarks `lm` [N, 478, 2]."""
    import json
    np.save(root / "landmarks.npy", lm.astype(np.float32))
    man = json.loads((root / "dataset.json").read_text())
    man["version"] = 2
    man["arrays"]["landmarks"] = {"file": "landmarks.npy", "dtype": "float32", "shape": list(lm.shape)}
    (root / "dataset.json").write_text(json.dumps(man))


def test_landmark_loss_measures_where_the_model_reads_the_landmarks():
    from train.losses import landmark_loss
    s = 32
    yy, xx = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32), indexing="ij")
    ref_lm = torch.rand(478, 2, generator=torch.Generator().manual_seed(0)) * 20 + 6
    frame_lm = (ref_lm + torch.tensor([3.0, -1.0]))[None].repeat(2, 1, 1)  # the head moved 3 px right, 1 px up
    # a model that reads each pixel where the head's motion puts it in the reference: distance 0
    sx = (xx - 3.0).reshape(1, -1).repeat(2, 1).requires_grad_(True)
    sy = (yy + 1.0).reshape(1, -1).repeat(2, 1)
    assert float(landmark_loss({"sx": sx, "sy": sy}, frame_lm, ref_lm)) < 1e-2
    # one that does not follow the head (identity): the whole motion, sqrt(3² + 1²) px
    ident = {"sx": xx.reshape(1, -1).repeat(2, 1).requires_grad_(True), "sy": yy.reshape(1, -1).repeat(2, 1)}
    loss = landmark_loss(ident, frame_lm, ref_lm)
    assert abs(float(loss) - 10 ** 0.5) < 1e-3
    loss.backward()
    assert float(ident["sx"].grad.abs().sum()) > 0  # it trains the coordinates
    # landmarks the tracker did not find (NaN, a whole frame or the reference's) are left out, not NaN
    frame_lm[1] = float("nan")
    ref_nan = ref_lm.clone()
    ref_nan[:10] = float("nan")
    got = landmark_loss({"sx": ident["sx"].detach(), "sy": ident["sy"]}, frame_lm, ref_nan)
    assert abs(float(got) - 10 ** 0.5) < 1e-3


def test_trainer_uses_the_landmark_term_on_datasets_with_landmarks(tmp_path):
    root = write_synthetic_dataset(tmp_path / "face", n=16, size=32, n_test=4, seed=5, kind="face")
    with_landmarks(root, np.random.default_rng(2).uniform(4, 28, (16, 478, 2)))

    def first_step(data, refs: int = 1, weight: float = 0.05) -> dict:
        cfg = tiny_warp_config()
        cfg.warp_refs = refs
        tcfg = tiny_train_config(iterations=2, landmark_weight=weight)
        return Trainer(Dataset(data), cfg.validate(), tcfg, torch.device("cpu"), "tiny", "t", 25, tmp_path / "out",
                       progress=False).step()

    terms = first_step(root)
    assert np.isfinite(terms["landmarks"]) and terms["landmarks"] > 0
    # weight 0, several references, or a dataset without landmarks: no landmark term
    assert "landmarks" not in first_step(root, weight=0.0)
    assert "landmarks" not in first_step(root, refs=3)
    v1 = write_synthetic_dataset(tmp_path / "v1", n=8, size=32, n_test=2, seed=6, kind="face")
    assert "landmarks" not in first_step(v1)


def test_squared_error_term_counts_large_errors_more():
    from train.losses import warp_loss
    g = torch.Generator().manual_seed(4)
    gt = torch.rand(2, 3, 16, 16, generator=g)
    w = torch.ones(1, 1, 16, 16)
    base = {"warp": gt, "flow": torch.zeros(2, 2, 16, 16), "mask": torch.ones(2, 1, 16, 16)}
    spread = gt + 0.01  # the same L1 error two ways: a little everywhere, or a lot on 1 % of the values
    few = gt.clone().reshape(-1)
    few[::100] += 0.01 * few.numel() / few[::100].numel()
    few = few.reshape(gt.shape)
    t_spread = warp_loss(dict(base, rgb=spread), gt, w, mse_weight=20.0)
    t_few = warp_loss(dict(base, rgb=few), gt, w, mse_weight=20.0)
    assert abs(float(t_spread["rgb"]) - float(t_few["rgb"])) < 1e-6
    assert float(t_few["mse"]) > 50 * float(t_spread["mse"])
    off = warp_loss(dict(base, rgb=few), gt, w)
    assert "mse" not in off and abs(float(t_few["loss"] - off["loss"]) - 20.0 * float(t_few["mse"])) < 1e-5


def test_trainer_adds_the_squared_error_term_when_asked(tmp_path):
    root = write_synthetic_dataset(tmp_path / "d", n=12, size=32, n_test=2, seed=3)
    for weight, present in ((0.0, False), (5.0, True)):
        tcfg = tiny_train_config(iterations=2, mse_weight=weight)
        terms = Trainer(Dataset(root), tiny_warp_config(), tcfg, torch.device("cpu"), "tiny", "t", 25,
                        tmp_path / f"out{weight}", progress=False).step()
        assert ("mse" in terms) == present


def _train_args(**kw):
    import argparse
    base = dict(refs=None, no_geometry=False, aligned=False, no_aligned=False, eyes=False, no_eyes=False, mouth=False,
                no_mouth=False)
    base.update(kw)
    return argparse.Namespace(**base)


def test_warp_preset_options_aligned_maps_and_eye_layer():
    from train.trainer import apply_warp_options
    m, _ = preset_configs("warp", 256)
    assert m.warp_aligned and m.warp_eyes and not m.warp_learned_rotation  # the preset's defaults
    assert preset_configs("warp", 256)[1].mse_weight == 20.0 and preset_configs("cpu", 256)[1].mse_weight == 0.0
    assert apply_warp_options(m, _train_args(learned_rotation=True)) == [] and m.warp_learned_rotation
    assert not preset_configs("warp", 64)[0].warp_eyes  # too small for the eye layer: without it
    m, _ = preset_configs("warp", 256)
    assert apply_warp_options(m, _train_args(no_aligned=True, no_eyes=True)) == []
    assert not m.warp_aligned and not m.warp_eyes
    # several references: the preset's aligned maps, eye layer, dense warp and coarse motion are dropped, with a note
    # each
    m, _ = preset_configs("warp", 256)
    notes = apply_warp_options(m, _train_args(refs=3))
    assert m.warp_refs == 3 and not m.warp_aligned and not m.warp_eyes and not m.warp_dense_geometry
    assert not m.warp_coarse_motion
    assert len(notes) == 4
    for kw, msg in ((dict(refs=3, eyes=True), "--eyes needs one reference frame"),
                    (dict(refs=2, aligned=True), "--aligned needs one reference frame"),
                    (dict(eyes=True, no_eyes=True), "contradict"),
                    (dict(learned_rotation=True, no_learned_rotation=True), "--learned-rotation and --no-learned-rotation contradict")):
        with pytest.raises(ValueError, match=msg):
            apply_warp_options(preset_configs("warp", 256)[0], _train_args(**kw))
    with pytest.raises(ValueError, match="--eyes needs an output size"):
        apply_warp_options(preset_configs("warp", 64)[0], _train_args(eyes=True))
    m, _ = preset_configs("warp", 256)
    assert not m.warp_mouth and apply_warp_options(m, _train_args(mouth=True)) == [] and m.warp_mouth
    with pytest.raises(ValueError, match="--mouth needs one reference frame"):
        apply_warp_options(preset_configs("warp", 256)[0], _train_args(refs=2, mouth=True))
    with pytest.raises(ValueError, match="--eyes is for variant W"):
        apply_warp_options(preset_configs("cpu", 256)[0], _train_args(eyes=True))


def test_refinement_size_options_change_the_network():
    """--refine-channels / --refine-layers size the refinement network (a cheaper render), for variant W only."""
    from train.trainer import apply_warp_options
    m, _ = preset_configs("warp", 256)
    assert (m.refine_channels, m.refine_layers) == (8, 2)  # the preset's since 30 Nov 2026
    assert apply_warp_options(m, _train_args(refine_channels=16, refine_layers=3)) == []
    assert (m.refine_channels, m.refine_layers) == (16, 3)  # the default avatar's
    model = build_model(m)
    assert [tuple(c.weight.shape) for c in model.refine] == [(16, 3 + m.n_f, 3, 3), (16, 16, 3, 3), (16, 16, 3, 3)]
    assert tuple(model.refine_out.weight.shape) == (4, 16, 3, 3)
    assert warp_flops(m)["total"] > warp_flops(preset_configs("warp", 256)[0])["total"]
    with pytest.raises(ValueError, match="--refine-channels is for variant W"):
        apply_warp_options(preset_configs("cpu", 256)[0], _train_args(refine_channels=8))


def test_colour_layer_window_matches_sampling_the_whole_frame():
    """A colour layer is sampled over a window of the output around where the head carries its patch, not over
    the whole frame: for head motions within the window's room (shifts, the patch against the frame's edge, roll,
    a head closer to the camera), one batch of them at once, the frame gets the same change of colour as sampling
    every output pixel would give."""
    torch.manual_seed(4)
    m = WarpModel(eye_config(mouth=True)).eval()
    s = m.size
    py, px = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32), indexing="ij")
    p1 = torch.stack([px.reshape(-1), py.reshape(-1), torch.ones(s * s)], 0)  # [3, S*S]

    def rigid(shift_x, shift_y, roll_deg=0.0, scale=1.0, centre=(64.0, 64.0)):
        # output pixel p reads the reference at c + R (p - c) / scale - shift: displacement (R / scale - I) p + t
        r = torch.deg2rad(torch.tensor(roll_deg))
        lin = torch.tensor([[torch.cos(r), -torch.sin(r)], [torch.sin(r), torch.cos(r)]]) / scale
        c = torch.tensor(centre)
        t = c - lin @ c - torch.tensor([shift_x, shift_y])
        return torch.cat([lin - torch.eye(2), t[:, None]], 1)

    motions = torch.stack([rigid(0, 0), rigid(9.5, -6.25), rigid(-30, 20), rigid(0, 0, roll_deg=12.0),
                           rigid(4, 3, roll_deg=-8.0, scale=1.15), rigid(0, 40)])
    b = motions.shape[0]
    z = torch.randn(b, 60)
    with torch.no_grad():
        for layer in (m.eye_patch, m.mouth_patch):
            layer.head.weight.normal_(0, 0.3)
            change, index = layer(z, motions)
            got = torch.zeros(b, 3, s * s).scatter_add(2, index, change).reshape(b, 3, s, s)
            # the whole frame: every output pixel's place on the reference, in the patch's normalised coordinates
            q = p1[:2] + torch.matmul(motions, p1)  # [B, 2, S*S]
            qx = (q[:, 0] - layer.origin[0] + 0.5) * (2.0 / layer.w) - 1.0
            qy = (q[:, 1] - layer.origin[1] + 0.5) * (2.0 / layer.h) - 1.0
            grid = torch.stack([qx, qy], -1).reshape(b, s, s, 2)
            want = Fn.grid_sample(layer.draw(z), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            assert want.abs().amax(dim=(1, 2, 3)).min() > 0.05  # every motion shows the patch somewhere
            assert torch.allclose(got, want, atol=1e-5), (got - want).abs().amax(dim=(1, 2, 3))
            # each window lies inside the frame and no window pixel is written twice
            assert int(index.min()) >= 0 and int(index.max()) < s * s
            assert all(len(set(index[i, 0].tolist())) == index.shape[2] for i in range(b))


def test_the_refinements_first_convolution_split_by_input_channels_is_the_same():
    # refine_hidden computes the first convolution of [warp, features] as two convolutions (onnxruntime runs the one
    # on the features in its blocked layout): the same function as the convolution of the concatenation
    cfg = ModelConfig(size=64, variant="W", warp_grid=16, n_f=8, refine_channels=8, refine_layers=3).validate()
    m = WarpModel(cfg).eval()
    torch.manual_seed(2)
    with torch.no_grad():
        for p in m.refine.parameters():
            p.normal_(0.0, 0.3)
        warp, feats = torch.rand(2, 3, 64, 64), torch.randn(2, 8, 32, 32)
        got = m.refine_hidden(warp, feats)
        r = torch.cat([Fn.avg_pool2d(warp, 2), feats], 1)
        for conv in m.refine:
            r = torch.relu(conv(r))
    assert float(r.abs().max()) > 0.1
    assert float((got - r).abs().max()) < 1e-6 * float(r.abs().max()) * 10  # float rounding only
