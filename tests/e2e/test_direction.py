"""Creative direction from the command line: a lyric line's own image prompt (`words | prompt`),
`musivid prompt` on one line, --style / --image-prompt keying every line, --classes refused with a
suggestion. Tiny random models; the excerpt of the demo song used by test_project.py."""
import json
from pathlib import Path

import pytest

from conftest import demo_excerpt, musivid

BASE = ["--untrained", "--cutouts", "2", "--steps", "1", "--fps", "4", "--size", "64", "--asr", "none"]
PROMPT = "a volcano at night, oil painting"


def latent_bytes(pdir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (pdir / "latents").iterdir()}


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> tuple[Path, Path]:
    """10 s of the demo, its three LRC lines, the third with an image prompt after ` | `."""
    d = tmp_path_factory.mktemp("direction")
    mp3 = demo_excerpt(d / "song.mp3", 1.0, 10.0)
    lines = mp3.with_suffix(".lrc").read_text().splitlines()
    tag = lines[2].split("]", 1)[0] + "]"
    lines[2] = f"{tag}fire in the sky | {PROMPT}"
    lrc = d / "song.lrc"
    lrc.write_text("\n".join(lines) + "\n")
    return mp3, lrc


@pytest.fixture(scope="module")
def made(song, tmp_path_factory):
    """The song made into a video with burned-in captions: (the video, the burned captions' texts)."""
    import musivid.video.captions as captions

    burned = []
    real = captions.CaptionTrack

    def track(segments, *a, **k):
        burned.extend(s.text for s in segments)
        return real(segments, *a, **k)

    out = tmp_path_factory.mktemp("made") / "song.mp4"
    with pytest.MonkeyPatch.context() as m:
        m.setattr(captions, "CaptionTrack", track)
        r = musivid(*song, "-o", out, *BASE, "--captions", "line")
    assert r.returncode == 0, r.stderr
    return out, burned


def test_a_lines_prompt_shows_in_the_image_only(made):
    out, burned = made
    assert burned[2] == "fire in the sky"  # the burned-in caption: the words only
    srt = out.with_suffix(".srt").read_text()
    assert "fire in the sky\n" in srt and "volcano" not in srt and "|" not in srt
    data = json.loads(out.with_suffix(".musivid").joinpath("project.json").read_text())
    assert data["prompts"] == {"2": PROMPT}
    assert data["timing"]["segments"][2]["text"] == "fire in the sky"
    assert [m["text"] for m in data["latents"].values()].count(PROMPT) == 1  # its image: the prompt


def test_prompt_command_reoptimizes_that_line_only(project_copy):
    pdir = project_copy
    before = latent_bytes(pdir)
    r = musivid("prompt", pdir, "--line", "2", "a volcano at night [classes: volcano]")
    assert r.returncode == 0, r.stderr
    assert "optimizing 2 latent(s) (1 line(s))" in r.stderr  # its two variants
    after = latent_bytes(pdir)
    assert all(after[k] == v for k, v in before.items()) and len(after) == len(before) + 2
    data = json.loads((pdir / "project.json").read_text())
    assert data["prompt_edits"]["1"]["prompt"] == "a volcano at night [classes: volcano]"
    new = [m for k, m in data["latents"].items() if f"{k}.pt" not in before]
    assert {m["text"] for m in new} == {"a volcano at night\nclasses: 980"}
    from musivid.actions import storyboard_rows
    from musivid.project import Project

    rows = storyboard_rows(Project.open(pdir))  # the storyboard shows the prompt under the words
    assert rows[1].prompt == "a volcano at night [classes: volcano]" and rows[0].prompt is None
    r = musivid("prompt", pdir, "--line", "2", "--clear")  # back to its words: their latents are still there
    assert r.returncode == 0 and "nothing to do" in r.stderr, r.stderr
    assert latent_bytes(pdir) == after
    bad = musivid("prompt", pdir, "--line", "2", "lava [classes: voclano]")
    assert bad.returncode == 2 and "did you mean 'volcano'" in bad.stderr and len(bad.stderr.splitlines()) == 1


