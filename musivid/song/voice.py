"""How a sung line sounds: how long its words take (syllable weights, delivery rates) and where
a voice sounds in the song (Silero VAD, shipped with faster-whisper), and lines placed by their
length on that voice. The forced aligner (alignment.py) uses them to find a line's edges and to
place a line whose words it cannot hear."""
from __future__ import annotations

import functools
import logging
import math
import unicodedata
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..text import is_no_space

log = logging.getLogger(__name__)

SR = 16000
MIN_VOICE_S = 0.25  # voice between two lines shorter than this is their tails, not a line
SEC_PER_SYLLABLE = (0.08, 1.5)  # plausible delivery rates, fast speech to slow singing
DEFAULT_RATE = 0.25  # s per syllable where a line is too short to tell


# ---- syllable weights ------------------------------------------------------------------------

_VOWELS = set("aeiouyàáâãäåæèéêëìíîïòóôõöøœùúûüýÿāēěīōūǎǐǒǔǖǘǚǜăąęįųůőűаеёиоуыэюяіїєαεηιουωάέήίόύώ")


def weight(unit: str) -> float:
    """How long a unit takes to sing, in syllables: vowel groups in alphabetic scripts, one per
    letter of a script written without spaces (CJK and kana: a syllable or mora; combining marks
    add nothing), one per two letters elsewhere."""
    n, prev = 0.0, False
    for c in unicodedata.normalize("NFC", unit.casefold()):
        if is_no_space(c):
            n, prev = n + 1, False
        elif c in _VOWELS:
            n, prev = n + (0 if prev else 1), True
        else:
            if c.isalpha() and not c.isascii() and c not in _VOWELS and unicodedata.category(c) == "Lo":
                n += 0.5  # a script without marked vowels: about two letters a syllable
            prev = False
    return max(n, 1.0)


# ---- voice activity ------------------------------------------------------------------------------

@dataclass(frozen=True)
class VoiceActivity:
    """Where a voice sounds: Silero VAD's speech probability every `step` seconds, made into a
    voiced mask with hysteresis (on at 0.5, off below 0.35, as Silero's own segmenter), each
    voiced run moved back over its rising edge (Silero wakes a few frames into a voice)."""

    prob: np.ndarray  # (T,) speech probability
    voiced: np.ndarray  # (T,) bool
    step: float = 512 / SR

    @classmethod
    def from_prob(cls, prob: np.ndarray, step: float = 512 / SR, on: float = 0.5, off: float = 0.35,
                  edge: float = 0.15, min_gap: float = 0.2) -> "VoiceActivity":
        """The mask from probabilities; pauses shorter than `min_gap` seconds (a breath, a
        consonant Silero doubts, a dip inside a sung line) do not break a voiced run."""
        prob = np.asarray(prob, np.float32).reshape(-1)
        voiced = np.zeros(len(prob), bool)
        state = False
        for k, q in enumerate(prob):
            state = q >= on if not state else q >= off
            voiced[k] = state
        starts = np.flatnonzero(voiced & ~np.concatenate([[False], voiced[:-1]]))
        for k in starts:
            j = k
            while j > 0 and not voiced[j - 1] and edge <= prob[j - 1] <= prob[j]:
                j -= 1
            voiced[j:k] = True
        ends = np.flatnonzero(voiced[:-1] & ~voiced[1:]) + 1  # first unvoiced index of each run
        for e in ends:
            nxt = np.flatnonzero(voiced[e:])
            if len(nxt) and nxt[0] * step < min_gap:
                voiced[e:e + nxt[0]] = True
        return cls(prob, voiced, step)

    def fraction(self, t0: float, t1: float) -> float:
        """Share of [t0, t1) that is voiced."""
        a = max(int(t0 / self.step), 0)
        b = max(int(math.ceil(t1 / self.step)), a + 1)
        seg = self.voiced[a:b]
        return float(np.mean(seg)) if len(seg) else 0.0

    def onsets(self) -> np.ndarray:
        """Times (s) where a voice starts."""
        v = self.voiced
        return np.flatnonzero(v & ~np.concatenate([[False], v[:-1]])) * self.step

    @functools.cached_property
    def loose(self) -> "VoiceActivity":
        """The same probabilities with lower thresholds (on at 0.3, off below 0.2): a voice under
        loud music, heard less surely (between lines: is anything sung there at all?)."""
        return VoiceActivity.from_prob(self.prob, self.step, on=0.3, off=0.2)

    def offsets(self) -> np.ndarray:
        """Times (s) where a voice stops."""
        v = self.voiced
        return (np.flatnonzero(v & ~np.concatenate([v[1:], [False]])) + 1) * self.step


def voice_activity(samples16k: np.ndarray) -> VoiceActivity | None:
    """Silero VAD over the song (None when faster-whisper's VAD cannot run here)."""
    try:
        from faster_whisper.vad import get_vad_model
    except ImportError:
        return None
    x = np.asarray(samples16k, np.float32)
    x = np.pad(x, (0, (-len(x)) % 512))
    try:
        prob = np.asarray(get_vad_model()(x), np.float32).reshape(-1)
    except Exception as e:  # noqa: BLE001 - onnxruntime missing or broken: align without VAD
        log.info("voice activity detection unavailable (%s): line edges from the alignment alone", e)
        return None
    return VoiceActivity.from_prob(prob)


def voiced_runs(vad: VoiceActivity | None, g0: float, g1: float) -> list[tuple[float, float]]:
    """The voiced stretches between two lines (g0: the end of one, g1: the start of the next), at
    least MIN_VOICE_S long, from voice activity with lower thresholds than the lines' edges use
    (on at 0.3, off below 0.2: a voice under loud music is heard less surely), the neighbours'
    own voice left out (0.3 s of a stretch that begins before g0 or ends after g1). Without
    voice activity: all of it."""
    if vad is None:
        return [(g0, g1)] if g1 - g0 > 0.05 else []
    loose = vad.loose
    out = []
    for on, off in zip(loose.onsets(), loose.offsets()):
        a = float(on) if on >= g0 else g0 + 0.3
        b = float(off) if off <= g1 else g1 - 0.3
        if b - a >= MIN_VOICE_S:
            out.append((a, b))
    return out


def place_in_voice(weights: Sequence[float], runs: Sequence[tuple[float, float]], rate: float, t0: float,
                   t1: float) -> list[tuple[float, float]]:
    """(start, end) of lines of `weights` syllables, in order, between t0 and t1, on the voiced
    `runs` (sorted, disjoint, inside [t0, t1]): each lasts its syllables at `rate` s each (all
    shrunk alike where [t0, t1] is shorter than they need); each starts back to back with the
    line before it where the voice runs on through it, else where the next voice starts, as long
    as the lines after it still fit before t1."""
    need = np.array([max(w, 1.0) * rate for w in weights])
    need *= min(1.0, (t1 - t0) / float(need.sum()))
    out: list[tuple[float, float]] = []
    cur = runs[0][0] if runs else t0
    for j, n in enumerate(need):
        rest = float(need[j:].sum())
        fits = any(a <= cur and cur + n <= b + 0.1 for a, b in runs)  # the voice runs on through it
        onsets = [a for a, _ in runs if a >= cur - 1e-9 and a + rest <= t1 + 1e-9]
        s = cur if fits or not onsets else onsets[0]
        s = max(t0, min(s, t1 - rest))
        out.append((s, s + float(n)))
        cur = s + float(n)
    return out
