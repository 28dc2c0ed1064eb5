import numpy as np
import pytest

from musivid.config import ScheduleConfig
from musivid.video.motion import Keyframe, keyframes, warp
from musivid.song.segments import Segment, from_times, spread_evenly


def test_spread_evenly_covers_the_song():
    segs = spread_evenly(["a", "b", "c", "d"], 10.0)
    assert [s.start for s in segs] == [0.0, 2.5, 5.0, 7.5]
    assert segs[-1].end == 10.0


def test_from_times_sorted_and_chained():
    segs = from_times(["b", "a"], [5.0, 1.0], 9.0)
    assert [(s.text, s.start, s.end) for s in segs] == [("a", 1.0, 5.0), ("b", 5.0, 9.0)]


def test_keyframes_snap_to_nearest_beat_within_window():
    beats = np.arange(0.0, 20.0, 0.5)
    segs = [Segment(0, "a", 1.1, 3), Segment(1, "b", 3.0, 5), Segment(2, "c", 7.24, 9)]
    kf = keyframes(segs, beats, ScheduleConfig(snap_window_s=0.3))
    assert [k.time for k in kf] == [1.0, 3.0, 7.0]
    assert all(k.snapped for k in kf)
    # a beat beyond the window leaves the time as it is
    kf = keyframes([Segment(0, "a", 1.25, 2)], np.array([0.0, 2.0]), ScheduleConfig(snap_window_s=0.3))
    assert kf[0].time == 1.25 and not kf[0].snapped


def test_keyframes_never_collide():
    beats = np.array([1.0, 5.0])
    segs = [Segment(0, "a", 0.9, 1), Segment(1, "b", 1.05, 2)]
    kf = keyframes(segs, beats, ScheduleConfig(snap_window_s=0.3), fps=24)
    assert kf[0].time == 1.0 and kf[1].time >= 1.0 + 1 / 24


def test_warp_is_monotone_and_accelerates_on_hits():
    fps = 10.0
    env = np.zeros(100)
    env[50] = 1.0  # one hit at t = 5 s
    t = np.arange(0, 100) / fps
    u_lin = warp(t, 0.0, 10.0, env, fps, reactivity=0.0)
    u = warp(t, 0.0, 10.0, env, fps, reactivity=1.0)
    assert np.all(np.diff(u) >= 0) and u[0] == 0 and abs(u[-1] - 0.99) < 0.02
    assert np.allclose(u_lin, t / 10)
    jump = np.diff(u).argmax()
    assert jump in (49, 50)  # the motion happens on the hit


def test_keyframe_frames_fall_on_detected_beats_of_a_click_track():
    from pathlib import Path

    from conftest import click_track
    from musivid.song.audio import Audio
    from musivid.video.interpolate import frame_count, plan
    from musivid.song.rhythm import analyze

    fps, dur = 24.0, 16.0
    y, truth = click_track(100, dur, first=0.6)
    r = analyze(Audio(y, 22050, Path("c")))
    segs = [Segment(i, f"l{i}", t, t + 2) for i, t in enumerate([1.25, 3.9, 7.05, 10.3, 13.1])]
    kf = keyframes(segs, r.beats, ScheduleConfig(snap_window_s=0.35), fps=fps)
    assert all(k.snapped for k in kf)
    for k in kf:
        frame = round(k.time * fps)
        nearest_beat_frame = min(r.beats, key=lambda b: abs(b - k.time)) * fps
        assert abs(frame - nearest_beat_frame) <= 1  # within one frame of a detected beat
        assert min(abs(truth - k.time)) < 0.05  # and that beat is a real click
    # the frame plan shows each keyframe's latent exactly at its frame
    p = plan(kf, frame_count(dur, fps), fps, r.envelope(fps, frame_count(dur, fps)), reactivity=0.5)
    for i, k in enumerate(kf[:-1]):
        f = p.key_frames[i]
        assert abs(f - k.time * fps) <= 0.5 and p.left[f] == i and p.u[f] == 0.0  # the nearest frame, exactly


def test_title_from_the_file_name():
    from musivid.video.motion import title_from_stem

    assert title_from_stem("01 - Northern_Lights (Official Video)") == "Northern Lights"
    assert title_from_stem("Artist - Song [2011 remaster]") == "Artist, Song"
    assert title_from_stem("Night Drive") == "Night Drive"
    assert title_from_stem("2112") == "2112"  # a name that is only a number stays


