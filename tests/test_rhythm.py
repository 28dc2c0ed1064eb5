from pathlib import Path

import numpy as np
import pytest

from conftest import click_track, f_measure
from musivid.song.audio import Audio
from musivid.song.rhythm import analyze


@pytest.mark.parametrize("bpm,duration,first", [(120, 20.0, 0.5), (97, 17.3, 0.25), (140, 13.0, 1.0)])
def test_click_track_beats_and_tempo(bpm, duration, first):
    y, truth = click_track(bpm, duration, first)
    r = analyze(Audio(y, 22050, Path("click")))
    f = f_measure(r.beats, truth)
    print(f"{bpm} BPM: tempo {r.tempo:.2f}, F={f:.3f}, {len(r.beats)} beats vs {len(truth)}")
    assert f >= 0.95
    assert abs(r.tempo - bpm) / bpm < 0.01  # librosa alone says 117.5 for 120
    assert abs(r.beats[0] - truth[0]) < 0.07  # the first beat is found
    env = r.envelope(24, int(duration * 24))
    assert env.shape == (int(duration * 24),)
    assert env.min() >= 0.0 and env.max() == 1.0
    # strongest at the clicks: the frames nearest a click carry most of the envelope
    on = np.zeros(len(env), bool)
    on[np.round(truth * 24).astype(int)] = True
    print(f"envelope at clicks {env[on].mean():.2f}, elsewhere {env[~on].mean():.2f}")
    assert env[on].mean() > 2.5 * env[~on].mean()


def test_f_measure():
    t = np.arange(0, 10, 0.5)
    assert f_measure(t, t) == 1.0
    assert f_measure(t + 0.2, t) == 0.0
    assert 0.6 < f_measure(t[::2], t) < 0.7


def test_loudness_follows_the_music_and_old_analyses_still_load(tmp_path):
    """0 in silence, near 1 through a steady drum loop (averaged over a second); a rhythm.npz saved
    before the RMS curve existed loads and falls back to the percussive strength."""
    from conftest import drum_track
    from musivid.song.rhythm import Rhythm

    y, _ = drum_track(120, 12.0, start=4.0, end=10.0)
    r = analyze(Audio(y, 22050, Path("drums")))
    loud = r.loudness(24, 12 * 24)
    print(f"loudness: silence {loud[:72].max():.2f}, drums {loud[120:216].min():.2f}-{loud[120:216].max():.2f}")
    assert loud[:72].max() < 0.1 and loud[-24:].max() < 0.1 and loud[120:216].min() > 0.8
    p = tmp_path / "rhythm.npz"
    p.write_bytes(r.to_bytes())
    again = Rhythm.load(p)
    assert np.array_equal(again.rms, r.rms) and np.array_equal(again.loudness(24, 288), loud)
    old = tmp_path / "old.npz"
    np.savez(old, tempo=np.float64(r.tempo), beats=r.beats, onsets=r.onsets, strength=r.strength,
             strength_t=r.strength_t)
    legacy = Rhythm.load(old)
    assert legacy.rms is None
    fallback = legacy.loudness(24, 288)
    assert fallback[120:216].mean() > 2 * fallback[:72].max()  # cruder (flux of noise), but it follows
