"""The run model (issue 22): one plan with every check once, a frozen session of typed lines, one
model cache, one-off renders that never become the project's video, and opening a project writes
nothing. Tiny random-weight models, a few steps."""
import dataclasses
import hashlib
from pathlib import Path

import pytest

from conftest import demo_excerpt

from musivid.config import ModelConfig, OptimizeConfig, RenderConfig, RunSettings, TimingConfig

SETTINGS = RunSettings(optimize=OptimizeConfig(steps=2, variants=1, cutouts=2), render=RenderConfig(fps=4, size=64),
                       models=ModelConfig(untrained=True), timing=TimingConfig(asr="none"), device="cpu")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """A 9 s excerpt of the demo made into a video (3 lines), with its project."""
    from musivid.pipeline import make_video

    root = tmp_path_factory.mktemp("run_model")
    song = demo_excerpt(root / "song.wav", 12.0, 9.0)
    res = make_video(song, song.with_suffix(".lrc"), root / "song.mp4", SETTINGS)
    return song, res


def test_one_run_parses_the_lyrics_once_and_resolves_the_device_once(tmp_path, monkeypatch):
    """`musivid song lyrics` in one direction: every check and resolution exactly once."""
    import musivid.config
    import musivid.pipeline
    import musivid.song.lyrics
    from musivid.pipeline import make_video

    calls = {"parse": 0, "device": 0}
    real_load, real_resolve = musivid.song.lyrics.load, musivid.config.resolve_device

    def load(path):
        calls["parse"] += 1
        return real_load(path)

    def resolve(name):
        calls["device"] += 1
        return real_resolve(name)

    monkeypatch.setattr(musivid.song.lyrics, "load", load)
    for mod in (musivid.config, musivid.pipeline):
        monkeypatch.setattr(mod, "resolve_device", resolve)
    song = demo_excerpt(tmp_path / "song.wav", 12.0, 6.0)
    res = make_video(song, song.with_suffix(".lrc"), tmp_path / "v.mp4", SETTINGS)
    assert res.frames == 24 and res.video.is_file()
    assert calls == {"parse": 1, "device": 1}
    calls.update(parse=0, device=0)
    from musivid.actions import render_project

    render_project(res.project, tmp_path / "again.mp4")
    assert calls == {"parse": 1, "device": 1}  # the re-opened project: once each too


def test_the_session_holds_typed_lines_and_the_title_is_a_line_of_its_own_kind(made):
    from musivid.pipeline import open_project
    from musivid.session import LineKind

    song, res = made
    s = open_project(res.project)
    assert [ln.number for ln in s.lines] == [1, 2, 3] and all(ln.kind is LineKind.LYRIC for ln in s.lines)
    assert [ln.segment.text for ln in s.lines] == [seg.text for seg in res.segments]
    assert all(len(ln.keys) == SETTINGS.optimize.variants for ln in s.lines)
    assert [ln.confidence for ln in s.lines] == [1.0, 1.0, 1.0]  # LRC: as given, kept in the project
    assert all(ln.language is None for ln in s.lines)  # Latin script: the script does not tell
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.lines = ()  # a session is data
    if s.title is not None:  # the intro's title image, when the schedule gives one
        assert s.title.kind is LineKind.TITLE and s.title.number is None and s.title.segment is None
        assert s.rows(True)[-1] is s.title and len(s.rows(True)) == len(s.keyframes) + 1
    with pytest.raises(Exception, match="--line 4: the project has lines 1 to 3"):
        s.line(4)


def test_opening_a_project_writes_nothing(made, tmp_path):
    import shutil

    from musivid.pipeline import open_project

    _, res = made
    pdir = Path(shutil.copytree(res.project, tmp_path / "p.musivid"))
    before = (pdir / "project.json").stat().st_mtime_ns, digest(pdir / "project.json")
    open_project(pdir)
    open_project(pdir, render=RenderConfig(fps=8, size=64))  # a session's own settings are not saved
    assert ((pdir / "project.json").stat().st_mtime_ns, digest(pdir / "project.json")) == before


def test_a_one_off_render_never_becomes_the_projects_video(made, tmp_path):
    """`render --start 1 --duration 2 -o excerpt.mp4`, then `render PROJECT`: the excerpt stays as it
    was, and the project's own video is the one rendered again."""
    from musivid.actions import render_project
    from musivid.project import Project

    _, res = made
    own = res.video
    excerpt = tmp_path / "excerpt.mp4"
    render_project(res.project, excerpt, start=1.0, duration=2.0)
    before = digest(excerpt)
    assert Project.open(res.project).output("video") == own.resolve()
    other = render_project(res.project, tmp_path / "other.mp4")  # a whole render to another -o: one-off too
    assert Project.open(res.project).output("video") == own.resolve()
    mtime = own.stat().st_mtime_ns
    again = render_project(res.project)
    assert again.video.resolve() == own.resolve() and own.stat().st_mtime_ns > mtime  # the project's video
    assert digest(excerpt) == before and other.video.is_file()
    with pytest.raises(Exception, match="exists and is not from this project"):
        render_project(res.project, excerpt, start=1.0, duration=2.0)  # not overwritten later without -y


def test_one_model_cache_serves_every_session(made, monkeypatch):
    from musivid.images.models import load
    from musivid.images.models.cache import ModelCache
    from musivid.pipeline import open_project

    loads = []
    real = load.load_biggan
    monkeypatch.setattr(load, "load_biggan", lambda *a, **k: loads.append(1) or real(*a, **k))
    cache = ModelCache()
    _, res = made
    for _ in range(2):
        s = open_project(res.project, models=cache)
        s.model("biggan")
    assert len(loads) == 1 and len(cache) == 1
