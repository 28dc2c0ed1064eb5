"""Tempo, beats, onsets, a percussive envelope and the loudness, sampled at the video frame rate
(librosa).

librosa's beat tracker has two known weaknesses here (DESIGN.md §6): it misses the first beat(s)
and biases the tempo (117.5 BPM on a 120 BPM click track). We correct both: each beat is moved to
the strongest onset near it, the tempo is re-estimated from the median inter-beat interval, and
the beat grid is extended backwards/forwards while onsets confirm it.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from .audio import Audio
from ..config import RhythmConfig


@dataclass(frozen=True)
class Rhythm:
    """The beat analysis of a song; independent of the video frame rate."""

    tempo: float  # BPM
    beats: np.ndarray  # (B,) beat times in seconds
    onsets: np.ndarray  # (O,) onset times in seconds
    strength: np.ndarray  # (T,) percussive onset strength (librosa units)
    strength_t: np.ndarray  # (T,) the times of `strength`, in seconds
    rms: np.ndarray | None = None  # (T,) RMS level of the whole signal at `strength_t` (None: an
    # analysis saved before it was recorded; loudness then follows the percussive strength)

    def loudness(self, fps: float, n_frames: int, window_s: float = 1.0, range_db: float = 30.0) -> np.ndarray:
        """(n_frames,) how loud the song is around each frame, in [0, 1]: the RMS power averaged over
        `window_s`, in dB below the song's loudest moment, mapped from -range_db (0) to 0 dB (1).
        Silence is 0; a steady drum track is near 1 throughout (the average spans several hits)."""
        t = np.arange(n_frames) / fps
        if self.rms is None or not len(self.rms):
            level = np.interp(t, self.strength_t, self.strength, left=0.0, right=0.0)
            power = box_mean(level, max(1, int(round(window_s * fps))))
            peak = float(power.max()) if len(power) else 0.0
            return (power / peak if peak > 0 else power).astype(np.float32)
        level = np.interp(t, self.strength_t, self.rms.astype(np.float64), left=0.0, right=0.0)
        power = box_mean(level**2, max(1, int(round(window_s * fps))))
        peak = float(power.max()) if len(power) else 0.0
        if peak <= 0:
            return np.zeros(n_frames, np.float32)
        db = 10.0 * np.log10(np.maximum(power / peak, 1e-12))
        return np.clip(1.0 + db / range_db, 0.0, 1.0).astype(np.float32)

    def envelope(self, fps: float, n_frames: int) -> np.ndarray:
        """(n_frames,) percussive strength while each video frame is shown (frame i from i / fps to
        (i + 1) / fps: the strongest analysis sample in that span, so no hit falls between two
        frames' sample points), in [0, 1]."""
        per_frame = np.interp(np.arange(n_frames) / fps, self.strength_t, self.strength, left=0.0, right=0.0)
        k = np.floor(self.strength_t * fps).astype(np.int64)  # the frame shown at each analysis sample
        inside = (k >= 0) & (k < n_frames)
        np.maximum.at(per_frame, k[inside], self.strength[inside].astype(per_frame.dtype))
        peak = float(per_frame.max()) if len(per_frame) else 0.0
        return (per_frame / peak if peak > 0 else per_frame).astype(np.float32)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        extra = {} if self.rms is None else {"rms": self.rms}
        np.savez(buf, tempo=np.float64(self.tempo), beats=self.beats, onsets=self.onsets, strength=self.strength,
                 strength_t=self.strength_t, **extra)
        return buf.getvalue()

    @classmethod
    def load(cls, path) -> "Rhythm":
        """A saved analysis; files written before `rms` existed load with rms None."""
        with np.load(path, allow_pickle=False) as d:
            return cls(float(d["tempo"]), d["beats"], d["onsets"], d["strength"], d["strength_t"],
                       d["rms"] if "rms" in d.files else None)


def box_mean(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of `width` samples (shorter at the ends, never padded with zeros)."""
    c = np.concatenate([[0.0], np.cumsum(np.asarray(x, dtype=np.float64))])
    i = np.arange(len(x))
    lo, hi = np.maximum(i - width // 2, 0), np.minimum(i - width // 2 + width, len(x))
    return (c[hi] - c[lo]) / np.maximum(hi - lo, 1)


def analyze(audio: Audio, cfg: RhythmConfig = RhythmConfig()) -> Rhythm:
    import librosa

    y = audio.samples
    sr = audio.sample_rate
    if sr != cfg.sample_rate:
        y = librosa.resample(y, orig_sr=sr, target_sr=cfg.sample_rate)
        sr = cfg.sample_rate
    hop = cfg.hop_length
    _, y_perc = librosa.effects.hpss(y)
    env = librosa.onset.onset_strength(y=y_perc, sr=sr, hop_length=hop)  # (T,)
    env_t = librosa.times_like(env, sr=sr, hop_length=hop)
    rms = librosa.feature.rms(y=y, hop_length=hop)[0]  # (T',) the whole signal: harmonic and percussive
    rms = np.interp(env_t, librosa.times_like(rms, sr=sr, hop_length=hop), rms)
    tempo, beat_frames = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=hop,
                                                 start_bpm=cfg.start_bpm, units="frames")
    onset_frames = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=hop, backtrack=False)
    onsets = env_t[onset_frames]
    beats = refine_beats(env_t[beat_frames], onsets, env_t, env, duration=len(y) / sr)
    if len(beats) >= 3:
        tempo_v = 60.0 / grid_period(beats)
    elif len(beats) == 2:
        tempo_v = 60.0 / float(beats[1] - beats[0])
    else:
        tempo_v = float(np.atleast_1d(tempo)[0])
    return Rhythm(tempo_v, beats, onsets, env.astype(np.float32), env_t.astype(np.float64), rms.astype(np.float32))


def grid_period(beats: np.ndarray) -> float:
    """Beat period by a least-squares line through the beats of the steadiest stretch: frame-quantised
    beats make the median interval biased (21 vs 22 frames), the fitted slope is not."""
    d = np.diff(beats)
    med = float(np.median(d))
    # number each beat by its position in the grid (a missed beat counts as two periods)
    k = np.concatenate([[0], np.cumsum(np.maximum(1, np.round(d / med)))])
    slope = float(np.polyfit(k, beats, 1)[0])
    return slope if slope > 0 else med


def refine_beats(beats: np.ndarray, onsets: np.ndarray, env_t: np.ndarray, env: np.ndarray,
                 duration: float, snap_frac: float = 0.15) -> np.ndarray:
    """Snap beats to nearby onsets and fill in beats missed at the start and end of the song."""
    beats = np.asarray(beats, dtype=float)
    if len(beats) < 2:
        return beats
    period = float(np.median(np.diff(beats)))
    onsets = np.asarray(onsets, dtype=float)
    if len(onsets):
        idx = np.clip(np.searchsorted(onsets, beats), 1, len(onsets) - 1) if len(onsets) > 1 else np.zeros(len(beats), int)
        cand = np.stack([onsets[np.maximum(idx - 1, 0)], onsets[idx]], axis=1)
        near = cand[np.arange(len(beats)), np.argmin(np.abs(cand - beats[:, None]), axis=1)]
        beats = np.where(np.abs(near - beats) <= snap_frac * period, near, beats)
    strength_floor = 0.5 * float(np.median(np.interp(beats, env_t, env)))

    def confirmed(t: float) -> float | None:
        if not len(onsets):
            return None
        j = int(np.argmin(np.abs(onsets - t)))
        if abs(onsets[j] - t) <= snap_frac * period and np.interp(onsets[j], env_t, env) >= strength_floor:
            return float(onsets[j])
        return None

    head = []
    t = beats[0] - period
    while t > -snap_frac * period:
        hit = confirmed(t)
        if hit is None:
            break
        head.append(max(hit, 0.0))
        t = hit - period
    tail = []
    t = beats[-1] + period
    while t < duration:
        hit = confirmed(t)
        if hit is None:
            break
        tail.append(hit)
        t = hit + period
    out = np.concatenate([np.array(head[::-1]), beats, np.array(tail)])
    return np.unique(np.round(out, 4))
