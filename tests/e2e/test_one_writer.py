"""One writer at a time for every change to a project (the Python API, the CLI, the studio's quick
edits and jobs), picks and re-rolls that change only the line the user names (lines with the same
words share their latents, not their choice), and a storyboard that is current after every change,
redrawn from the thumbnails without loading a model."""
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES, musivid
from test_studio_http import studio  # noqa: F401 - a fixture, used below
from musivid.actions import (add_variants, draw_thumbnails, optimize_project, pick_variant, preview_transition,
                             project_lines, render_project, retime_line, rewrite_line, storyboard_rows)
from musivid.errors import ProjectBusyError
from musivid.project import Project, locked

REPEAT = "the city lights burn through the night"  # lines 3, 5 and 8 of the `repeats` project


def snapshot(pdir: Path) -> dict[str, bytes]:
    """Every file of the project (the lock file aside: it is the lock's own business)."""
    return {str(p.relative_to(pdir)): p.read_bytes() for p in sorted(pdir.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def shown(pdir: Path) -> list[int | None]:
    return [li.shown for li in project_lines(Project.open(pdir))]


@pytest.fixture
def no_models(monkeypatch):
    """Loading a model fails: what must not load one passes."""
    from musivid.images.models import load

    def refuse(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(load, "load_clip", refuse)
    monkeypatch.setattr(load, "load_biggan", refuse)


# ---- 1. one writer ---------------------------------------------------------------------------------

def test_every_writer_is_refused_while_the_lock_is_held_and_nothing_changes(project_copy, tmp_path, no_models):
    pdir = project_copy
    before = snapshot(pdir)
    writers = {
        "retime_line": lambda: retime_line(pdir, 3, 10.4),
        "rewrite_line": lambda: rewrite_line(pdir, 5, "a volcano glows at dusk"),
        "pick_variant": lambda: pick_variant(pdir, 2, 1),
        "add_variants": lambda: add_variants(pdir, 3, 1),
        "optimize_project": lambda: optimize_project(pdir),
        "draw_thumbnails": lambda: draw_thumbnails(pdir),
        "render_project": lambda: render_project(pdir, tmp_path / "v.mp4"),
        "preview_transition": lambda: preview_transition(pdir, 2, tmp_path / "p.mp4"),  # refused too: see actions
    }
    with locked(pdir):
        for name, write in writers.items():
            with pytest.raises(ProjectBusyError, match=f"another musivid command \\(PID {os.getpid()}\\)"):
                write()
        r = musivid("pick", pdir, "--line", "2", "--variant", "1")
        assert r.returncode == 75 and f"PID {os.getpid()}" in r.stderr
    assert snapshot(pdir) == before  # project.json byte for byte, latents, thumbnails, storyboard
    assert not (tmp_path / "v.mp4").exists() and not (tmp_path / "p.mp4").exists()


def test_a_lock_held_by_another_process_names_its_pid(project_copy):
    pdir = project_copy
    before = (pdir / "project.json").read_bytes()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom musivid.project import locked\nwith locked(sys.argv[1]):\n"
         "    print('held', flush=True)\n    sys.stdin.readline()\n", str(pdir)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])))
    try:
        assert holder.stdout.readline().strip() == "held"
        for write in (lambda: retime_line(pdir, 3, 10.4), lambda: pick_variant(pdir, 2, 1)):
            with pytest.raises(ProjectBusyError, match=f"PID {holder.pid}\\)"):
                write()
    finally:
        holder.stdin.close()
        assert holder.wait(60) == 0
    assert (pdir / "project.json").read_bytes() == before
    assert pick_variant(pdir, 2, 1).changed == (2,)  # its lock released: the next writer goes ahead


