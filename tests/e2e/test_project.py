"""Project directory: resume after SIGINT, invalidation after editing one line, variants / pick /
render, and the bad-input table (one clear line, exit code 2, no partial output).

Most tests work on 10 s of the demo song (its first three lines) made into one project per module
(`made`); a test that changes a project works on a copy of it (`project`)."""
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from conftest import SAMPLES, demo_excerpt, musivid, write_audio

BASE = ["--untrained", "--cutouts", "4", "--fps", "8", "--size", "64", "--asr", "none"]
T0, SECONDS = 1.0, 10.0  # the excerpt of the demo: its lines 1-3 (a red fox, waves, the city lights)
PROJECT = ["--steps", "8", "--variants", "2"]  # the module's project: 3 lines x 2 variants, 8 steps


def latents(pdir: Path) -> dict[str, dict]:
    data = json.loads((pdir / "project.json").read_text())
    return {k: torch.load(pdir / "latents" / f"{k}.pt", weights_only=True) for k in data["latents"]}


def latent_bytes(pdir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (pdir / "latents").iterdir()}


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> tuple[Path, Path]:
    """10 s of the demo (mp3) and its three LRC lines, shifted to the excerpt's start."""
    mp3 = demo_excerpt(tmp_path_factory.mktemp("song") / "song.mp3", T0, SECONDS)
    assert [l.split("]", 1)[1] for l in mp3.with_suffix(".lrc").read_text().splitlines()] == [
        "a red fox runs through the snow", "waves crash on a golden beach", "the city lights burn through the night"]
    return mp3, mp3.with_suffix(".lrc")


@pytest.fixture(scope="module")
def made(song, tmp_path_factory) -> tuple[Path, Path]:
    """The excerpt made into a video and its project (PROJECT settings), once per module; never
    changed (tests that change a project work on `project`, a copy)."""
    out = tmp_path_factory.mktemp("made") / "song.mp4"
    r = musivid(*song, "-o", out, *BASE, *PROJECT)
    assert r.returncode == 0, r.stderr
    return out, out.with_suffix(".musivid")


@pytest.fixture
def project(made, tmp_path) -> Path:
    """A copy of the module's project of this test's own."""
    return Path(shutil.copytree(made[1], tmp_path / made[1].name))


