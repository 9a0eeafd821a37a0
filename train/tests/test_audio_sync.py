"""sync.py: a training clip's audio/video offset from speaker-independent cues."""
import numpy as np
import pytest

from train.audio_expression.data import targets_on_grid
from train.audio_expression.config import OUTPUT_NAMES
from train.audio_expression.phonetic import PHONE_COLUMN, PHONE_JAW, PHONES
from train.audio_expression.sync import cues, estimate


def _speech(t=1500, seed=0):
    """Feature frames of syllable-like speech: runs of an open vowel (AA), a closed consonant (M) and silence,
    with loudness following; and the jaw opening they imply."""
    g = np.random.default_rng(seed)
    f = np.zeros((t, PHONE_COLUMN + len(PHONES)), np.float32)
    jaw = np.zeros(t)
    i = 0
    while i < t:
        phone = g.choice(["AA", "M", "SIL", "AE", "IY"], p=[0.35, 0.25, 0.1, 0.2, 0.1])
        n = int(g.integers(6, 25))
        post = np.full(len(PHONES), 0.1 / (len(PHONES) - 1))
        post[PHONES.index(phone)] = 0.9
        f[i:i + n, PHONE_COLUMN:] = post
        f[i:i + n, 0] = 0.0 if phone == "SIL" else 2.0 + 3.0 * PHONE_JAW[phone]
        jaw[i:i + n] = PHONE_JAW[phone]
        i += n
    f[:, 0] += g.normal(0, 0.3, t)
    return f, np.convolve(jaw, np.ones(9) / 9, "same") + g.normal(0, 0.05, t)


def _shifted(jaw, k):
    """The mouth k frames after the sound (k > 0) or before it (k < 0)."""
    return np.concatenate([np.full(k, jaw[0]), jaw[:-k]]) if k > 0 else np.concatenate([jaw[-k:], np.full(-k, jaw[-1])])


def test_cues_shape_and_bad_input():
    f, _ = _speech(300)
    c = cues(f)
    assert c.shape == (3, 300) and np.all(np.isfinite(c))
    with pytest.raises(ValueError):
        cues(f[:, :40])


@pytest.mark.parametrize("k", [30, -28])
def test_a_gross_offset_is_found_and_applied(k):
    f, jaw = _speech()
    s = estimate(f, _shifted(jaw, k), np.ones(len(f), bool))
    assert s.keep and abs(s.offset_ms - 10 * k) <= 20 and s.r_peak > s.r_zero + 0.1


def test_a_small_lead_is_not_shifted():
    f, jaw = _speech(seed=1)
    s = estimate(f, _shifted(jaw, -4), np.ones(len(f), bool))  # the mouth 40 ms ahead: natural, kept as is
    assert s.keep and s.offset_ms == 0.0 and abs(s.peak_ms + 40) <= 20


def test_a_mouth_unrelated_to_the_audio_is_left_out():
    f, _ = _speech(seed=2)
    other = _speech(seed=3)[1]  # another utterance's mouth
    s = estimate(f, other, np.ones(len(f), bool))
    assert not s.keep


def test_the_offset_moves_the_labels():
    fps = 25.0
    bs = np.zeros((100, 52), np.float32)
    jaw = OUTPUT_NAMES.index("jawOpen")
    bs[:, 25] = np.arange(100) / 100.0
    valid = np.ones(100, bool)
    y0, m0 = targets_on_grid(bs, valid, fps, 300)
    y1, m1 = targets_on_grid(bs, valid, fps, 300, offset_s=0.4)  # the picture 0.4 s late: 10 video frames later
    assert np.allclose(y1[m1 & m0][:50, jaw], y0[m1 & m0][:50, jaw] + 0.10, atol=1e-6)
    y2, m2 = targets_on_grid(bs, valid, fps, 300, offset_s=-0.4)
    assert not m2[:39].any() and m2[39:].all()  # audio before the first video frame (t < 0.4 s): not scored
