"""Issue 24: one owner per output file, every resource and input check before any work, and
accurate messages for odd input files. In-process CLI runs with tiny random models."""
import json
import os
import shutil
from pathlib import Path

import av
import pytest

from conftest import click_song, musivid

FAST = ["--untrained", "--steps", "1", "--cutouts", "2", "--fps", "4", "--size", "32", "--asr", "none", "-q"]
LRC = "[00:00.50]a red fox in the snow\n[00:03.00]a lighthouse in the storm\n"


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return click_song(tmp_path_factory.mktemp("song"), LRC)


@pytest.fixture(scope="module")
def made(song, tmp_path_factory):
    d = tmp_path_factory.mktemp("made") / "base"
    d.mkdir()
    r = musivid(*song, "-o", d / "v.mp4", *FAST)
    assert r.returncode == 0, r.stderr
    return d / "v.mp4", d / "v.musivid"


def one_line(r, code=2):
    assert r.returncode == code and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    return r.stderr


def test_a_second_run_to_the_same_output_is_refused_naming_the_pid(song, made, tmp_path):
    """A run holding the claim of OUT (here: this test, as another process would) makes a second
    run to OUT, with another project, fail in one line naming the holder's PID; the file is kept."""
    from musivid.project.provenance import claimed

    out = tmp_path / "v.mp4"
    shutil.copy(made[0], out)
    before = out.read_bytes()
    with claimed(out):
        r = musivid(*song, "-o", out, "--project", tmp_path / "other.musivid", "-y", *FAST)
    err = one_line(r, 75)
    assert f"PID {os.getpid()}" in err and str(out) in err
    assert out.read_bytes() == before and not (tmp_path / "other.musivid").exists()
    assert not (tmp_path / ".v.mp4.claim").exists()  # released with the holder
    r = musivid(*song, "-o", out, "--project", tmp_path / "other.musivid", *FAST)  # after it: not its file
    assert r.returncode == 2 and "exists: pass -y/--overwrite" in r.stderr, r.stderr


def test_a_claim_left_by_a_dead_process_is_taken_over(song, tmp_path):
    out = tmp_path / "v.mp4"
    (tmp_path / ".v.mp4.claim").write_text("999999\n")  # no lock held on it: its holder is gone
    r = musivid(*song, "-o", out, *FAST)
    assert r.returncode == 0, r.stderr
    assert out.is_file() and not (tmp_path / ".v.mp4.claim").exists()


def test_a_copied_projects_render_leaves_the_originals_video_alone(made, tmp_path):
    """`cp -a base/v.musivid copy.musivid; musivid render copy.musivid` writes copy.mp4: the path
    the copy recorded names the original's video, which carries the original's id."""
    out, pdir = made
    copy = Path(shutil.copytree(pdir, tmp_path / "copy.musivid"))
    before = out.read_bytes()
    r = musivid("render", copy, "-q")
    assert r.returncode == 0, r.stderr
    assert out.read_bytes() == before
    assert (tmp_path / "copy.mp4").is_file() and (tmp_path / "copy.srt").is_file()
    r = musivid("render", copy, "-o", out, "-q")  # naming it: refused without -y
    assert r.returncode == 2 and "not from this project" in r.stderr, r.stderr
    assert out.read_bytes() == before
    r = musivid("render", pdir, "-q")  # the original still owns its video: its rerun replaces it
    assert r.returncode == 0, r.stderr


def test_the_video_carries_its_projects_id(made):
    from musivid.project.provenance import owns, project_id

    out, pdir = made
    with av.open(str(out)) as c:
        assert json.loads(c.metadata["description"])["project"] == project_id(pdir)
    assert owns(pdir, out) and not owns(pdir.with_name("copy.musivid"), out)


def test_more_lines_than_frames_are_refused_before_any_work(song, tmp_path, monkeypatch):
    from musivid.runner import optimize_pending

    lyrics = tmp_path / "many.txt"
    lyrics.write_text("".join(f"line number {i}\n" for i in range(10_000)))
    called = []
    monkeypatch.setattr("musivid.runner.optimize_pending", lambda *a, **k: called.append(1) or optimize_pending(*a, **k))
    r = musivid(song[0], lyrics, "-o", tmp_path / "v.mp4", *FAST)
    err = one_line(r)
    assert "10000 lyric lines" in err and "24 frames" in err and "at most 12 lines" in err, err
    assert not called and sorted(p.name for p in tmp_path.iterdir()) == ["many.txt"]


