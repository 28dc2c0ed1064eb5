"""Line edits kept in the project (the studio's re-timed and re-worded lines): applied on top of
the inputs' timing, dropped with a warning when the inputs change under them."""
import json
import logging

from musivid.project import Project
from musivid.song.segments import Segment, from_times


def project(tmp_path, texts=("a", "b", "c"), starts=(1.0, 4.0, 8.0)) -> Project:
    p = Project.open(tmp_path / "p.musivid")
    p.set_timing({"k": 1}, "lrc", from_times(list(texts), list(starts), 12.0), 12.0)
    return p


def test_edits_apply_on_top_of_the_timing_and_survive_a_reload(tmp_path):
    p = project(tmp_path)
    p.edit_line(1, text="bee", start=5.0)
    p.edit_line(2, start=9.5)
    p.save()
    q = Project.open(tmp_path / "p.musivid")
    assert [(s.text, s.start, s.end) for s in q.segments()] == [("a", 1.0, 5.0), ("bee", 5.0, 9.5), ("c", 9.5, 12.0)]
    assert [s.text for s in q.timed_segments()] == ["a", "b", "c"]  # the inputs' timing is kept as it was
    # setting a line back to what the inputs say removes its edit
    q.edit_line(1, text="b", start=4.0)
    q.edit_line(2, start=8.0)
    assert json.loads((tmp_path / "p.musivid" / "project.json").read_text())["edits"]  # saved before
    q.save()
    assert not json.loads((tmp_path / "p.musivid" / "project.json").read_text())["edits"]
    assert q.segments() == q.timed_segments()


def test_an_edit_is_dropped_when_its_line_changed_in_the_inputs(tmp_path, caplog):
    p = project(tmp_path)
    p.edit_line(1, text="bee")
    p.edit_line(2, start=9.0)
    p.set_timing({"k": 2}, "lrc", from_times(["a", "B!", "c"], [1.0, 4.0, 8.0], 12.0))  # line 2 re-written in the LRC
    with caplog.at_level(logging.WARNING, logger="musivid"):
        segs = p.segments()
    assert [s.text for s in segs] == ["a", "B!", "c"] and segs[2].start == 9.0  # line 3's edit still applies
    assert "line 2 changed in the lyrics" in caplog.text
    # a start that no longer fits between its neighbours is dropped too (the run goes on)
    p.set_timing({"k": 3}, "lrc", [Segment(0, "a", 1.0, 4.0), Segment(1, "B!", 4.0, 8.0), Segment(2, "c", 8.0, 12.0)])
    p.edit_line(1, start=7.0)
    p.set_timing({"k": 4}, "lrc", [Segment(0, "a", 1.0, 4.0), Segment(1, "B!", 4.0, 6.0), Segment(2, "c", 6.0, 12.0)])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="musivid"):
        segs = p.segments()
    assert [s.start for s in segs] == [1.0, 4.0, 6.0]
    assert "line 3 changed in the lyrics" in caplog.text  # its start moved in the inputs
    assert "the start set by hand for line 2 no longer fits" in caplog.text