def test_the_studio_answers_409_naming_the_pid_to_every_write(studio):  # noqa: F811
    s, c = studio
    before = snapshot(s.root)
    with locked(s.root):
        for path, body in (("/api/pick", {"line": 2, "variant": 1}), ("/api/retime", {"line": 4, "start": 13.0})):
            status, _, answer = c.post(path, body)
            assert status == 409, (path, answer)
            assert f"PID {os.getpid()}" in json.loads(answer)["error"]
        status, _, answer = c.post("/api/jobs", {"kind": "variants", "line": 3, "count": 1})
        assert status == 409 and f"PID {os.getpid()}" in json.loads(answer)["error"], answer  # not even started
    assert snapshot(s.root) == before
    status, _, answer = c.post("/api/pick", {"line": 2, "variant": 1})  # the lock released: it goes ahead
    assert status == 200 and json.loads(answer)["changed"] == [2], answer


# ---- 2. a choice per line --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def repeats(tmp_path_factory) -> Path:
    """The sample song made into a tiny project whose lines 5 and 8 repeat line 3's words (and
    line 6 line 2's, as in the sample): 2 variants of each of the 5 different texts."""
    from musivid.config import ModelConfig, OptimizeConfig, RenderConfig, RunSettings, TimingConfig
    from musivid.pipeline import make_video

    tmp = tmp_path_factory.mktemp("repeats")
    lines = [ln for ln in (SAMPLES / "demo.lrc").read_text().splitlines() if ln.startswith("[0")]
    lines = [ln.split("]")[0] + "]" + REPEAT if i in (4, 7) else ln for i, ln in enumerate(lines)]
    lrc = tmp / "repeats.lrc"
    lrc.write_text("\n".join(lines) + "\n")
    pdir = tmp / "song.musivid"
    settings = RunSettings(optimize=OptimizeConfig(steps=3, variants=2, cutouts=4), render=RenderConfig(fps=4, size=64),
                           models=ModelConfig(untrained=True), timing=TimingConfig(asr="none"), device="cpu")
    make_video(SAMPLES / "demo.mp3", lrc, settings=settings, project_dir=pdir, render=False)
    return pdir


@pytest.fixture
def repeats_copy(repeats, tmp_path) -> Path:
    return Path(shutil.copytree(repeats, tmp_path / "song.musivid"))


def test_pick_changes_the_named_line_only_unless_all_repeats(repeats_copy, no_models):
    pdir = repeats_copy
    lines = project_lines(Project.open(pdir))
    assert [lines[i].segment.text for i in (2, 4, 7)] == [REPEAT] * 3
    assert lines[2].repeats == (5, 8) and lines[1].repeats == (6,)
    was = shown(pdir)
    x = was[2]
    assert was[4] == was[7] == x  # the same words, no pick: the same best-scoring variant
    v = 1 - x
    board = (pdir / "storyboard.png").read_bytes()

    r = musivid("pick", pdir, "--line", "3", "--variant", v)
    assert r.returncode == 0, r.stderr
    assert (f"line 3: variant {v} picked (lines 5 and 8 repeat its words and keep variant {x}; --all-repeats "
            "changes them too)") in r.stdout
    now = shown(pdir)
    assert now == was[:2] + [v] + was[3:]  # line 3 only
    assert [li.picked for li in project_lines(Project.open(pdir))][2] is True
    rows = storyboard_rows(Project.open(pdir))
    assert [row.chosen for row in rows] == now and rows[2].chosen == v  # the storyboard drawn from the thumbnails
    assert (pdir / "storyboard.png").read_bytes() != board

    res = pick_variant(pdir, 5, v, all_repeats=True)
    assert (res.changed, res.kept) == ((3, 5, 8), ())
    assert shown(pdir) == was[:2] + [v, was[3], v, was[5], was[6], v]
    r = musivid("pick", pdir, "--line", "8", "--variant", x)
    assert r.returncode == 0, r.stderr
    assert f"line 8: variant {x} picked (lines 3 and 5 repeat its words and keep variant {v};" in r.stdout
    assert shown(pdir) == was[:2] + [v, was[3], v, was[5], was[6], x]
    r = musivid("pick", pdir, "--line", "3", "--variant", x, "--all-repeats")
    assert r.returncode == 0 and f"lines 3, 5, 8 (the same words): variant {x} picked" in r.stdout
    assert shown(pdir) == was


