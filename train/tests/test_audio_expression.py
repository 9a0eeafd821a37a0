"""The audio-to-expression package: target timing, augmentation, a training step and the ONNX export."""
import json

import numpy as np
import pytest
import torch

from train.audio_expression.augment import Variant, make_variant, resample_speed
from train.audio_expression.config import OUTPUT_NAMES, ModelConfig, TrainConfig
from train.audio_expression.data import Clip, WindowSampler, streaming_windows, target_space, targets_on_grid
from train.audio_expression.export import export, load_checkpoint, save_checkpoint, write_parity_fixture
from train.audio_expression.features import FEATURE_CENTRE_S, read_wav16, write_wav16
from train.audio_expression.metrics import peak_lag
from train.audio_expression.train import predict_clip, train
from train.onnx_check import run_onnx

K = len(OUTPUT_NAMES)


def _clip(speaker, variant="clean", t=240, dim=6, seed=0):
    g = np.random.default_rng(seed)
    f = g.standard_normal((t, dim)).astype(np.float32)
    y = np.clip(0.3 + 0.2 * np.tanh(np.convolve(f[:, 0], np.ones(5) / 5, "same")), 0, 1)
    return Clip(speaker, variant, f, np.repeat(y[:, None], K, 1).astype(np.float32), np.ones(t, bool))


def test_targets_follow_timestamps_and_speed():
    fps = 25.0
    bs = np.zeros((50, 52), np.float32)
    bs[:, 25] = np.arange(50) / 100.0  # jawOpen = frame index / 100
    valid = np.ones(50, bool)
    valid[40] = False
    y, m = targets_on_grid(bs, valid, fps, 200)
    t = np.arange(200) * 0.01 + FEATURE_CENTRE_S
    jaw = OUTPUT_NAMES.index("jawOpen")
    assert np.allclose(y[m, jaw], (t * fps / 100.0)[m], atol=1e-6)
    assert not m[int(np.ceil((39 / fps - FEATURE_CENTRE_S) / 0.01))]  # next to the invalid frame
    y2, _ = targets_on_grid(bs, valid, fps, 100, speed=2.0)  # audio twice as fast: twice the video time
    assert np.allclose(y2[:50, jaw], 2 * t[:50] * fps / 100.0, atol=1e-6)


def test_speed_resampling_and_opus_round_trip(tmp_path):
    x = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    assert abs(len(resample_speed(x, 1.1)) - 16000 / 1.1) <= 2
    src = tmp_path / "in.wav"
    write_wav16(src, 16000, x)
    out = tmp_path / "out.wav"
    make_variant(src, Variant("t", gain_db=-6.0, noise_snr_db=30.0, opus_bps=24000), out, seed=0)
    rate, y = read_wav16(out)
    assert rate == 16000 and abs(len(y) - len(x)) <= 320
    core = slice(2000, 14000)
    assert 0.5 < np.sqrt(np.mean(y[core] ** 2)) / (0.5 * np.sqrt(np.mean(x[core] ** 2))) < 1.5  # -6 dB survives


def test_sampler_and_streaming_windows():
    clips = [_clip("a"), _clip("b", seed=1)]
    space = target_space(clips, "center")
    s = WindowSampler(clips, space, past=4, lookahead=2, steps=3, stride=2, seed=0)
    x, y = s.batch(5)
    assert x.shape == (5, 3, 7, 6) and y.shape == (5, 3, K)
    w = streaming_windows(clips[0].features, np.full(6, 9.0, np.float32), past=4, lookahead=2)
    assert w.shape == (240, 7, 6)
    assert np.all(w[0, :4] == 9.0) and np.array_equal(w[0, 4:], clips[0].features[:3])
    assert np.all(w[-1, -2:] == 9.0)


def test_peak_lag_finds_a_delay():
    g = np.random.default_rng(0)
    ref = np.convolve(g.standard_normal(400), np.ones(7) / 7, "same")
    late = np.roll(ref, 4)
    assert peak_lag(late, ref, np.ones(400, bool), 10) == 4


def test_trains_a_step_and_exports_with_parity(tmp_path):
    torch.manual_seed(0)
    clips = [_clip("a"), _clip("a", "noisy", seed=2), _clip("b", seed=1)]
    mcfg = ModelConfig(feature_dim=6, past=4, lookahead=2, channels=8, dilations=(1, 2), hidden=16)
    tcfg = TrainConfig(iterations=2, batch=4, steps=3, stride=2, eval_every=1)
    res = train(clips[:2], clips[2:], mcfg, tcfg, progress=False, log=lambda m: None)
    model = res["model"]
    assert res["iterations"] == 2 and len(res["history"]) == 2
    assert set(res["report"]["b"]) == set(OUTPUT_NAMES)
    man = export(model, tmp_path, "test", {"provenance": "test"})
    assert man["training"]["parityMaxAbsDiff"] < 1e-4
    assert man["window"] == 7 and man["lookahead"] == 2 and man["features"]["dim"] == 6
    assert man["outputs"] == list(OUTPUT_NAMES) and len(man["padFeature"]) == 6
    assert json.loads((tmp_path / "model.json").read_text()) == man
    import onnx
    assert onnx.load(str(tmp_path / "model.onnx")).opset_import[0].version == 17
    # The exported graph on the streaming windows of a clip = PyTorch's streaming prediction.
    w = streaming_windows(clips[2].features, model.feature_mean.numpy(), 4, 2)
    y, name = run_onnx(tmp_path / "model.onnx", "features", w)
    assert name == "blendshapes"
    assert np.abs(y - predict_clip(model, clips[2].features)).max() < 1e-4
    assert y.min() >= 0 and y.max() <= 1
    write_parity_fixture(model, clips[2].features[:20], tmp_path)
    doc = json.loads((tmp_path / "parity.json").read_text())
    assert len(doc["features"]) == 20 and len(doc["outputs"]) == 20
    save_checkpoint(model, tmp_path / "c.pt", {})
    again = load_checkpoint(tmp_path / "c.pt")
    assert np.array_equal(predict_clip(again, clips[2].features), predict_clip(model, clips[2].features))


