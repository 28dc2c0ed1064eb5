"""Project directory: resume after SIGINT, invalidation after editing one line, variants / pick /
render, and the bad-input table (one clear line, exit code 2, no partial output)."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import SAMPLES, run_cli, write_audio

BASE = ["--untrained", "--cutouts", "4", "--fps", "8", "--size", "64", "--asr", "none"]


def latents(pdir: Path) -> dict[str, dict]:
    data = json.loads((pdir / "project.json").read_text())
    return {k: torch.load(pdir / "latents" / f"{k}.pt", weights_only=True) for k in data["latents"]}


def test_sigint_keeps_finished_work_and_resumes(tmp_path):
    """Interrupt mid-optimization, rerun the same command: it resumes from the checkpoint (fewer
    steps run) and ends with exactly the latents of an uninterrupted run."""
    args = [str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.lrc"), *BASE, "--steps", "250"]
    ref = run_cli(*args, "-o", str(tmp_path / "ref.mp4"), "-q")
    assert ref.returncode == 0, ref.stderr

    out = tmp_path / "run.mp4"
    cmd = [sys.executable, "-m", "musivid", *args, "-o", str(out)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    seen = ""
    deadline = time.time() + 120
    while "optimizing" not in seen and time.time() < deadline:
        seen += proc.stderr.readline()
    time.sleep(2.0)  # let some steps run
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    pdir = tmp_path / "run.musivid"
    ck = torch.load(pdir / "checkpoint.pt", weights_only=True)
    done = ck["state"]["step"]
    assert 0 < done < 250
    assert not out.exists()

    again = run_cli(*args, "-o", str(out))
    assert again.returncode == 0, again.stderr
    assert f"resuming from checkpoint at step {done}/250" in again.stderr
    assert not (pdir / "checkpoint.pt").exists() and out.exists()
    a, b = latents(tmp_path / "ref.musivid"), latents(pdir)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.allclose(a[k]["z"], b[k]["z"], atol=1e-5), k
        assert torch.allclose(a[k]["cls"], b[k]["cls"], atol=1e-5), k


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    d = tmp_path_factory.mktemp("proj")
    lrc = d / "song.lrc"
    lrc.write_text((SAMPLES / "demo.lrc").read_text())
    out = d / "song.mp4"
    r = run_cli(str(SAMPLES / "demo.mp3"), str(lrc), "-o", str(out), *BASE, "--steps", "8", "--variants", "2")
    assert r.returncode == 0, r.stderr
    return d, lrc, out, d / "song.musivid"


def test_editing_one_line_reoptimizes_only_that_line(project, tmp_path):
    d, lrc, out, pdir = project
    before = {p.name: p.read_bytes() for p in (pdir / "latents").iterdir()}
    text = lrc.read_text().replace("mountains rise above the clouds", "a volcano glows at dusk")
    lrc.write_text(text)
    r = run_cli(str(SAMPLES / "demo.mp3"), str(lrc), "-o", str(out), *BASE, "--steps", "8", "--variants", "2")
    assert r.returncode == 0, r.stderr
    assert "optimizing 2 latent(s) (1 line(s))" in r.stderr  # one line, its two variants
    after = {p.name: p.read_bytes() for p in (pdir / "latents").iterdir()}
    assert all(after[k] == v for k, v in before.items())  # nothing else touched
    assert len(after) == len(before) + 2
    # a render-only setting (fps) optimizes nothing
    r = run_cli(str(SAMPLES / "demo.mp3"), str(lrc), "-o", str(out), *[a if a != "8" else "12" for a in BASE],
                "--steps", "8", "--variants", "2")
    assert r.returncode == 0 and "nothing to do" in r.stderr


def test_variants_pick_render(project):
    d, lrc, out, pdir = project
    before = {p.name: p.read_bytes() for p in (pdir / "latents").iterdir()}
    r = run_cli("variants", str(pdir), "--line", "1", "--count", "2")
    assert r.returncode == 0, r.stderr
    assert "new variants 2, 3" in r.stdout
    after = {p.name: p.read_bytes() for p in (pdir / "latents").iterdir()}
    assert all(after[k] == v for k, v in before.items()) and len(after) == len(before) + 2
    data = json.loads((pdir / "project.json").read_text())
    fox = [m for m in data["latents"].values() if m["text"].startswith("a red fox")]
    assert sorted(m["variant"] for m in fox) == [0, 1, 2, 3]

    r = run_cli("pick", str(pdir), "--line", "1", "--variant", "3")
    assert r.returncode == 0, r.stderr
    assert json.loads((pdir / "project.json").read_text())["picked"]["a red fox runs through the snow"] == 3
    bad = run_cli("pick", str(pdir), "--line", "1", "--variant", "9")
    assert bad.returncode == 2 and "has variants [0, 1, 2, 3]" in bad.stderr

    new = d / "rerender.mp4"
    t = time.time()
    r = run_cli("render", str(pdir), "-o", str(new))
    assert r.returncode == 0, r.stderr
    assert "optimizing" not in r.stderr and new.exists()
    assert {p.name: p.read_bytes() for p in (pdir / "latents").iterdir()} == after
    assert (pdir / "storyboard.png").stat().st_size > 1000
    print(f"render from project: {time.time() - t:.1f} s")


def _bad_audio(tmp: Path, kind: str) -> Path:
    p = tmp / f"{kind}.mp3"
    if kind == "missing":
        return p
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        p.write_bytes((SAMPLES / "demo.mp3").read_bytes()[:200])
    elif kind == "not_audio":
        p.write_text("hello\n" * 100)
    elif kind == "zero_length":
        p = write_audio(tmp / "zero.wav", __import__("numpy").zeros(0))
    return p


def _lyrics(tmp: Path, kind: str) -> Path:
    p = tmp / f"{kind}.txt"
    p.write_bytes({"empty": b"", "blank": b"\n \n\t\n", "binary": bytes(range(256)) * 4,
                   "latin1": "Caf\u00e9 au lait\n".encode("latin-1")}[kind])
    return p


CASES = [
    # (name, builder(tmp) -> extra args, text the one error line must contain)
    ("audio missing", lambda t: [str(_bad_audio(t, "missing")), str(SAMPLES / "demo.lrc")], "no such file"),
    ("audio empty", lambda t: [str(_bad_audio(t, "empty")), str(SAMPLES / "demo.lrc")], "empty"),
    ("audio truncated", lambda t: [str(_bad_audio(t, "truncated")), str(SAMPLES / "demo.lrc")], "audio"),
    ("audio is text", lambda t: [str(_bad_audio(t, "not_audio")), str(SAMPLES / "demo.lrc")], "not a readable audio"),
    ("audio zero length", lambda t: [str(_bad_audio(t, "zero_length")), str(SAMPLES / "demo.lrc")], "empty or shorter"),
    ("lyrics empty", lambda t: [str(SAMPLES / "demo.mp3"), str(_lyrics(t, "empty"))], "no lyric lines"),
    ("lyrics blank", lambda t: [str(SAMPLES / "demo.mp3"), str(_lyrics(t, "blank"))], "no lyric lines"),
    ("lyrics binary", lambda t: [str(SAMPLES / "demo.mp3"), str(_lyrics(t, "binary"))], "binary"),
    ("lyrics latin-1", lambda t: [str(SAMPLES / "demo.mp3"), str(_lyrics(t, "latin1"))], "not UTF-8"),
    ("lrc all past the end", lambda t: [str(SAMPLES / "demo.mp3"), str(_write(t / "late.lrc", "[09:00.00]too late\n"))],
     "past the end"),
    ("output dir missing", lambda t: [str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.lrc"), "-o", str(t / "no" / "x.mp4")],
     "does not exist"),
    ("output dir not writable", lambda t: [str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.lrc"), "-o", "/proc/x.mp4"],
     "not writable"),
    ("output not mp4", lambda t: [str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.lrc"), "-o", str(t / "x.avi")], ".mp4"),
    ("fps 0", lambda t: [str(SAMPLES / "demo.mp3"), "--fps", "0"], "fps"),
    ("size 7", lambda t: [str(SAMPLES / "demo.mp3"), "--size", "7"], "size"),
    ("negative steps", lambda t: [str(SAMPLES / "demo.mp3"), "--steps", "-3"], "steps"),
    ("unknown device", lambda t: [str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.lrc"), "--device", "tpu"], "device"),
    ("variants of a non-project", lambda t: ["variants", str(t), "--line", "1"], "not a musivid project"),
]


def _write(p: Path, text: str) -> Path:
    p.write_text(text)
    return p


@pytest.mark.parametrize("name,build,expect", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_line_and_exit_2(tmp_path, name, build, expect):
    args = build(tmp_path)
    if "-o" not in args and args[0] != "variants":
        args += ["-o", str(tmp_path / "out.mp4")]
    r = run_cli(*args, "--untrained", "--asr", "none", "-q") if args[0] != "variants" else run_cli(*args)
    errors = [l for l in r.stderr.splitlines() if "error" in l.lower()]
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert len(errors) == 1 and expect in errors[0], r.stderr
    assert not (tmp_path / "out.mp4").exists()
    assert not [p for p in tmp_path.rglob("*.part")]


def test_long_lines_and_unordered_lrc_warn_but_work(tmp_path):
    lrc = _write(tmp_path / "w.lrc", "[00:08.00]second line\n[00:02.00]" + "very long line " * 60 + "\n")
    r = run_cli(str(SAMPLES / "demo.mp3"), str(lrc), "-o", str(tmp_path / "w.mp4"), *BASE, "--steps", "2")
    assert r.returncode == 0, r.stderr
    assert "out of order" in r.stderr and "longer than CLIP can read" in r.stderr


def test_video_file_as_audio_uses_its_audio_track(tmp_path):
    first = tmp_path / "first.mp4"
    assert run_cli(str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.lrc"), "-o", str(first), *BASE,
                   "--steps", "1", "-q").returncode == 0
    r = run_cli(str(first), str(SAMPLES / "demo.lrc"), "-o", str(tmp_path / "second.mp4"), *BASE, "--steps", "1")
    assert r.returncode == 0, r.stderr
    assert "31.2" in r.stderr  # the video's audio track, full length


def test_more_steps_continue_finished_lines(tmp_path):
    """Raising --steps continues every finished latent from its saved state: the result equals a
    run made with the higher step count from the start."""
    args = [str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.lrc"), *BASE]
    r = run_cli(*args, "--steps", "6", "-o", str(tmp_path / "a.mp4"), "-q")
    assert r.returncode == 0, r.stderr
    r = run_cli(*args, "--steps", "10", "-o", str(tmp_path / "a.mp4"))
    assert r.returncode == 0, r.stderr
    assert "continuing 7 latent(s) from step 6/10" in r.stderr
    r = run_cli(*args, "--steps", "10", "-o", str(tmp_path / "b.mp4"), "-q")
    assert r.returncode == 0, r.stderr
    a, b = latents(tmp_path / "a.musivid"), latents(tmp_path / "b.musivid")
    assert a.keys() == b.keys()
    for k in a:
        assert a[k]["steps"] == b[k]["steps"] == 10
        assert torch.allclose(a[k]["z"], b[k]["z"], atol=1e-5) and torch.allclose(a[k]["cls"], b[k]["cls"], atol=1e-5)