def _wait_for(proc: subprocess.Popen, found, what: str, timeout: float = 300):
    """Poll for an event (a file appearing) while the process runs; fail clearly if it ends first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found():
            return
        if proc.poll() is not None:
            pytest.fail(f"the process ended ({proc.returncode}) before {what}: {proc.stderr.read()[-2000:]}")
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"no {what} within {timeout} s")


@pytest.mark.slow  # ~35 s: `make test-all` (test_safety covers the signals in every run)
def test_sigint_keeps_finished_work_and_resumes(made, song, tmp_path):
    """Interrupt mid-optimization (once a checkpoint shows steps were done), rerun the same command:
    it resumes from the checkpoint (fewer steps run) and ends with exactly the latents of an
    uninterrupted run. Both runs work on a copy of the module's project (its beat analysis is
    reused) with another seed: new latents, optimized from scratch."""
    args = [*song, *BASE, "--variants", "1", "--steps", "40", "--seed", "1"]
    shutil.copytree(made[1], tmp_path / "ref.musivid")
    ref = musivid(*args, "-o", tmp_path / "ref.mp4", "-q")
    assert ref.returncode == 0, ref.stderr

    out = tmp_path / "run.mp4"
    pdir = Path(shutil.copytree(made[1], tmp_path / "run.musivid"))
    cmd = [sys.executable, "-m", "musivid", *map(str, args), "-o", str(out), "--checkpoint-every", "0.01"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    _wait_for(proc, lambda: (pdir / "checkpoint.pt").exists(), "the first checkpoint")  # some steps are done
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    ck = torch.load(pdir / "checkpoint.pt", weights_only=True)
    done = ck["state"]["step"]
    assert 0 < done < 40
    assert not out.exists()

    again = musivid(*args, "-o", out)
    assert again.returncode == 0, again.stderr
    assert f"resuming from checkpoint at step {done}/40" in again.stderr
    assert not (pdir / "checkpoint.pt").exists() and out.exists()
    a, b = latents(tmp_path / "ref.musivid"), latents(pdir)
    assert a.keys() == b.keys() and len(a) == 3 + 6  # this seed's 3, the module's 6
    for k in a:
        assert torch.equal(a[k]["z"], b[k]["z"]), k  # bit-identical: same steps, same order
        assert torch.equal(a[k]["cls"], b[k]["cls"]), k


def test_editing_one_line_reoptimizes_only_that_line(song, project, tmp_path):
    out = tmp_path / "song.mp4"  # its project: `project`, the copy
    before = latent_bytes(project)
    lrc = tmp_path / "song.lrc"
    lrc.write_text(song[1].read_text().replace("the city lights burn through the night", "a volcano glows at dusk"))
    r = musivid(song[0], lrc, "-o", out, *BASE, *PROJECT)
    assert r.returncode == 0, r.stderr
    assert "optimizing 2 latent(s) (1 line(s))" in r.stderr  # one line, its two variants
    after = latent_bytes(project)
    assert all(after[k] == v for k, v in before.items())  # nothing else touched
    assert len(after) == len(before) + 2
    # a render-only setting (fps) optimizes nothing
    r = musivid(song[0], lrc, "-o", out, *[a if a != "8" else "12" for a in BASE], *PROJECT)
    assert r.returncode == 0 and "nothing to do" in r.stderr


def test_variants_pick_render(project, tmp_path):
    pdir = project
    before = latent_bytes(pdir)
    r = musivid("variants", str(pdir), "--line", "1", "--count", "2")
    assert r.returncode == 0, r.stderr
    assert "new variants 2, 3" in r.stdout
    after = latent_bytes(pdir)
    assert all(after[k] == v for k, v in before.items()) and len(after) == len(before) + 2
    data = json.loads((pdir / "project.json").read_text())
    fox = [m for m in data["latents"].values() if m["text"].startswith("a red fox")]
    assert sorted(m["variant"] for m in fox) == [0, 1, 2, 3]

    r = musivid("pick", str(pdir), "--line", "1", "--variant", "3")
    assert r.returncode == 0, r.stderr
    assert json.loads((pdir / "project.json").read_text())["picked"]["a red fox runs through the snow"] == 3
    bad = musivid("pick", str(pdir), "--line", "1", "--variant", "9")
    assert bad.returncode == 2 and "has variants [0, 1, 2, 3]" in bad.stderr

    new = tmp_path / "rerender.mp4"
    r = musivid("render", str(pdir), "-o", str(new))
    assert r.returncode == 0, r.stderr
    assert "optimizing" not in r.stderr and new.exists()
    assert latent_bytes(pdir) == after
    assert (pdir / "storyboard.png").stat().st_size > 1000
    r = musivid("render", str(pdir), "-q")  # the project's own video (the -o render above was a one-off)
    assert r.returncode == 0, r.stderr
    chosen = json.loads((pdir / "project.json").read_text())["chosen"]
    assert chosen[0]["variant"] == 3  # the picked variant is the one shown


def test_render_overrides_are_for_that_render_only(project, tmp_path):
    pdir = project
    settings = json.loads((pdir / "project.json").read_text())["settings"]
    r = musivid("render", pdir, "-o", tmp_path / "small.mp4", "--fps", "6", "--size", "48", "--crf", "30", "-q")
    assert r.returncode == 0, r.stderr
    with av.open(str(tmp_path / "small.mp4")) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.average_rate) == (48, 6)
    assert json.loads((pdir / "project.json").read_text())["settings"] == settings  # unchanged
    r = musivid("render", pdir, "-o", tmp_path / "again.mp4", "-q")
    assert r.returncode == 0, r.stderr
    with av.open(str(tmp_path / "again.mp4")) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.average_rate) == (settings["render"]["size"], settings["render"]["fps"])


def test_an_existing_file_is_replaced_only_when_it_is_ours_or_asked(project, tmp_path):
    pdir = project
    mine = tmp_path / "mine.mp4"
    mine.write_bytes(b"someone else's video")
    r = musivid("render", pdir, "-o", mine)
    assert r.returncode == 2 and "exists" in r.stderr and "--overwrite" in r.stderr
    assert mine.read_bytes() == b"someone else's video"
    r = musivid("render", pdir, "-o", mine, "-y", "-q")
    assert r.returncode == 0 and mine.read_bytes()[4:8] == b"ftyp"
    # a one-off render (another -o, an excerpt) never becomes the project's: replacing it again needs -y too
    r = musivid("render", pdir, "-o", mine, "-q", "--start", "3", "--duration", "2")
    assert r.returncode == 2 and "exists and is not from this project" in r.stderr
    r = musivid("render", pdir, "-o", mine, "-q", "--start", "3", "--duration", "2", "-y")
    assert r.returncode == 0, r.stderr


def test_excerpt_renders_only_that_stretch_in_sync(project, sample, tmp_path):
    pdir = project
    out = tmp_path / "excerpt.mp4"
    fps, start = 8, 2.0
    r = musivid("render", pdir, "-o", out, "--start", start, "--duration", "4", "--fps", fps, "-q")
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        n = sum(1 for _ in c.decode(video=0))
        vdur, adur = float(v.duration * v.time_base), float(a.duration * a.time_base)
    assert n == 4 * fps and abs(vdur - 4.0) < 1 / fps and abs(adur - 4.0) < 1 / fps
    srt = out.with_suffix(".srt").read_text()
    # lines sung in 2-6 s of the song (the first began before: it is shown from the excerpt's start)
    inside = [l for l in sample["truth"]["lines"] if l["start"] - T0 < start + 4 and l["end"] - T0 > start]
    assert len(inside) == 2 and inside[0]["start"] - T0 < start
    assert srt.count("-->") >= len(inside) and "00:00:00," in srt


def test_pulse_kicks_the_picture_on_onsets(project, tmp_path):
    """--pulse adds motion on the percussive onsets: how much each frame differs from the
    pulse-free render follows the song's percussive envelope."""
    from musivid.song.rhythm import Rhythm

    pdir = project
    a = 2  # 6 s from here, at 24 fps
    clip = ["-q", "--start", a, "--duration", "6", "--fps", "24", "--crf", "10"]
    base = musivid("render", pdir, "-o", tmp_path / "p0.mp4", *clip)
    assert base.returncode == 0, base.stderr
    r = musivid("render", pdir, "-o", tmp_path / "p1.mp4", *clip, "--pulse", "1")
    assert r.returncode == 0, r.stderr

    def frames(p):  # 4x4-pixel means: H.264 noise averages out
        with av.open(str(p)) as c:
            x = np.stack([f.to_ndarray(format="rgb24").astype(float) for f in c.decode(video=0)])
        return x.reshape(len(x), 16, 4, 16, 4, 3).mean(axis=(2, 4))

    diff = np.abs(frames(tmp_path / "p1.mp4") - frames(tmp_path / "p0.mp4")).mean(axis=(1, 2, 3))  # per frame
    env = Rhythm.load(pdir / "rhythm.npz").envelope(24, round(SECONDS * 24))[a * 24:(a + 6) * 24]
    corr = float(np.corrcoef(diff, env)[0, 1])
    strong = env > 0.5
    print(f"pulse: change {diff[strong].mean():.2f} where the envelope is > 0.5, {diff[~strong].mean():.2f} "
          f"elsewhere; correlation with the envelope {corr:.2f}")
    assert corr > 0.6
    assert diff[strong].mean() > 2 * diff[~strong].mean()


