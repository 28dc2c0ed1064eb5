from pathlib import Path

import numpy as np
import pytest

from conftest import click_track, f_measure
from musivid.audio import Audio
from musivid.rhythm import analyze


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
