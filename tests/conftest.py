"""Shared fixtures: tiny random-init models (same classes as the real ones), sample paths, and
helpers that write synthetic audio with PyAV."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_models():
    from musivid.config import ModelConfig
    from musivid.models.load import load_biggan, load_clip

    cfg = ModelConfig(untrained=True)
    return load_clip(cfg), load_biggan(cfg)


@pytest.fixture(scope="session")
def sample():
    truth = json.loads((SAMPLES / "demo.truth.json").read_text())
    return {"mp3": SAMPLES / "demo.mp3", "txt": SAMPLES / "demo.txt", "lrc": SAMPLES / "demo.lrc", "truth": truth}


def write_audio(path: Path, samples: np.ndarray, sr: int = 22050, codec: str | None = None) -> Path:
    """Write mono float samples to `path` (format from the suffix) with PyAV; zero samples give a
    header-only WAV."""
    import av

    if len(samples) == 0:
        import wave

        with wave.open(str(path.with_suffix(".wav")), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sr)
        return path.with_suffix(".wav")

    codec = codec or {".wav": "pcm_s16le", ".mp3": "libmp3lame", ".m4a": "aac", ".flac": "flac"}[path.suffix]
    fmt = {"pcm_s16le": "s16", "flac": "s16"}.get(codec, "fltp")
    out = av.open(str(path), "w")
    st = out.add_stream(codec, rate=sr)
    st.layout = "mono"
    x = np.clip(samples, -1, 1).astype(np.float32)
    data = (x * 32767).astype(np.int16)[None] if fmt == "s16" else x[None]
    step = 4096
    for lo in range(0, len(x), step):
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, lo:lo + step]), format=fmt, layout="mono")
        fr.sample_rate = sr
        for p in st.encode(fr):
            out.mux(p)
    for p in st.encode(None):
        out.mux(p)
    out.close()
    return path


def click_track(bpm: float, duration: float, first: float = 0.5, sr: int = 22050, noise: float = 0.01):
    n = int(sr * duration)
    y = np.zeros(n, np.float32)
    truth = np.arange(first, duration - 0.05, 60.0 / bpm)
    k = np.arange(int(0.03 * sr))
    click = np.sin(2 * np.pi * 1000 * k / sr) * np.exp(-k / (0.005 * sr))
    for t in truth:
        i = int(t * sr)
        seg = click[: max(0, min(len(click), n - i))]
        y[i:i + len(seg)] += seg
    y += noise * np.random.default_rng(0).standard_normal(n)
    return y.astype(np.float32), truth


def run_cli(*args: str, env: dict | None = None, timeout: float = 600, cwd: Path | None = None):
    import subprocess

    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "musivid", *args], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=cwd)
