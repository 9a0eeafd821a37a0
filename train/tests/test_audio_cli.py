"""`python3 -m train.audio_expression` end to end on small made-up datasets whose feature cache is written
directly (the TypeScript extractor is tested elsewhere): sync finds a shifted clip, train and ensemble export a
model with the phonetic prior inside, and bad --prior-outputs are refused."""
import json
import numpy as np
import pytest

from train.audio_expression import cli
from train.audio_expression.augment import VARIANTS, cache_meta
from train.audio_expression.config import BLENDSHAPE_NAMES
from train.audio_expression.features import extractor_id
from train.onnx_check import run_onnx
from train.tests.test_audio_sync import _speech


def _dataset(root, cache, name, seed, shift_frames=0):
    """A dataset whose jawOpen at 25 fps follows the phonetic jaw of its feature frames, its picture late by
    shift_frames × 10 ms; and its clean features in the cache."""
    f, jaw10 = _speech(t=1200, seed=seed)
    jaw10 = np.concatenate([np.full(shift_frames, jaw10[0]), jaw10[:len(jaw10) - shift_frames]])
    d = root / name
    d.mkdir(parents=True)
    n = len(jaw10) // 4  # video frames at 25 fps: every 4th 10 ms feature frame
    bs = np.zeros((n, 52), np.float32)
    bs[:, BLENDSHAPE_NAMES.index("jawOpen")] = np.clip(jaw10[::4][:n] * 0.5, 0, 1)
    np.save(d / "blendshapes.npy", bs)
    np.save(d / "valid.npy", np.ones(n, np.uint8))
    (d / "dataset.json").write_text(json.dumps({"fps": 25}))
    (d / "audio.wav").write_bytes(b"")  # present; its features are already cached
    c = cache / extractor_id() / name
    c.mkdir(parents=True)
    np.save(c / "clean.npy", f)
    (c / "clean.json").write_text(json.dumps(cache_meta(VARIANTS[0], extractor_id())))
    return d


@pytest.fixture()
def data(tmp_path):
    root, cache = tmp_path / "data", tmp_path / "cache"
    _dataset(root, cache, "a", 0)
    _dataset(root, cache, "b", 1, shift_frames=30)  # the mouth 300 ms after its sound
    _dataset(root, cache, "c", 2)
    return root, cache


def test_sync_train_and_ensemble_with_the_prior(data, tmp_path, capsys):
    root, cache = data
    common = [str(root), "--cache", str(cache), "--clean-only"]
    assert cli.main(["sync", *common, "--json"]) == 0
    rows = {r["dataset"]: r for r in map(json.loads, capsys.readouterr().out.strip().splitlines())}
    assert abs(rows["b"]["offset_ms"] - 300) <= 20 and rows["a"]["offset_ms"] == 0 and rows["a"]["keep"]
    out = tmp_path / "m"
    assert cli.main(["train", *common, "--out", str(out), "--held-out", "c", "--iterations", "2", "--batch", "4",
                     "--eval-every", "1", "--no-progress", "--sync", "auto"]) == 0
    man = json.loads((out / "model.json").read_text())
    assert man["training"]["phoneticPrior"]["outputs"][0] == "jawOpen"
    assert man["training"]["sync"]["b"]["offset_ms"] == pytest.approx(rows["b"]["offset_ms"])
    assert man["training"]["heldOut"]["c"]["jawOpen"]["r"] > 0.5  # the prior follows c's jaw with 2 iterations
    assert man["training"]["heldOutNetwork"]["c"]["jawOpen"]["r"] < man["training"]["heldOut"]["c"]["jawOpen"]["r"]
    ens = tmp_path / "e"
    assert cli.main(["ensemble", *common, "--out", str(ens), "--held-out", "c", "--prior-outputs", "jawOpen",
                     "--checkpoints", f"{out / 'checkpoint.pt'},{out / 'checkpoint.pt'}"]) == 0
    em = json.loads((ens / "model.json").read_text())
    assert em["training"]["phoneticPrior"]["outputs"] == ["jawOpen"] and em["training"]["parityMaxAbsDiff"] < 1e-4
    y, _ = run_onnx(ens / "model.onnx", "features", np.zeros((2, em["window"], em["features"]["dim"]), np.float32))
    assert y.shape == (2, 18)
    with pytest.raises(SystemExit, match="no phone table"):
        cli.main(["ensemble", *common, "--out", str(tmp_path / "x"), "--held-out", "c", "--prior-outputs", "mouthRollLower",
                  "--checkpoints", str(out / "checkpoint.pt")])