def test_the_micro_batch_is_chosen_to_fit_memory(monkeypatch):
    import torch

    from musivid import pipeline
    from musivid.config import Compute, ModelConfig, OptimizeConfig, RunSettings
    from musivid.errors import InputError
    from musivid.images import optimize as opt

    s = RunSettings(optimize=OptimizeConfig(cutouts=32, variants=2), models=ModelConfig(untrained=True))
    cpu = Compute(torch.device("cpu"))
    need = opt.step_memory(s.models, 32, "cpu")
    monkeypatch.setattr(opt, "available_memory", lambda device: need.total(10))
    assert pipeline.fit_memory(s, cpu, 4).optimize.micro_batch == 0  # 10 latents: all at once
    assert pipeline.fit_memory(s, cpu, 100).optimize.micro_batch == 10
    monkeypatch.setattr(opt, "available_memory", lambda device: need.total(1) - 1)
    with pytest.raises(InputError, match="--cutouts 32: one latent's optimizer step needs about"):
        pipeline.fit_memory(s, cpu, 4)
    full = opt.step_memory(ModelConfig(clip="ViT-B-32/openai"), 32, "cuda")
    assert 600 * 2**20 < full.per_latent < 900 * 2**20  # the census's 482 MiB per latent, with the peak's margin


@pytest.mark.parametrize("make", ["passwd", "truncated"])
def test_a_bad_font_is_refused_before_any_output_or_project(song, tmp_path, make):
    font = tmp_path / "f.ttf"
    if make == "passwd":
        font = "/etc/passwd"
    else:
        font.write_bytes(open("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "rb").read()[:20000]
                         if os.path.exists("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf") else b"\0\1\0\0" * 50)
    out = tmp_path / "o" / "v.mp4"
    out.parent.mkdir()
    r = musivid(*song, "-o", out, "--font", font, *FAST)
    assert "--font" in one_line(r)
    assert list(out.parent.iterdir()) == []


def test_a_bad_font_is_refused_by_render_before_any_output(made, tmp_path):
    out, pdir = made
    copy = shutil.copytree(pdir, tmp_path / "p.musivid")
    r = musivid("render", copy, "--font", "/etc/passwd", "-q")
    assert "--font /etc/passwd" in one_line(r) and not (tmp_path / "p.mp4").exists()


@pytest.mark.parametrize("opt,value", [("--duration", "1e308"), ("--start", "1e308")])
def test_huge_numbers_are_one_line(song, made, tmp_path, opt, value):
    r = musivid(*song, "-o", tmp_path / "v.mp4", opt, value, *FAST)
    assert opt in one_line(r)
    r = musivid("render", made[1], "-o", tmp_path / "r.mp4", opt, value, "-q")
    assert r.returncode == 2 and "Traceback" not in r.stderr and opt in r.stderr.strip().splitlines()[-1], r.stderr
    assert not (tmp_path / "r.mp4").exists()


def test_odd_input_files_are_named_for_what_they_are(song, tmp_path):
    fifo = tmp_path / "lyrics.txt"
    os.mkfifo(fifo)
    r = musivid(song[0], fifo, "-o", tmp_path / "v.mp4", *FAST)
    assert "is a pipe, not a file: save the lyrics to a file" in one_line(r)
    loop = tmp_path / "loop.txt"
    os.symlink(tmp_path / "loop2.txt", loop)
    os.symlink(loop, tmp_path / "loop2.txt")
    r = musivid(song[0], loop, "-o", tmp_path / "v.mp4", *FAST)
    assert "is a symlink loop" in one_line(r)
    r = musivid(loop, song[1], "-o", tmp_path / "v.mp4", *FAST)
    assert "is a symlink loop" in one_line(r) and "audio" in r.stderr
    afifo = tmp_path / "song.mp3"
    os.mkfifo(afifo)
    r = musivid(afifo, song[1], "-o", tmp_path / "v.mp4", *FAST)
    assert "is a pipe, not a file: save the audio to a file" in one_line(r)
    assert not (tmp_path / "v.musivid").exists()


def test_a_directory_in_place_of_a_latent_file_is_one_line_before_any_work(song, made, tmp_path):
    out, pdir = made
    copy = Path(shutil.copytree(pdir, tmp_path / "p.musivid"))
    lat = sorted((copy / "latents").glob("*.pt"))[0]
    lat.unlink()
    lat.mkdir()
    r = musivid(*song, "-o", tmp_path / "p.mp4", "--project", copy, *FAST)
    assert "is not a latent file" in one_line(r) and not (tmp_path / "p.mp4").exists()