def test_variants_keep_the_repeats_images_unless_all_repeats(repeats_copy):
    pdir = repeats_copy
    was = shown(pdir)
    x = was[2]
    r = musivid("variants", pdir, "--line", "3", "--count", "1")
    assert r.returncode == 0, r.stderr
    assert (f"line 3: new variants 2 (lines 5 and 8 repeat its words and keep variant {x}; --all-repeats lets them "
            "show the new ones too)") in r.stdout
    lines = project_lines(Project.open(pdir))
    assert [len(lines[i].variants) for i in (2, 4, 7)] == [3, 3, 3]  # the latents are shared...
    assert lines[4].shown == lines[7].shown == x  # ...the choice is not: they show what they showed
    picks = json.loads((pdir / "project.json").read_text())["line_picks"]
    assert picks["4"] == picks["7"] == {"text": REPEAT, "variant": x}  # pinned before the re-roll
    assert [li.shown for i, li in enumerate(lines) if i not in (2, 4, 7)] == \
        [s for i, s in enumerate(was) if i not in (2, 4, 7)]
    res = add_variants(pdir, 5, 1, all_repeats=True)
    assert (res.variants, res.lines, res.kept) == ([3], (3, 5, 8), ())
    now = shown(pdir)
    assert now[2] == now[4] == now[7]  # they all show what line 5 shows now
    assert [row.chosen for row in storyboard_rows(Project.open(pdir))] == now


def test_an_old_project_keeps_its_pick_per_text(repeats_copy, no_models):
    pdir = repeats_copy
    data = json.loads((pdir / "project.json").read_text())
    x = shown(pdir)[2]
    v = 1 - x
    data.pop("line_picks", None)
    data["picked"] = {REPEAT: v}  # as older musivid recorded a pick
    (pdir / "project.json").write_text(json.dumps(data))
    lines = project_lines(Project.open(pdir))
    assert [(lines[i].shown, lines[i].picked) for i in (2, 4, 7)] == [(v, True)] * 3
    res = pick_variant(pdir, 5, x)
    assert (res.changed, res.kept) == ((5,), ((3, v), (8, v)))
    assert [shown(pdir)[i] for i in (2, 4, 7)] == [v, x, v]


def test_a_line_pick_is_dropped_with_a_warning_when_its_words_change(tmp_path, caplog):
    p = Project.open(tmp_path / "p.musivid")
    p.pick("old words", 2)
    p.pick_line(2, "old words", 1)
    assert (p.line_pick(2, "old words"), p.picked("old words", 2), p.picked("old words", 4)) == (1, 1, 2)
    with caplog.at_level(logging.WARNING, logger="musivid"):
        assert p.line_pick(2, "new words") is None
    assert "line 3 has new words since variant 1 was picked for it: that pick is dropped" in caplog.text
    assert p.line_pick(2, "old words") is None  # gone for good
    p.save()
    assert json.loads((tmp_path / "p.musivid" / "project.json").read_text())["line_picks"] == {}


# ---- 3. the storyboard is current after every change -----------------------------------------------

def test_the_storyboard_follows_a_retime_and_a_missing_thumbnail_is_an_empty_cell(project_copy, no_models, caplog):
    pdir = project_copy
    board = (pdir / "storyboard.png").read_bytes()
    retime_line(pdir, 3, 10.4)
    rows = storyboard_rows(Project.open(pdir))
    assert rows[2].time == 10.4 and (pdir / "storyboard.png").read_bytes() != board
    assert all(v.image is not None and v.image.shape == (128, 128, 3) for row in rows for v in row.variants)
    project_lines(Project.open(pdir))[0].variants[0].thumbnail.unlink()  # line 1's words are on no other line
    board = (pdir / "storyboard.png").read_bytes()
    with caplog.at_level(logging.WARNING, logger="musivid"):
        pick_variant(pdir, 1, 1)
    assert "1 thumbnail(s) missing or unreadable" in caplog.text
    rows = storyboard_rows(Project.open(pdir))
    assert sum(v.image is None for row in rows for v in row.variants) == 1
    assert rows[0].chosen == 1 and (pdir / "storyboard.png").read_bytes() != board
