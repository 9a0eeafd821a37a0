"""Augmented copies of each clip's audio, made once and cached with their feature frames: gain, additive noise,
speed/pitch change by resampling (the labels are time-scaled to match) and an Opus round trip through libopus
(opus_roundtrip.mjs, node-av), the codec a WebRTC caller's voice arrives in; and pauses inserted into the
speech (data.py labels them with the speaker's mouth at rest)."""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, List, Optional, Tuple

import numpy as np

from .features import EXTRACTOR, ROOT, extract, extractor_id, read_wav16, write_wav16

OPUS_SCRIPT = Path(__file__).resolve().parent / "opus_roundtrip.mjs"


@dataclass(frozen=True)
class Variant:
    name: str
    gain_db: float = 0.0
    noise_snr_db: Optional[float] = None   # None: no noise
    speed: float = 1.0                     # > 1: faster and higher
    opus_bps: Optional[int] = None         # None: no Opus round trip
    pause_at: Optional[float] = None       # a pause inserted at this fraction of the clip (None: none)
    pause_s: float = 0.0                   # its length in seconds (a faint noise floor, the mouth at rest)


VARIANTS: List[Variant] = [
    Variant("clean"),
    Variant("gain-12", gain_db=-12.0),
    Variant("noise20", noise_snr_db=20.0, gain_db=3.0),
    Variant("noise10", noise_snr_db=10.0),
    Variant("speed0.9", speed=0.9),
    Variant("speed1.1", speed=1.1, gain_db=-6.0),
    Variant("opus24k", opus_bps=24000),
    Variant("opus12k", opus_bps=12000, gain_db=-6.0),
    Variant("mix", speed=0.95, noise_snr_db=25.0, opus_bps=20000),
    Variant("mix2", speed=1.05, noise_snr_db=15.0, opus_bps=32000, gain_db=-3.0),
    # Most clips are speech from end to end: pauses teach "silence → mouth at rest" and the transitions.
    Variant("pause", pause_at=0.35, pause_s=0.8),
    Variant("pause2", pause_at=0.7, pause_s=1.2, opus_bps=24000, noise_snr_db=30.0),
]
PAUSE_FLOOR_DBFS = -60.0


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return (x / (np.std(x) + 1e-12)).astype(np.float32)


def resample_speed(x: np.ndarray, speed: float) -> np.ndarray:
    """Plays x `speed` times faster (duration / speed, pitch × speed)."""
    from scipy.signal import resample_poly
    r = Fraction(1.0 / speed).limit_denominator(100)
    return resample_poly(x, r.numerator, r.denominator).astype(np.float32)


def opus_round_trip(src: Path, dst: Path, bps: int) -> None:
    r = subprocess.run(["node", str(OPUS_SCRIPT), str(src), str(dst), str(bps)], cwd=str(ROOT),
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError(f"Opus round trip of {src} failed: {r.stderr.strip()[-1500:]}")


def make_variant(wav: Path, v: Variant, out_wav: Path, seed: int) -> None:
    rate, x = read_wav16(wav)
    rng = np.random.default_rng(seed)
    if v.speed != 1.0:
        x = resample_speed(x, v.speed)
    if v.pause_at is not None:
        at = int(round(v.pause_at * len(x)))
        floor = pink_noise(int(round(v.pause_s * rate)), rng) * (10 ** (PAUSE_FLOOR_DBFS / 20))
        x = np.concatenate([x[:at], floor, x[at:]])
    if v.noise_snr_db is not None:
        rms = float(np.sqrt(np.mean(x ** 2))) + 1e-9
        x = x + pink_noise(len(x), rng) * rms / (10 ** (v.noise_snr_db / 20))
    x = x * (10 ** (v.gain_db / 20))
    write_wav16(out_wav, rate, x)
    if v.opus_bps is not None:
        tmp = out_wav.with_name(out_wav.stem + ".pre-opus.wav")
        out_wav.replace(tmp)
        try:
            opus_round_trip(tmp, out_wav, v.opus_bps)
        finally:
            tmp.unlink(missing_ok=True)


def cache_meta(v: Variant, ident: str) -> dict:
    """The description cached beside a variant's feature frames (cache/<variant>.json); a cached entry is reused
    only when it equals this."""
    meta = dict(asdict(v), extractor=f"{EXTRACTOR}@{ident}")
    if v.pause_at is None:  # the description of a variant without a pause (as cached before pauses existed)
        del meta["pause_at"], meta["pause_s"]
    return meta


def build_cache(dataset: Path, cache: Path, variants: List[Variant], seed: int = 0,
                log: Callable[[str], None] = print) -> None:
    """cache/<variant>.npy (feature frames) and .json (the variant) for one dataset; entries already there with
    the same description are kept."""
    cache.mkdir(parents=True, exist_ok=True)
    wav = dataset / "audio.wav"
    if not wav.exists():
        raise FileNotFoundError(f"{dataset}: no audio.wav (was it prepared from a clip with sound?)")
    ident = extractor_id()
    todo: List[Tuple[Path, Path]] = []
    metas = []
    for i, v in enumerate(variants):
        meta_path, npy = cache / f"{v.name}.json", cache / f"{v.name}.npy"
        meta = cache_meta(v, ident)
        if meta_path.exists() and npy.exists() and json.loads(meta_path.read_text()) == meta:
            continue
        out_wav = cache / f"{v.name}.{os.getpid()}.wav"  # private to this process
        make_variant(wav, v, out_wav, seed * 1000 + i)
        todo.append((out_wav, npy))
        metas.append((meta_path, meta))
    try:
        extract(todo)
    finally:
        for w, _ in todo:
            w.unlink(missing_ok=True)
    for meta_path, meta in metas:
        meta_path.write_text(json.dumps(meta))
    if metas:
        log(f"{dataset.name}: {', '.join(m['name'] for _, m in metas)}")
