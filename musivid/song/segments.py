"""A song's lyric lines in time: words and segments (a line with its span), and the operations
on them (timed or spread lines, an excerpt's lines, moving one line)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class Word:
    """A word (or, for scripts without spaces, a character or token) with its time in the song."""

    text: str
    start: float  # seconds
    end: float

    def to_json(self) -> list:
        return [self.text, round(self.start, 4), round(self.end, 4)]


@dataclass(frozen=True)
class Segment:
    """One lyric line with its time span in the song: from when it starts to be sung to when its
    singing ends (for timed lyrics without that knowledge, until the next line starts)."""

    index: int
    text: str
    start: float  # seconds
    end: float
    words: tuple[Word, ...] = ()  # word-level timing where known (alignment, enhanced LRC)

    def to_json(self) -> dict:
        d = {"index": self.index, "text": self.text, "start": round(self.start, 4), "end": round(self.end, 4)}
        if self.words:
            d["words"] = [w.to_json() for w in self.words]
        return d

    @classmethod
    def from_json(cls, d: dict) -> "Segment":
        return cls(int(d["index"]), d["text"], float(d["start"]), float(d["end"]),
                   tuple(Word(t, float(a), float(b)) for t, a, b in d.get("words", ())))


def spread_evenly(texts: list[str], duration: float) -> list[Segment]:
    """Untimed lines: equal shares of the song (used when no alignment is available)."""
    n = len(texts)
    edges = np.linspace(0.0, duration, n + 1)
    return [Segment(i, t, float(edges[i]), float(edges[i + 1])) for i, t in enumerate(texts)]


def from_times(texts: list[str], starts: list[float], duration: float, gaps: Sequence[float] = (),
               words: Sequence[Sequence[Word]] | None = None) -> list[Segment]:
    """Timed lines: each lasts until the next one starts, or until the first gap mark (an empty
    timed LRC line: no lyric from then) after its start; the last until the end. `words` (one
    tuple per text) become the segments' word times, each word ending by its line's end (a word
    whose end is unknown is given as inf).

    Lines with the same start (LRC lines with the same time tag) keep their given order and share
    the time until the next start (or gap mark, or the end): a line with word times starts at its
    first word when that falls inside the shared time after the line before it; the others split
    what is left equally. Their words are kept inside their line's span."""
    order = sorted(range(len(texts)), key=lambda i: starts[i])
    marks = np.sort(np.asarray(list(gaps), dtype=float))
    segs: list[Segment] = []
    k = 0
    while k < len(order):
        j = k  # order[k:j] share one start
        while j < len(order) and starts[order[j]] == starts[order[k]]:
            j += 1
        t = float(starts[order[k]])
        end = starts[order[j]] if j < len(order) else duration
        after = marks[marks > t]
        if len(after):
            end = min(end, float(after[0]))
        end = float(max(min(end, duration), t))
        group = order[k:j]
        bounds = _shares(t, end, [words[i] if words else () for i in group]) + [end]
        for n, i in enumerate(group):
            a, b = bounds[n], bounds[n + 1]
            ws = tuple(Word(w.text, w.start if len(group) == 1 else min(max(w.start, a), b), min(w.end, b))
                       for w in (words[i] if words else ()))
            segs.append(Segment(len(segs), texts[i], a, b, ws))
        k = j
    return segs


def _shares(t: float, end: float, words: Sequence[Sequence[Word]]) -> list[float]:
    """The starts of n lines that share [t, end): the first at t, one with word times at its first
    word if that lies after the start before it and before `end`, the rest spread equally between
    the known starts."""
    n = len(words)
    known: list[float | None] = [t] + [None] * (n - 1)
    last = t
    for m in range(1, n):
        if words[m] and last < words[m][0].start < end:
            known[m] = last = float(words[m][0].start)
    out = list(known)
    m = 0
    while m < n:
        if out[m] is not None:
            m += 1
            continue
        q = m
        while q < n and out[q] is None:
            q += 1
        lo = out[m - 1]
        hi = out[q] if q < n else end
        for r in range(m, q):
            out[r] = lo + (hi - lo) * (r - m + 1) / (q - m + 1)
        m = q
    return [float(x) for x in out]  # type: ignore[arg-type]


def excerpt(segments: list[Segment], t0: float, t1: float) -> list[Segment]:
    """The segments heard in [t0, t1), timed from t0 (for an excerpt's captions)."""
    return [Segment(s.index, s.text, max(0.0, s.start - t0), min(s.end, t1) - t0) for s in segments
            if s.end > t0 and s.start < t1]


def retime(segments: list[Segment], index: int, start: float, duration: float | None = None) -> list[Segment]:
    """The segments with segment `index` moved to start at `start` s. Its words and end move with
    it (the end stops at the next line's start, or the song's `duration`; an end that touched the
    next line stays there), and the line before ends no later than the new start (it follows the
    start when the two touched). Lines keep their order: a start outside (previous start, next
    start) is an InputError."""
    seg = segments[index]
    prev = segments[index - 1] if index > 0 else None
    nxt = segments[index + 1] if index + 1 < len(segments) else None
    lo, hi = (prev.start if prev else 0.0), (nxt.start if nxt else duration)
    if (start <= lo if prev else start < lo) or (hi is not None and start >= hi):
        after = f"after line {index}'s start ({lo:.2f} s)" if prev else "from 0 s"
        before = f"before line {index + 2}'s start ({hi:.2f} s)" if nxt else \
            "before the end of the song" + (f" ({hi:.2f} s)" if hi is not None else "")
        raise InputError(f"start {start:.2f} s for line {index + 1}: must be {after} and {before}: "
                         "lines keep their order")
    delta = start - seg.start
    end = seg.end + delta if hi is None else hi if abs(seg.end - hi) < 1e-3 else min(seg.end + delta, hi)
    end = max(start, end)

    def clip(words, a, b):
        return tuple(dataclasses.replace(w, start=min(max(w.start, a), b), end=min(max(w.end, a), b)) for w in words)

    out = list(segments)
    moved = tuple(dataclasses.replace(w, start=w.start + delta, end=w.end + delta) for w in seg.words)
    out[index] = dataclasses.replace(seg, start=float(start), end=float(end), words=clip(moved, start, end))
    if prev is not None and (prev.end > start or abs(prev.end - seg.start) < 1e-3):
        out[index - 1] = dataclasses.replace(prev, end=float(start), words=clip(prev.words, prev.start, start))
    return out