def test_a_lines_own_image_reoptimizes_that_line_only(project_copy, tmp_path, monkeypatch):
    from PIL import Image

    pdir, look = project_copy, tmp_path / "x.png"
    Image.new("RGB", (40, 30), (200, 40, 10)).save(look)
    monkeypatch.chdir(tmp_path)  # `musivid prompt` reads a relative [image:] from the current folder
    before = latent_bytes(pdir)
    r = musivid("prompt", pdir, "--line", "2", "sea [image: x.png]")
    assert r.returncode == 0 and "optimizing 2 latent(s) (1 line(s))" in r.stderr, r.stderr
    stored = json.loads((pdir / "project.json").read_text())["prompt_edits"]["1"]["prompt"]
    assert stored.startswith(f"sea [image: {look.resolve()}:1 sha256=")  # where it is, and what it held
    after = latent_bytes(pdir)
    assert all(after[k] == v for k, v in before.items()) and len(after) == len(before) + 2
    Image.new("RGB", (40, 30), (10, 40, 200)).save(look)  # a changed file, given again: that line again
    r = musivid("prompt", pdir, "--line", "2", "sea [image: x.png]")
    assert r.returncode == 0 and "optimizing 2 latent(s) (1 line(s))" in r.stderr, r.stderr
    bad = musivid("prompt", pdir, "--line", "3", "sea [image: gone.png]")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1, bad.stderr
    assert "line 3: [image:]" in bad.stderr and "gone.png: no such file" in bad.stderr


def test_unknown_class_is_refused_in_one_line_before_any_work(song, tmp_path):
    out = tmp_path / "song.mp4"
    r = musivid(*song, "-o", out, *BASE, "--classes", "seashor")
    assert r.returncode == 2
    assert r.stderr == "musivid: error: --classes 'seashor': not an ImageNet class name: did you mean 'seashore'?\n"
    assert not out.exists() and not out.with_suffix(".musivid").exists()


def test_the_studio_edits_a_lines_prompt_and_the_style(project_copy):
    from musivid.studio import Studio

    s = Studio(project_copy)
    before = latent_bytes(project_copy)
    s.start("prompt", line=1, text="a volcano at night")
    assert s.jobs.wait(300)
    job = s.jobs.current
    assert job.state == "done", (job.message, job.log)
    view = s.view()
    assert view["lines"][0]["prompt"] == "a volcano at night"
    assert view["lines"][0]["text"] == "a red fox runs through the snow"  # the caption keeps the words
    assert view["lines"][1]["prompt"] is None
    assert len(latent_bytes(project_copy)) == len(before) + 2, sorted(set(latent_bytes(project_copy)) - set(before))
    s.start("style", text="ink drawing")  # every line again: 7 targets (lines 2 and 6 repeat), two variants each
    assert s.jobs.wait(300)
    job = s.jobs.current
    assert job.state == "done" and "optimized 14 latent(s)" in job.message, (job.message, job.log)
    assert s.view()["settings"]["style"] == "ink drawing"
    after = latent_bytes(project_copy)
    assert all(after[k] == v for k, v in before.items()) and len(after) == len(before) + 16


def test_style_and_image_prompt_key_every_line(song, made, tmp_path):
    from PIL import Image

    out, look = made[0], tmp_path / "look.png"  # (the module's last use of `made`: it changes its project)
    Image.new("RGB", (40, 30), (200, 40, 10)).save(look)
    runs = [["--style", "oil painting"], ["--style", "oil painting", "--image-prompt", f"{look}:0.5"]]
    for extra in runs:  # each: a new target for every line (3 lines, one variant)
        r = musivid(*song, "-o", out, *BASE, *extra)
        assert r.returncode == 0 and "optimizing 3 latent(s) (3 line(s))" in r.stderr, r.stderr
    data = json.loads(out.with_suffix(".musivid").joinpath("project.json").read_text())
    assert data["settings"]["direction"]["style"] == "oil painting"
    r = musivid(*song, "-o", out, *BASE, *runs[-1])  # resumed: nothing to do
    assert r.returncode == 0 and "nothing to do" in r.stderr, r.stderr
    Image.new("RGB", (40, 30), (10, 40, 200)).save(look)  # a changed file: every line again
    r = musivid(*song, "-o", out, *BASE, *runs[-1])
    assert r.returncode == 0 and "optimizing 3 latent(s) (3 line(s))" in r.stderr, r.stderr