def test_export_refuses_a_failed_parity(tmp_path, monkeypatch):
    from train.audio_expression import export as ex
    from train.onnx_check import ParityError
    monkeypatch.setattr(ex, "PARITY_TOLERANCE", 0.0)
    from train.audio_expression.model import AudioExpressionNet
    m = AudioExpressionNet(ModelConfig(feature_dim=3, past=2, lookahead=1, channels=4, dilations=(1,), hidden=4))
    with pytest.raises(ParityError):
        export(m, tmp_path, "test", {})
    assert not (tmp_path / "model.onnx").exists() and not (tmp_path / "model.json").exists()


def test_avatar_calibration_quantiles(tmp_path):
    from train.audio_expression.calibrate import LEVELS, write_avatar_calibration
    ds, av = tmp_path / "ds", tmp_path / "av"
    ds.mkdir()
    av.mkdir()
    (av / "avatar.json").write_text("{}")
    (ds / "dataset.json").write_text(json.dumps({"fps": 25, "source": {"file": "x.mp4", "sha256": "ab"}}))
    bs = np.zeros((101, 52), np.float32)
    bs[:, 25] = np.linspace(0, 0.5, 101)  # jawOpen 0..0.5
    valid = np.ones(101, np.uint8)
    valid[0] = 0
    np.save(ds / "blendshapes.npy", bs)
    np.save(ds / "valid.npy", valid)
    doc = json.loads(write_avatar_calibration(ds, av).read_text())
    assert doc["format"] == "dnp-audio-calibration" and doc["levels"] == list(LEVELS)
    jaw = doc["values"]["jawOpen"]
    assert jaw[0] == pytest.approx(0.005) and jaw[-1] == pytest.approx(0.5) and jaw[10] == pytest.approx(0.2525, abs=1e-4)
    assert all(b >= a for a, b in zip(jaw, jaw[1:])) and set(doc["values"]) == set(OUTPUT_NAMES)


@pytest.mark.parametrize("head", ["flatten", "center"])
def test_column_selection_exports(tmp_path, head):
    from train.audio_expression.model import AudioExpressionNet
    torch.manual_seed(0)
    m = AudioExpressionNet(ModelConfig(feature_dim=6, columns=(0, 2, 5), past=2, lookahead=1, channels=4, dilations=(1,),
                                       hidden=4, head=head)).eval()
    x = torch.randn(3, 4, 6)
    y0 = m(x)
    x[..., 1] += 5.0  # a column the network does not read
    assert torch.equal(m(x), y0)
    man = export(m, tmp_path, "test", {})
    assert man["training"]["parityMaxAbsDiff"] < 1e-4 and man["config"]["columns"] == [0, 2, 5]
    assert ModelConfig.from_dict(man["config"]).columns == (0, 2, 5) and man["config"]["head"] == head


def test_pause_labels_rest_inside_and_shift_after():
    from train.audio_expression.data import rest_pose, with_pause
    n = 300
    y = np.zeros((n, K), np.float32)
    y[:, 0] = np.linspace(0.1, 0.5, n)  # jawOpen rising; the lowest 10 % lie at the start
    m = np.ones(n, bool)
    out, mask = with_pause(y, m, pause_at=0.5, pause_s=0.5, frames=n + 50)
    assert np.allclose(out[200:, 0], y[150:300, 0])  # after the pause: the clip's own targets, shifted
    assert np.allclose(out[160:190], rest_pose(y, m)) and rest_pose(y, m)[0] < 0.13
    assert mask[170] and not mask[150] and not mask[200] and mask[100]


def test_ensemble_averages_members_and_exports(tmp_path):
    from train.audio_expression.model import AudioExpressionNet, Ensemble
    cfg = ModelConfig(feature_dim=4, past=2, lookahead=1, channels=4, dilations=(1,), hidden=4)
    members = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        members.append(AudioExpressionNet(cfg).eval())
    e = Ensemble(members).eval()
    x = torch.randn(5, 4, 4)
    assert torch.allclose(e(x), (members[0](x) + members[1](x)) / 2)
    man = export(e, tmp_path, "test", {})
    assert man["training"]["parityMaxAbsDiff"] < 1e-4 and len(man["padFeature"]) == 4
    other = AudioExpressionNet(ModelConfig(feature_dim=4, past=3, lookahead=1, channels=4, dilations=(1,), hidden=4))
    with pytest.raises(ValueError):
        Ensemble([members[0], other])
