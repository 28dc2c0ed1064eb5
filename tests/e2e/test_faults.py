"""A disk that refuses a write (issue 24), end to end: wherever it happens (a latent, the project's
index, the checkpoint, the video), the command ends in one `musivid: error:` line naming the file,
with no traceback and no temp file left, and the same command run again optimizes nothing that had
finished. The full disk is injected (files.write_file failing after N writes) or real (a small
tmpfs, where this runs as root)."""
import errno
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import click_track, musivid, write_audio
from musivid import files

FAST = ["--untrained", "--cutouts", "2", "--fps", "8", "--size", "64", "--asr", "none", "--steps", "3", "--seed", "5"]
LRC = "[00:00.50]a red fox runs through the snow\n[00:02.50]a lighthouse in the storm\n[00:04.50]fireworks over the sea\n"


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    d = tmp_path_factory.mktemp("song")
    y, _ = click_track(120, 6.0)
    lrc = d / "song.lrc"
    lrc.write_text(LRC)
    return write_audio(d / "song.mp3", y), lrc


def _parts(root: Path) -> list[Path]:
    return sorted(root.rglob("*.part"))


def _latents(pdir: Path) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in (pdir / "latents").glob("*.pt")}


def _one_error(r) -> str:
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    [line] = [x for x in r.stderr.splitlines() if "error" in x.lower()]
    assert line.startswith("musivid: error: ") and "nothing finished is lost" in line
    return line


def _refuse(monkeypatch, when):
    """files.write_file failing with ENOSPC (after writing half) for the first write `when(path,
    latents written so far)` is true about, and for every write after it (the disk stays full)."""
    real, state = files.write_file, {"latents": 0, "full": False}

    def write(path, data):
        if state["full"] or when(path, state["latents"]):
            state["full"] = True
            path.write_bytes(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, data)
        state["latents"] += path.parent.name == "latents"

    monkeypatch.setattr(files, "write_file", write)


@pytest.mark.parametrize("where", ["the second latent", "the index after every latent"])
def test_a_full_disk_while_saving_latents_loses_no_finished_latent(song, tmp_path, monkeypatch, where):
    out = tmp_path / "v.mp4"
    pdir = tmp_path / "v.musivid"
    if where == "the second latent":
        _refuse(monkeypatch, lambda path, latents: path.parent.name == "latents" and latents == 1)
    else:
        _refuse(monkeypatch, lambda path, latents: path.name.startswith(".project.") and latents == 3)
    line = _one_error(musivid(*song, "-o", out, *FAST))
    assert "no space left on the device" in line and "to write" in line
    written = _latents(pdir)
    if where == "the second latent":
        assert f"{pdir / 'latents'}/" in line and "cannot write the finished latent of line" in line
        assert len(written) == 1
    else:
        assert f"{pdir / 'project.json'}: cannot write the project's index" in line
        assert len(written) == 3
    assert json.loads((pdir / "project.json").read_text())["latents"] == {}  # the index never listed them
    assert not _parts(tmp_path) and not out.exists()
    monkeypatch.undo()  # space again
    r = musivid(*song, "-o", out, *FAST)
    assert r.returncode == 0, r.stderr
    assert f"{len(written)} finished latent file(s) missing from {pdir / 'project.json'}" in r.stderr
    if len(written) == 3:
        assert "all lines already optimized: nothing to do" in r.stderr
    else:
        assert "optimizing 2 latent(s)" in r.stderr
    after = _latents(pdir)
    assert all(after[k] == v for k, v in written.items())  # not optimized again
    assert len(json.loads((pdir / "project.json").read_text())["latents"]) == 3 and out.is_file()


@pytest.fixture
def small(tmp_path):
    """A 64 KB tmpfs (root only; skipped, with the reason, where mounting is refused)."""
    d = tmp_path / "small"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs ({r.stderr.strip() or 'not root'}): the injected full disk covers it")
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)


def test_a_video_on_a_full_disk_is_one_line_and_the_project_is_kept(song, tmp_path, small):
    pdir = tmp_path / "v.musivid"
    line = _one_error(musivid(*song, "-o", small / "v.mp4", "--project", pdir, *FAST))
    assert f"{small / 'v.mp4'}: cannot write the video (no space left on the device; " in line
    assert "written when it failed" in line
    assert os.listdir(small) == [] and not _parts(tmp_path)
    assert len(json.loads((pdir / "project.json").read_text())["latents"]) == 3  # every line kept
    r = musivid("render", pdir, "-o", tmp_path / "v.mp4", "-q")
    assert r.returncode == 0, r.stderr


def test_a_project_on_a_full_disk_is_one_line_and_resumes_elsewhere(song, tmp_path, small):
    line = _one_error(musivid(*song, "-o", small / "v.mp4", *FAST))
    assert f"{small / 'v.musivid'}/" in line and "no space left on the device" in line
    assert not _parts(small)
    written = _latents(small / "v.musivid")
    pdir = tmp_path / "v.musivid"
    shutil.copytree(small / "v.musivid", pdir)
    r = musivid(*song, "-o", tmp_path / "v.mp4", *FAST)
    assert r.returncode == 0, r.stderr
    assert all(_latents(pdir)[k] == v for k, v in written.items())
    if written:
        assert f"optimizing {3 - len(written)} latent(s)" in r.stderr or "nothing to do" in r.stderr
