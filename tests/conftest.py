"""Shared fixtures: tiny random-init models (same classes as the real ones), sample paths, and
helpers that write synthetic audio with PyAV."""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from dataclasses import dataclass
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


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def musivid(*args) -> CliResult:
    """The command line, run in this process (no fresh interpreter, torch and models stay imported)."""
    from musivid.cli import run

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run([str(a) for a in args])
    return CliResult(code, out.getvalue(), err.getvalue())


def run_cli(*args: str, env: dict | None = None, timeout: float = 600, cwd: Path | None = None):
    """The command line in a fresh process: only where the process itself is under test (signals,
    start-up time, the console entry point)."""
    import subprocess

    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "musivid", *args], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=cwd)


def f_measure(detected: np.ndarray, truth: np.ndarray, window: float = 0.07) -> float:
    """Beat F-measure (mir_eval's definition: ±70 ms window, one-to-one matching)."""
    detected, truth = np.sort(np.asarray(detected)), np.sort(np.asarray(truth))
    if not len(detected) or not len(truth):
        return 0.0
    used = np.zeros(len(detected), bool)
    hits = 0
    for t in truth:
        d = np.abs(detected - t)
        d[used] = np.inf
        j = int(np.argmin(d))
        if d[j] <= window:
            used[j] = True
            hits += 1
    p, r = hits / len(detected), hits / len(truth)
    return 0.0 if hits == 0 else 2 * p * r / (p + r)


@pytest.fixture(scope="session")
def tiny_project(tmp_path_factory) -> Path:
    """The bundled sample (8 LRC lines) made into a project with tiny random-weight models: 2
    variants of every line, 3 steps, thumbnails drawn, not rendered (4 fps, 64 px when it is).
    Session-wide and never changed: a test that changes a project works on `project_copy`."""
    from musivid.config import ModelConfig, OptimizeConfig, RenderConfig, RunSettings, TimingConfig
    from musivid.pipeline import make_video

    pdir = tmp_path_factory.mktemp("tiny_project") / "song.musivid"
    settings = RunSettings(optimize=OptimizeConfig(steps=3, variants=2, cutouts=4), render=RenderConfig(fps=4, size=64),
                           models=ModelConfig(untrained=True), timing=TimingConfig(asr="none"), device="cpu")
    make_video(SAMPLES / "demo.mp3", SAMPLES / "demo.lrc", settings=settings, project_dir=pdir, render=False)
    return pdir


@pytest.fixture
def project_copy(tiny_project, tmp_path) -> Path:
    """A copy of `tiny_project` of this test's own (its video would be written beside it)."""
    import shutil

    return Path(shutil.copytree(tiny_project, tmp_path / "song.musivid"))
