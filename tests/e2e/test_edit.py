"""musivid.actions on a real (tiny-model) project: re-timing a line optimizes nothing and moves its
keyframe and caption; re-wording a line optimizes that line only; a transition preview leaves the
project's outputs alone."""
import json
import math
from pathlib import Path

import pytest

from musivid.actions import preview_transition, project_lines, retime_line, rewrite_line, storyboard_rows
from musivid.errors import InputError
from musivid.actions import pick_variant, render_project
from musivid.project import Project


def latent_files(pdir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (pdir / "latents").iterdir()}


def test_retime_moves_the_keyframe_and_the_caption_and_optimizes_nothing(project_copy):
    pdir = project_copy
    before, data0 = latent_files(pdir), json.loads((pdir / "project.json").read_text())
    seg = retime_line(pdir, 3, 10.4)
    assert (seg.start, seg.end) == (10.4, 12.6)  # the next line still starts at 12.60
    data = json.loads((pdir / "project.json").read_text())
    assert data["timing"] == data0["timing"]  # the inputs' timing is kept; the edit beside it
    segs = Project.open(pdir).segments()
    assert segs[1].end == 10.4 and segs[2].start == 10.4
    kf0, kf = data0["keyframes"][2]["time"], data["keyframes"][2]["time"]
    assert kf0 < 9.5 and abs(kf - 10.4) <= 0.25  # at the new start, or the beat next to it
    assert [k["time"] for i, k in enumerate(data["keyframes"]) if i != 2] == \
        [k["time"] for i, k in enumerate(data0["keyframes"]) if i != 2]
    assert latent_files(pdir) == before  # nothing optimized again
    with pytest.raises(InputError, match="lines keep their order"):
        retime_line(pdir, 3, 13.0)
    assert json.loads((pdir / "project.json").read_text()) == data
    # the render uses it: the excerpt's captions have line 3 from the first frame at or after
    # 10.4 s (the frame rule of captions.py), counted from the excerpt's start at 8 s
    res = render_project(pdir, start=8.0, duration=4.0)
    fps = Project.open(pdir).settings.render.fps
    ms = round((math.ceil(10.4 * fps - 1e-9) / fps - 8.0) * 1000)
    assert f"00:00:0{ms // 1000},{ms % 1000:03d} --> 00:00:04,000\nthe city lights burn through the night" \
        in res.srt.read_text()


def test_rewrite_optimizes_that_line_only_and_writing_it_back_costs_nothing(project_copy):
    pdir = project_copy
    before, board = latent_files(pdir), (pdir / "storyboard.png").read_bytes()
    assert rewrite_line(pdir, 5, "  a volcano   glows at dusk ") == [0, 1]
    row = storyboard_rows(Project.open(pdir))[4]  # the storyboard shows the new words and their images
    assert row.text == "a volcano glows at dusk" and all(v.image is not None for v in row.variants)
    assert (pdir / "storyboard.png").read_bytes() != board
    after = latent_files(pdir)
    assert all(after[k] == v for k, v in before.items()) and len(after) == len(before) + 2
    lines = project_lines(Project.open(pdir))
    assert lines[4].segment.text == "a volcano glows at dusk"
    assert [v.variant for v in lines[4].variants] == [0, 1] and all(v.thumbnail.is_file() for v in lines[4].variants)
    res = pick_variant(pdir, 5, 0)
    assert (res.text, res.variant, res.changed, res.kept) == ("a volcano glows at dusk", 0, (5,), ())
    data = json.loads((pdir / "project.json").read_text())
    assert data["picked"]["a volcano glows at dusk"] == 0
    assert data["line_picks"]["4"] == {"text": "a volcano glows at dusk", "variant": 0}
    assert rewrite_line(pdir, 5, "mountains rise above the clouds") == [0, 1]
    assert latent_files(pdir) == after  # the original text's latents were still there
    assert not json.loads((pdir / "project.json").read_text())["edits"]
    with pytest.raises(InputError, match="empty"):
        rewrite_line(pdir, 5, "   ")
    with pytest.raises(InputError, match="lines 1 to 8"):
        rewrite_line(pdir, 9, "nine")


def test_preview_renders_the_glide_and_leaves_the_project_alone(project_copy, tmp_path):
    pdir = project_copy
    data0 = json.loads((pdir / "project.json").read_text())
    res = preview_transition(pdir, 2, tmp_path / "t.mp4", margin=0.5)
    kf = [k["time"] for k in data0["keyframes"]]
    fps = data0["settings"]["render"]["fps"]
    assert res.frames == round((kf[2] + 0.5) * fps) - round((kf[1] - 0.5) * fps)
    assert res.video.stat().st_size > 1000
    data = json.loads((pdir / "project.json").read_text())
    assert "outputs" not in data and "chosen" not in data  # not the project's video