def test_intro_title_only_when_it_has_room_and_the_music_drives_the_picture():
    from musivid.video.motion import intro_title

    kf = [Keyframe(0, 4.0, True)]
    assert intro_title(ScheduleConfig(), "Night_Drive", kf) == "Night Drive"
    assert intro_title(ScheduleConfig(title=" Polar Sea "), "x", kf) == "Polar Sea"
    assert intro_title(ScheduleConfig(), "x", [Keyframe(0, 2.0, True)]) is None  # first line too soon
    assert intro_title(ScheduleConfig(intro="drift"), "x", kf) is None
    assert intro_title(ScheduleConfig(reactivity=0.0), "x", kf) is None  # the pure glide of before


def test_walk_size_is_zero_at_keyframes_and_settles_over_beats():
    from musivid.video.motion import walk_size

    fps, n = 24.0, 480
    cfg = ScheduleConfig(walk=1.0, reactivity=0.5, energy=0.0, settle_beats=2.0, intro="drift", outro="none")
    kf = np.array([96, 240, 360])
    w = walk_size(kf, n, fps, np.ones(n), 120.0, cfg)
    assert np.all(w[kf] == 0) and np.all(w[361:] == 0)  # outro none: holds still
    assert np.isclose(w[168], 0.5)  # a full walk (walk x reactivity) more than 2 beats (1 s) from both
    assert 0 < w[240 + 6] < 0.5 * w[240 + 24]  # rising over the settle time
    assert np.isclose(w[0], 0.5 * cfg.drift)  # the intro drifts in from `drift` walks away
    with_title = walk_size(kf, n, fps, np.ones(n), 120.0, cfg, title=True)
    assert with_title[0] == 0 and np.isclose(with_title[48], 0.5)  # the title image at frame 0 is a keyframe
    assert not walk_size(kf, n, fps, np.ones(n), 120.0, ScheduleConfig(reactivity=0.0)).any()


def test_walk_pace_advances_on_the_hits():
    from musivid.video.motion import walk_pace

    env = np.zeros(240)
    env[::12] = 1.0  # a hit every beat at 120 BPM, 24 fps
    pos = walk_pace(env, 24.0, 120.0, reactivity=0.5, pace=0.5)
    step = np.diff(pos, prepend=0.0)
    assert np.isclose(pos[-1], 0.5 * 20, rtol=0.06)  # 0.5 knots per beat over 20 beats
    assert step[12] > 5 * step[13] and np.allclose(step[13:24], step[13])  # the jump lands on the hit's frame
    assert np.allclose(np.diff(walk_pace(env, 24.0, 120.0, reactivity=0.0, pace=0.5)), 0.5 / 12)


def test_retime_moves_one_line_and_keeps_its_neighbours_consistent():
    from musivid.errors import InputError
    from musivid.song.segments import Word, retime

    # LRC-like: every line lasts until the next one starts
    segs = from_times(["a", "b", "c"], [1.0, 4.0, 8.0], 12.0)
    out = retime(segs, 1, 5.0, 12.0)
    assert [(s.start, s.end) for s in out] == [(1.0, 5.0), (5.0, 8.0), (8.0, 12.0)]
    assert out[0] is not segs[0] and out[2] == segs[2] and segs[1].start == 4.0  # a new list
    out = retime(segs, 2, 6.5, 12.0)
    assert [(s.start, s.end) for s in out] == [(1.0, 4.0), (4.0, 6.5), (6.5, 12.0)]
    # aligned: a line with a gap after its singing; its words move with it, the gap before stays
    sung = [Segment(0, "a", 1.0, 2.5, (Word("a", 1.0, 2.5),)),
            Segment(1, "b c", 4.0, 5.0, (Word("b", 4.0, 4.4), Word("c", 4.5, 5.0))),
            Segment(2, "d", 8.0, 9.0)]
    out = retime(sung, 1, 3.0, 12.0)
    assert (out[1].start, out[1].end) == (3.0, 4.0)
    assert np.allclose([(w.start, w.end) for w in out[1].words], [(3.0, 3.4), (3.5, 4.0)])
    assert out[0] == sung[0]  # ended before the new start: untouched
    out = retime(sung, 1, 2.0, 12.0)  # into the previous line's singing: it now ends at 2.0
    assert out[0].end == 2.0 and out[0].words[0].end == 2.0
    out = retime(sung, 1, 7.5, 12.0)  # the end stops at the next line's start
    assert (out[1].start, out[1].end) == (7.5, 8.0) and out[1].words[-1].end == 8.0
    for bad in (1.0, 0.5, 8.0, 9.0):  # lines keep their order
        with pytest.raises(InputError, match="lines keep their order"):
            retime(sung, 1, bad, 12.0)
    with pytest.raises(InputError, match="before the end of the song"):
        retime(sung, 2, 12.0, 12.0)
    with pytest.raises(InputError, match="line 1: must be from 0 s"):
        retime(sung, 0, -0.5, 12.0)
