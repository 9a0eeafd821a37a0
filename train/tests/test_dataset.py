import json
import shutil

import numpy as np
import pytest

from train.dataset import Dataset, DatasetError, conditioning_stats


def test_reads_the_prepare_format_and_uses_only_valid_frames(synth_dataset):
    ds = Dataset(synth_dataset)
    assert ds.n == 64 and ds.size == 32
    assert ds.cond.shape == (64, 60)
    assert 3 not in ds.train_idx  # valid = 0
    assert list(ds.test_idx) == list(range(58, 64))
    assert len(ds.train_idx) == 57
    f = ds.read_frame(0, 32)
    assert f.shape == (3, 32, 32) and f.dtype == np.uint8
    assert ds.read_frame(0, 16).shape == (3, 16, 16)
    assert ds.identity()["manifestSha256"] == ds.manifest_sha256


def test_stats_and_neutral(synth_dataset):
    ds = Dataset(synth_dataset)
    mean, std, neutral = conditioning_stats(ds.cond[ds.train_idx])
    assert len(mean) == len(std) == 60 and min(std) > 0
    assert neutral["pose"][5] == pytest.approx(float(np.median(ds.cond[ds.train_idx, 5])), abs=1e-5)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def _edit(path, fn):
    m = json.loads((path / "dataset.json").read_text())
    fn(m)
    (path / "dataset.json").write_text(json.dumps(m))


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.update(format="other"), 'format: expected "dnp-dataset"'),
    (lambda m: m.update(version=3), "unsupported version 3"),
    (lambda m: m.update(version=2), "arrays.landmarks: expected an object"),
    (lambda m: m["arrays"]["pose"].update(shape=[24, 5]), "arrays.pose.shape: expected [64, 6]"),
    (lambda m: m["arrays"]["valid"].update(file="../valid.npy"), "arrays.valid.file: must be a plain name"),
    (lambda m: m["split"].update(train=[0, 60]), "train and test ranges overlap"),
    (lambda m: m.update(frameCount="many"), "frameCount: expected a finite number"),
])
def test_bad_manifest_is_refused_with_a_clear_error(synth_dataset, tmp_path, edit, message):
    d = _copy(synth_dataset, tmp_path / "bad")
    _edit(d, edit)
    with pytest.raises(DatasetError, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")):
        Dataset(d)


def test_array_that_does_not_match_the_manifest_is_refused(synth_dataset, tmp_path):
    d = _copy(synth_dataset, tmp_path / "bad")
    np.save(d / "gaze.npy", np.zeros((64, 2), np.float64))
    with pytest.raises(DatasetError, match="gaze.npy: expected float32"):
        Dataset(d)


def test_missing_frame_is_named(synth_dataset, tmp_path):
    d = _copy(synth_dataset, tmp_path / "bad")
    (d / "frames" / "000005.png").unlink()
    ds = Dataset(d)
    with pytest.raises(DatasetError, match="frame 5 not found"):
        ds.read_frames([4, 5], 32)


def _as_v2(src, dst, landmarks=None):
    d = _copy(src, dst)
    n = 64
    lm = np.random.default_rng(0).uniform(0, 32, (n, 478, 2)).astype(np.float32) if landmarks is None else landmarks
    lm[5] = np.nan  # a frame without a face
    np.save(d / "landmarks.npy", lm)
    _edit(d, lambda m: (m.update(version=2), m["arrays"].update(landmarks={"file": "landmarks.npy", "dtype": "float32", "shape": [n, 478, 2]})))
    return d, lm


def test_reads_version_2_and_exposes_landmarks(synth_dataset, tmp_path):
    d, lm = _as_v2(synth_dataset, tmp_path / "v2")
    ds = Dataset(d)
    assert ds.version == 2
    assert ds.landmarks is not None and ds.landmarks.shape == (64, 478, 2) and ds.landmarks.dtype == np.float32
    assert np.isnan(ds.landmarks[5]).all()
    np.testing.assert_array_equal(ds.landmarks[0], lm[0])
    assert ds.cond.shape == (64, 60)


def test_version_1_has_no_landmarks(synth_dataset):
    ds = Dataset(synth_dataset)
    assert ds.version == 1 and ds.landmarks is None


def test_version_2_landmarks_of_the_wrong_shape_are_refused(synth_dataset, tmp_path):
    d, _ = _as_v2(synth_dataset, tmp_path / "v2bad")
    np.save(d / "landmarks.npy", np.zeros((64, 468, 2), np.float32))
    with pytest.raises(DatasetError, match="landmarks.npy: expected float32"):
        Dataset(d)


def test_version_1_with_landmarks_is_refused(synth_dataset, tmp_path):
    d = _copy(synth_dataset, tmp_path / "v1lm")
    _edit(d, lambda m: m["arrays"].update(landmarks={"file": "landmarks.npy", "dtype": "float32", "shape": [64, 478, 2]}))
    with pytest.raises(DatasetError, match="only version 2 datasets have landmarks"):
        Dataset(d)
