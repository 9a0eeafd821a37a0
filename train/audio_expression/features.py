"""Speech feature frames (10 ms hop) for WAV files, computed by the project's TypeScript extractor
(server/src/audio/speech-features/, through speech_features.mjs: decodeAudio16k + extractSpeechFeatures, the
functions behind `dnp speech-features` and the live server), so that training reads the numbers the server
computes. The extractor runs from a snapshot of the committed tree (HEAD), not the working tree, so that
others' unfinished edits never leak into a training set; the cache is keyed by that tree's hash. Frame t covers samples [160 t, 160 t + 410) of 16 kHz audio: its centre is FEATURE_CENTRE_S + t × 10 ms
(SPEECH_FEATURE_FIRST_CENTRE_MS in server/src/audio/speech-features/stream.ts)."""
from __future__ import annotations

import hashlib
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Sequence, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).resolve().parent / "speech_features.mjs"
FEATURE_CENTRE_S = 0.0128125  # 205 samples at 16 kHz
EXTRACTOR = "dnp-speech-features"


def read_wav16(path: Path) -> Tuple[int, np.ndarray]:
    """16-bit PCM WAV → (sample rate, float32 samples in [-1, 1], mono)."""
    from scipy.io import wavfile
    rate, x = wavfile.read(str(path))
    if x.dtype != np.int16:
        raise ValueError(f"{path}: expected 16-bit PCM, got {x.dtype}")
    if x.ndim == 2:
        x = x.mean(axis=1)
    return int(rate), (x.astype(np.float32) / 32768.0)


def write_wav16(path: Path, rate: int, x: np.ndarray) -> None:
    from scipy.io import wavfile
    wavfile.write(str(path), rate, np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16))


def _git(*args: str) -> str:
    r = subprocess.run(["git", *args], cwd=str(ROOT), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout.strip()


FEATURE_CODE = ("server/src/audio/speech-features", "server/src/audio/decode-audio.ts")


def extractor_id(rev: str = "HEAD") -> str:
    """Names the feature code at `rev`: a hash of the git object ids of FEATURE_CODE (12 hex digits), so that
    commits elsewhere in server/src/audio keep the cache."""
    ids = [_git("rev-parse", f"{rev}:{p}") for p in FEATURE_CODE]
    return hashlib.sha1(" ".join(ids).encode()).hexdigest()[:12]


def _snapshot(rev: str) -> Path:
    """A read-only copy of server/ and shared/ at `rev` (with this checkout's node_modules), made once."""
    ident = extractor_id(rev)
    root = Path(tempfile.gettempdir()) / f"dnp-speech-features-{ident}"
    if (root / ".complete").exists():
        return root
    tmp = Path(tempfile.mkdtemp(prefix="dnp-speech-features-"))
    data = subprocess.run(["git", "archive", "--format=tar", rev, "server", "shared", "package.json", "tsconfig.json"],
                          cwd=str(ROOT), capture_output=True, check=True).stdout
    tar_path = tmp / "src.tar"
    tar_path.write_bytes(data)
    with tarfile.open(tar_path) as t:
        t.extractall(tmp)
    tar_path.unlink()
    (tmp / "node_modules").symlink_to(ROOT / "node_modules")
    script = tmp / "train" / "audio_expression" / SCRIPT.name
    script.parent.mkdir(parents=True)
    script.write_text(SCRIPT.read_text())
    (tmp / ".complete").write_text(rev)
    try:
        os.replace(tmp, root)
    except OSError:
        pass  # made by someone else meanwhile: theirs is as good
    return root


def extract(pairs: Sequence[Tuple[Path, Path]], rev: str = "HEAD") -> None:
    """Writes each (wav, npy) pair's feature frames [T, DIM] float32 in one Node process, with the feature code
    committed at `rev`."""
    if not pairs:
        return
    snap = _snapshot(rev)
    args = [str(Path(p).resolve()) for pair in pairs for p in pair]
    r = subprocess.run(["node", str(snap / "train" / "audio_expression" / SCRIPT.name), *args], cwd=str(snap),
                       capture_output=True, text=True, timeout=3600)
    if r.returncode != 0:
        raise RuntimeError(f"speech feature extraction failed: {r.stderr.strip()[-1500:]}")