def _bad_audio(tmp: Path, kind: str) -> Path:
    p = tmp / f"{kind}.mp3"
    if kind == "missing":
        return p
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "truncated":
        p.write_bytes((SAMPLES / "demo.mp3").read_bytes()[:200])
    elif kind == "cut":  # a real mp3 cut after ~5 s: its header still says 31.2 s
        data = (SAMPLES / "demo.mp3").read_bytes()
        p.write_bytes(data[: len(data) // 6])
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
    ("audio cut short", lambda t: [str(_bad_audio(t, "cut")), str(SAMPLES / "demo.lrc")], "the file says 31.20 s"),
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
    ("reactivity out of range", lambda t: [str(SAMPLES / "demo.mp3"), "--reactivity", "5"], "reactivity"),
    ("pulse negative", lambda t: [str(SAMPLES / "demo.mp3"), "--pulse", "-1"], "pulse"),
    ("walk out of range", lambda t: [str(SAMPLES / "demo.mp3"), "--walk", "9"], "walk must be from 0 to 3"),
    ("unknown intro", lambda t: [str(SAMPLES / "demo.mp3"), "--intro", "fade"], "fade"),
    ("crf out of range", lambda t: [str(SAMPLES / "demo.mp3"), "--crf", "60"], "crf"),
    ("variants 0", lambda t: [str(SAMPLES / "demo.mp3"), "--variants", "0"], "variants"),
    ("start past the end", lambda t: [str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.lrc"), "--start", "99"],
     "--start"),
    ("output is the lyrics", lambda t: [str(SAMPLES / "demo.mp3"), str(_write(t / "l.mp4", "[00:01.00]x")), "-o",
                                        str(t / "l.mp4")], "is an input"),
    ("variants of a non-project", lambda t: ["variants", str(t), "--line", "1"], "not a musivid project"),
    ("render of a non-project", lambda t: ["render", str(t)], "not a musivid project"),
    ("project is the audio", lambda t: [str(_copy(SAMPLES / "demo.mp3", t / "a.mp3")), str(SAMPLES / "demo.lrc"),
                                        "--project", str(t / "a.mp3")], "is an input"),
    ("project is a file", lambda t: [str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.lrc"), "--project",
                                     str(_write(t / "p.txt", "x"))], "not a project directory"),
    ("project holds other files", lambda t: [str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.lrc"), "--project",
                                             str(_write(t / "d" / "notes.txt", "x").parent)], "holds other files"),
    ("project parent missing", lambda t: [str(SAMPLES / "demo.mp3"), "--project", str(t / "no" / "p.musivid")],
     "does not exist"),
    ("whisper model path missing", lambda t: [str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.txt"), "--whisper-model",
                                              str(t / "nowhere")], "no such directory"),
    ("clip path missing", lambda t: [str(SAMPLES / "demo.mp3"), "--clip", str(t / "c.pt")], "no such file"),
    ("checkpoint-every 0", lambda t: [str(SAMPLES / "demo.mp3"), "--checkpoint-every", "0"], "checkpoint"),
    ("duration nan", lambda t: [str(SAMPLES / "demo.mp3"), "--duration", "nan"], "--duration"),
    ("seed negative", lambda t: [str(SAMPLES / "demo.mp3"), "--seed", "-1"], "seed"),
]


def _write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


@pytest.mark.parametrize("name,build,expect", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_line_and_exit_2(tmp_path, name, build, expect):
    args = build(tmp_path)
    project_cmd = args[0] in ("variants", "render")
    if "-o" not in args and not project_cmd:
        args += ["-o", str(tmp_path / "out.mp4")]
    untrained = [] if "--clip" in args else ["--untrained"]
    r = musivid(*args, *untrained, "--asr", "none", "-q") if not project_cmd else musivid(*args)
    if name == "output is the lyrics":
        assert (tmp_path / "l.mp4").read_text() == "[00:01.00]x"  # untouched
    errors = [l for l in r.stderr.splitlines() if "error" in l.lower()]
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert len(errors) == 1 and expect in errors[0], r.stderr
    assert not (tmp_path / "out.mp4").exists()
    assert not [p for p in tmp_path.rglob("*.part")]
    assert not [p for p in tmp_path.rglob("*.musivid")] and not [p for p in tmp_path.rglob(".lock")]  # nothing made


def test_long_lines_and_unordered_lrc_warn_but_work(song, tmp_path):
    lrc = _write(tmp_path / "w.lrc", "[00:08.00]second line\n[00:02.00]" + "very long line " * 60 + "\n")
    r = musivid(song[0], lrc, "-o", tmp_path / "w.mp4", *BASE, "--steps", "2")
    assert r.returncode == 0, r.stderr
    assert "out of order" in r.stderr and "longer than CLIP can read" in r.stderr


def test_video_file_as_audio_uses_its_audio_track(made, song, tmp_path):
    video = tmp_path / "first.mp4"  # the module's video: H.264 and AAC
    shutil.copy(made[0], video)
    r = musivid(video, song[1], "-o", tmp_path / "second.mp4", *BASE, "--steps", "1")
    assert r.returncode == 0, r.stderr
    m = re.search(r"first\.mp4: ([0-9.]+) s, 3 lines", r.stderr)
    assert m and abs(float(m[1]) - SECONDS) < 0.1, r.stderr  # the video's audio track, full length


def test_more_steps_continue_finished_lines(made, song, tmp_path):
    """Raising --steps continues every finished latent from its saved state: the result equals a
    run made with the higher step count from the start (the module's project)."""
    r = musivid(*song, *BASE, "--steps", "4", "--variants", "2", "-o", tmp_path / "a.mp4", "-q")  # PROJECT, 4 steps
    assert r.returncode == 0, r.stderr
    r = musivid(*song, *BASE, *PROJECT, "-o", tmp_path / "a.mp4")
    assert r.returncode == 0, r.stderr
    assert "continuing 6 latent(s) from step 4/8" in r.stderr
    a, b = latents(tmp_path / "a.musivid"), latents(made[1])
    assert a.keys() == b.keys() and len(a) == 6
    for k in a:
        assert a[k]["steps"] == b[k]["steps"] == 8
        assert torch.allclose(a[k]["z"], b[k]["z"], atol=1e-5) and torch.allclose(a[k]["cls"], b[k]["cls"], atol=1e-5)


def test_a_damaged_checkpoint_is_discarded_with_a_warning(song, tmp_path):
    pdir = tmp_path / "c.musivid"
    pdir.mkdir()
    (pdir / "checkpoint.pt").write_bytes(b"not a checkpoint")
    r = musivid(*song, "-o", tmp_path / "c.mp4", *BASE, "--steps", "2")
    assert r.returncode == 0, r.stderr
    assert "musivid: warning:" in r.stderr and "checkpoint.pt is unreadable" in r.stderr and "discarded" in r.stderr
