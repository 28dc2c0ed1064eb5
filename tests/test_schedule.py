import numpy as np

from musivid.config import ScheduleConfig
from musivid.schedule import Segment, from_times, keyframes, spread_evenly, warp


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
