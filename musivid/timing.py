"""Lyric timing: LRC as given; plain lyrics aligned to the audio; no lyrics → transcription.

This module turns lyrics into Segments. Whisper-based alignment lives in `align.py`; when no
speech recogniser is available (or asked for), plain lines are spread evenly over the song.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from .audio import Audio
from .lyrics import Lyrics
from .schedule import Segment, from_times, spread_evenly

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimingResult:
    segments: list[Segment]
    method: str  # "lrc" | "even" | "aligned" | "transcribed"
    warnings: tuple[str, ...] = ()


def segments_for(lyrics: Lyrics | None, audio: Audio, *, align=None) -> TimingResult:
    """Segments for `lyrics` (None: transcribe with `align`).

    `align` is an optional callable (audio, texts | None) -> (texts, starts) from the speech
    recogniser; without it plain lyrics are spread evenly.
    """
    dur = audio.duration
    if lyrics is not None and lyrics.timed:
        texts = [ln.text for ln in lyrics.lines]
        starts = [float(ln.time or 0.0) for ln in lyrics.lines]
        return TimingResult(from_times(texts, starts, dur), "lrc", lyrics.warnings)
    if align is None:
        if lyrics is None:
            from .errors import InputError

            raise InputError("no lyrics given and no speech recogniser available: pass a lyrics file")
        texts = [ln.text for ln in lyrics.lines]
        return TimingResult(spread_evenly(texts, dur), "even", lyrics.warnings)
    texts_in = [ln.text for ln in lyrics.lines] if lyrics is not None else None
    texts, starts = align(audio, texts_in)
    method = "aligned" if lyrics is not None else "transcribed"
    return TimingResult(from_times(texts, starts, dur), method, lyrics.warnings if lyrics else ())
