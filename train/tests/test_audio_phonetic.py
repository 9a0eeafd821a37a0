"""phonetic.py: the phonetic prior (phone posteriors through fixed articulatory tables) and the exported model
that takes its outputs from it."""
import numpy as np
import pytest
import torch

from train.audio_expression.config import OUTPUT_NAMES, ModelConfig
from train.audio_expression.data import Clip, streaming_windows
from train.audio_expression.export import export
from train.audio_expression.model import AudioExpressionNet
from train.audio_expression.phonetic import (PHONE_COLUMN, PHONES, PRIOR_OUTPUTS, PhoneticPrior, WithPhoneticPrior,
                                             kernel, table_matrix)
from train.onnx_check import run_onnx

D = PHONE_COLUMN + len(PHONES)
JAW, FUNNEL, CLOSE = (OUTPUT_NAMES.index(n) for n in ("jawOpen", "mouthFunnel", "mouthClose"))


def _frames(phones, n_each=20):
    """Feature frames holding each phone in turn (posterior 0.9, the rest spread), loudness 1."""
    f = np.zeros((len(phones) * n_each, D), np.float32)
    for i, p in enumerate(phones):
        post = np.full(len(PHONES), 0.1 / (len(PHONES) - 1), np.float32)
        post[PHONES.index(p)] = 0.9
        f[i * n_each:(i + 1) * n_each, PHONE_COLUMN:] = post
        f[i * n_each:(i + 1) * n_each, 0] = 0.0 if p == "SIL" else 1.0
    return f


def _clip(speaker, phones, jaw_by_phone, rest=0.05, seed=0):
    f = _frames(phones)
    y = np.zeros((len(f), len(OUTPUT_NAMES)), np.float32)
    y[:, JAW] = np.repeat([jaw_by_phone.get(p, rest) for p in phones], 20)
    y[:, FUNNEL] = np.repeat([0.4 if p == "UW" else 0.02 for p in phones], 20)
    y += np.random.default_rng(seed).normal(0, 0.01, y.shape).astype(np.float32)
    return Clip(speaker, "clean", f, np.clip(y, 0, 1), np.ones(len(f), bool))


def test_tables_and_kernel():
    t = table_matrix()
    assert t.shape == (len(PHONES), len(OUTPUT_NAMES))
    assert t[PHONES.index("AA"), JAW] == 1.0 and t[PHONES.index("M"), JAW] == 0.0
    assert t[PHONES.index("UW"), FUNNEL] == 1.0 and t[PHONES.index("AA"), FUNNEL] == 0.0
    assert not t[:, OUTPUT_NAMES.index("mouthRollLower")].any()  # no table: zero
    k = kernel(8, 5)
    assert k.shape == (14,) and abs(k.sum() - 1) < 1e-6 and k.argmax() == 8


def test_prior_opens_the_jaw_on_open_vowels_and_rests_in_silence():
    clips = [_clip("a", ["SIL", "AA", "M", "IY", "AA", "SIL"], {"AA": 0.5, "IY": 0.2, "M": 0.02}),
             _clip("b", ["AE", "SIL", "UW", "B", "AA"], {"AA": 0.4, "AE": 0.35, "UW": 0.1, "B": 0.01}, seed=1)]
    prior = PhoneticPrior(8, 5, D).fit(clips, np.zeros(D, np.float32))
    y = prior(torch.from_numpy(streaming_windows(_frames(["SIL", "AA", "M", "UW"]), np.zeros(D, np.float32), 8, 5))).numpy()
    sil, aa, m, uw = (y[i * 20 + 10] for i in range(4))  # the middle of each run
    assert aa[JAW] > uw[JAW] > m[JAW] and aa[JAW] > 0.3
    assert uw[FUNNEL] > aa[FUNNEL] + 0.1
    assert np.allclose(y[:, OUTPUT_NAMES.index("mouthRollLower")], float(prior.rest[OUTPUT_NAMES.index("mouthRollLower")]))
    assert sil[JAW] == pytest.approx(float(prior.rest[JAW]), abs=0.02) and float(prior.rest[JAW]) < 0.1
    assert y.min() >= 0 and y.max() <= 1
    with pytest.raises(ValueError):
        PhoneticPrior(8, 5, 40)


def test_with_prior_takes_its_outputs_and_exports_with_parity(tmp_path):
    torch.manual_seed(0)
    net = AudioExpressionNet(ModelConfig(feature_dim=D, past=8, lookahead=5, channels=4, dilations=(1,), hidden=4)).eval()
    clips = [_clip("a", ["SIL", "AA", "M", "IY", "AA", "SIL"], {"AA": 0.5, "IY": 0.2})]
    prior = PhoneticPrior(8, 5, D).fit(clips, net.feature_mean.numpy())
    model = WithPhoneticPrior(net, prior).eval()
    x = torch.from_numpy(streaming_windows(_frames(["AA", "UW", "B"]), net.feature_mean.numpy(), 8, 5))
    with torch.no_grad():
        y, yn, yp = model(x), net(x), prior(x)
    for k, name in enumerate(OUTPUT_NAMES):
        assert torch.equal(y[:, k], yp[:, k] if name in PRIOR_OUTPUTS else yn[:, k]), name
    assert CLOSE not in [OUTPUT_NAMES.index(n) for n in PRIOR_OUTPUTS]  # the network keeps mouthClose
    man = export(model, tmp_path, "test", {})
    assert man["training"]["parityMaxAbsDiff"] < 1e-4 and man["window"] == 14
    out, _ = run_onnx(tmp_path / "model.onnx", "features", x.numpy())
    assert np.abs(out - y.numpy()).max() < 1e-4
    with pytest.raises(ValueError):
        WithPhoneticPrior(net, prior, outputs=("mouthRollLower",))
