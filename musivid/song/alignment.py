"""Forced alignment of known lyric lines to a song with Whisper's cross-attention (CTranslate2's
`Whisper.align`, the mechanism behind faster-whisper's word timestamps and stable-ts `align`).

The song is walked in 30 s windows. In each window the next lyric lines' tokens are aligned to
the audio: a monotonic token-to-time path, and each token's probability given the audio. A line
is accepted when it ends inside the window, the path gives it time (not squeezed to a sliver, not
piled on one instant, not away from every voice the window holds), and the song *supports* its
tokens: they are more likely with the window's audio than with a silent window and the same text
before them, which cancels what the language model predicts by itself (e.g. a chorus's
repetition). The next window starts where the accepted lines end; a window where the next line is
not heard slides on, to the next voice onset or half a window. A line that is not heard while a
later line in the same window is, and that the path puts where no voice sounds, is set aside.

No sung line is lost: a line the walk did not confirm keeps its place between its confirmed
neighbours. It is searched again in a window cut to the time between them, where the usual
support is enough even if voice activity hears nothing (Silero often misses singing over loud
music), and a weaker one (GAP_MIN_SUPPORT) where a voice sounds there and the line lies on it.
Still not found, it is placed by its length (syllables at the song's rate) on the voice between
its neighbours, in order, and flagged (`estimated`, confidence ESTIMATED_CONFIDENCE). It is left
out only where voice activity hears no voice at all between its neighbours (a lyric line that is
not sung, over instrumental music): a caption shown over music nobody sings is the worse error,
and the warning names the neighbours. Without voice activity no line is left out. When no line
at all is heard (an instrumental), nothing is placed: the caller spreads the lines evenly.

Languages: each line is aligned with its own language token (a window holding lines of several
languages is aligned once per language, each line taking its own language's path); a line
whose language the text does not tell takes the language Whisper detects in its window.

The path cannot be trusted at the edges of a line: its first tokens take the music before the
line, its last token the music after it. A line's start is therefore found from its *anchor*, the
first unit after the stretched leading ones: the earliest voice onset (Silero VAD, shipped with
faster-whisper) from which the voice runs on into the anchor, or without one the anchor's start
less the expected length of the units before it at the line's own rate (median seconds per
syllable of its inner units). Its end is where the voice stops after its last unit starts, kept
between half and two and a half times that unit's expected length, and before the next line.
Scripts without spaces (Chinese, Japanese, Thai...) are timed per character: the units are
`musivid.text.units`, the same that karaoke captions highlight.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError
from .segments import Word
from .tokens import LineTokens, tokenize
from .voice import SR, DEFAULT_RATE, SEC_PER_SYLLABLE, VoiceActivity, place_in_voice, voiced_runs, weight

log = logging.getLogger(__name__)

FRAME_S = 0.02  # one encoder position (Whisper: 50 per second)
WINDOW_FRAMES = 3000  # 30 s of mel frames (100 per second)
MAX_TOKENS = 220  # text tokens per window (the decoder holds 448 with the prompt)
# a line counts as heard when the song supports its words at least this much (see _support:
# lines absent from a window score below 0.15, heard ones 0.4 to 1 on the test songs)
MIN_SUPPORT = 0.28
EDGE_S = 0.6  # a line ending this close to the window's end may be cut off: next window


# ---- the walk ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LineTiming:
    """Where one lyric line is sung: start/end of its singing, its words, and how sure we are
    (0..1). `sung` False: it was left out (start/end are then meaningless), `note` says why.
    `estimated`: the words were not heard; the line is placed by its length on the voice between
    its neighbours (`note` says where). `language`: the language token it was aligned with."""

    index: int
    start: float
    end: float
    words: tuple[Word, ...]
    confidence: float
    sung: bool = True
    estimated: bool = False
    note: str = ""
    language: str | None = None


@dataclass
class _Placed:
    """A line as one window's path placed it (times in seconds from the song's start)."""

    line: int
    unit_start: np.ndarray  # (U,)
    unit_end: np.ndarray  # (U,)
    support: float  # 0..1, see _support
    at_edge: bool
    squeezed: bool  # short, or placed where no voice sounds (see _align_window)
    short: bool = False  # squeezed by the path alone (too little time, units piled on one instant)
    language: str | None = None

    @property
    def ok(self) -> bool:
        return not self.at_edge and not self.squeezed and self.support >= MIN_SUPPORT

    def found_again(self, voiced: bool) -> bool:
        """Searched again between its neighbours: the usual support is enough even where voice
        activity hears no voice (it misses singing over loud music); a weaker one where a voice
        sounds there and the line is placed over it."""
        if self.at_edge or self.short:
            return False
        return self.support >= MIN_SUPPORT or (voiced and not self.squeezed and self.support >= GAP_MIN_SUPPORT)


class _Song:
    """What every window's alignment needs: the model, the lines as tokens, each line's language
    (None: the window's detected language), the tokenizer per language, the silent window's
    encoding, the voice activity."""

    def __init__(self, model, lines: list[LineTokens], languages: list[str | None], vad: VoiceActivity | None,
                 silence, tokenizers: dict):
        self.model, self.lines, self.languages, self.vad, self.silence = model, lines, languages, vad, silence
        self.tokenizers = tokenizers
        self.detected: dict[float, str] = {}

    def tokenizer(self, language: str | None):
        from faster_whisper.tokenizer import Tokenizer

        if language not in self.tokenizers:
            self.tokenizers[language] = Tokenizer(self.model.hf_tokenizer, True, task="transcribe", language=language)
        return self.tokenizers[language]

    def language(self, k: int, enc, t0: float) -> str | None:
        """Line k's language: its own, or Whisper's detection on the window (once per window)."""
        if not self.model.model.is_multilingual:
            return None
        if self.languages[k] is not None:
            return self.languages[k]
        if t0 not in self.detected:
            token, prob = self.model.model.detect_language(enc)[0][0]
            self.detected[t0] = token[2:-2]
            log.info("lines the text does not tell the language of, near %.1f s: %s (p=%.2f)", t0, token[2:-2], prob)
        return self.detected[t0]


def align_lines(model, samples16k: np.ndarray, texts: Sequence[str], language: str | None, *,
                languages: Sequence[str | None] | None = None, vad: VoiceActivity | None = None,
                progress: Callable[[float], None] | None = None) -> list[LineTiming]:
    """Time every line of `texts` in the song. `model`: a faster_whisper.WhisperModel;
    `language`: ISO code for a multilingual model (None for an English-only one); `languages`:
    each line's own, replacing `language` (lines of several languages are each aligned with their
    own language token; a line with None takes the language Whisper detects in its window).
    `progress(fraction)` is called after each window. Every line is returned, in order: heard
    ones; those the walk did not confirm, searched again between their heard neighbours with
    looser thresholds; the rest placed by their length on the voice between those neighbours
    (estimated, low confidence). A line is left out (sung=False, `note` says why) only where no
    voice sounds between its neighbours, or when no line at all was heard."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    multi = model.model.is_multilingual
    per_line = ([None] * len(texts) if not multi else list(languages) if languages is not None
                else [language] * len(texts))
    first = next((lang for lang in per_line if lang), "en") if multi else None
    tok = Tokenizer(model.hf_tokenizer, multi, task="transcribe", language=first)
    lines = [tokenize(t, tok) for t in texts]  # (tokens do not depend on the language token)
    for k, lt in enumerate(lines):
        if len(lt.tokens) > MAX_TOKENS:
            raise InputError(f"lyric line {k + 1} is too long to align ({len(lt.tokens)} Whisper tokens, at most "
                             f"{MAX_TOKENS}): split it into the lines that are sung")
    feats = model.feature_extractor(np.asarray(samples16k, np.float32))  # (n_mels, F), 100 per s
    n_frames = feats.shape[-1]
    duration = len(samples16k) / SR
    silence = model.encode(pad_or_trim(np.zeros_like(feats[:, :1]) + feats.min()))
    song = _Song(model, lines, per_line, vad, silence, {first: tok})

    placed: dict[int, _Placed] = {}
    unsung: set[int] = set()
    seek, i = 0, 0  # mel frame where the window starts; next line to place
    enc, enc_at = None, -1
    while i < len(lines) and seek < n_frames - 50:
        nf = min(WINDOW_FRAMES, n_frames - seek)
        last_window = seek + nf >= n_frames
        if seek != enc_at:  # a window is encoded once, even when it is aligned again
            enc, enc_at = model.encode(pad_or_trim(feats[:, seek:seek + WINDOW_FRAMES])), seek
        cand = _candidates(lines, i, nf / 100, unsung)
        got = _align_window(song, enc, cand, seek / 100, nf, last_window)
        accepted: list[_Placed] = []
        for k, p in enumerate(got):
            if p.ok:
                accepted.append(p)
                continue
            if p.at_edge:
                break
            later = [q for q in got[k + 1:] if q.ok]
            if not later:
                break
            # heard lines follow in this window, so this one lies between them: not confirmed
            # when squeezed, or (where voice activity tells) placed mostly where no voice sounds
            # (searched again between its neighbours once the walk is done)
            if p.squeezed or vad is None or vad.fraction(p.unit_start[0], p.unit_end[-1]) < 0.5:
                unsung.add(p.line)
            else:
                accepted.append(p)  # weakly heard: kept, with a low confidence
            break  # the lines after it are aligned again without it
        for p in accepted:
            placed[p.line] = p
        if accepted:
            i = accepted[-1].line + 1
            end = _cap_end(accepted[-1], vad)
            seek = max(seek + 50, int((end - 0.2) * 100))
        elif got and not got[0].ok and not got[0].at_edge and any(q.line in unsung for q in got):
            pass  # a line was dropped: the same window again
        else:  # nothing heard here: slide on, to where the next line or the voice begins
            first_p = got[0] if got else None
            jump = WINDOW_FRAMES // 2
            if first_p is not None and first_p.at_edge:
                core = first_p.unit_start[min(1, len(first_p.unit_start) - 1)]
                jump = max(100, int((core - 3.0) * 100) - seek)
            if vad is not None:
                on = vad.onsets()
                on = on[on > seek / 100 + 1.0]
                if len(on):
                    jump = min(jump, max(100, int((on[0] - 1.0) * 100) - seek))
            seek += min(jump, nf)
        while i < len(lines) and i in unsung:
            i += 1
        if progress:
            progress(min(1.0, seek / n_frames))
    for k in range(i, len(lines)):
        if k not in placed:
            unsung.add(k)
    if not placed:  # nothing heard at all (an instrumental, a language the model cannot hear)
        return [LineTiming(k, 0.0, 0.0, (), 0.0, sung=False) for k in range(len(lines))]
    if unsung:
        _search_gaps(song, feats, placed, unsung, duration)
    return _place_by_voice(lines, _finish(lines, placed, vad, duration), vad, duration)


# ---- lines not confirmed ---------------------------------------------------------------------------

GAP_MIN_SUPPORT = 0.15  # a line searched again between its neighbours: looser (absent lines score < 0.15)
ESTIMATED_CONFIDENCE = 0.1  # a line placed by its length, its words not heard


def _runs(idx: Sequence[int]) -> list[tuple[int, int]]:
    """Runs [a, b] (inclusive) of consecutive line numbers."""
    out: list[tuple[int, int]] = []
    for k in sorted(idx):
        if out and out[-1][1] == k - 1:
            out[-1] = (out[-1][0], k)
        else:
            out.append((k, k))
    return out


def _neighbours(timed: dict[int, "LineTiming"], a: int, b: int, duration: float) -> tuple[float, float]:
    """The time between the heard lines around lines a..b: the end of the last one before a (0
    without one) and the start of the first one after b (the song's end without one)."""
    before = [k for k in timed if k < a]
    after = [k for k in timed if k > b]
    g0 = timed[max(before)].end if before else 0.0
    g1 = timed[min(after)].start if after else duration
    return g0, g1


def _search_gaps(song: _Song, feats: np.ndarray, placed: dict[int, _Placed], unsung: set[int],
                 duration: float) -> None:
    """Search the lines the walk did not confirm again, each run of them in windows cut to the
    time between its heard neighbours, with a looser support threshold; the lines found are
    added to `placed` and taken from `unsung`. The heard line after the run is aligned with
    them (the window runs to its end): when the walk set a line aside and aligned the next one
    without it, the next one's path took the missing line's voice too; where the run's lines
    are found, the next line takes its place after them."""
    from faster_whisper.audio import pad_or_trim

    timed = {t.index: t for t in _finish(song.lines, placed, song.vad, duration)}
    n_frames = feats.shape[-1]
    for a, b in _runs(unsung):
        g0, g1 = _neighbours(timed, a, b, duration)
        nxt = b + 1 if b + 1 in timed else None
        if g1 - g0 < 0.3 and nxt is None:
            continue
        todo = list(range(a, b + 1))
        # the looser threshold only where a voice sounds between the neighbours: over music alone
        # (voice activity hears none) the support is the only evidence, and must be the usual
        voiced = bool(voiced_runs(song.vad, g0, g1))
        seek = max(0, int((g0 - 0.1) * 100))
        stop = min(n_frames, int(math.ceil(((timed[nxt].end if nxt is not None else g1) + 0.1) * 100)))
        while todo and seek < stop - 30:
            nf = min(WINDOW_FRAMES, stop - seek)
            reaches = seek + nf >= stop
            enc = song.model.encode(pad_or_trim(feats[:, seek:seek + nf]))
            cand = _candidates(song.lines, todo[0], nf / 100,
                               set(range(len(song.lines))) - set(todo) - ({nxt} if reaches else set()))
            got = _align_window(song, enc, cand, seek / 100, nf, reaches)
            p_next = next((p for p in got if p.line == nxt), None)
            moved = p_next is not None and p_next.ok
            bound = (float(p_next.unit_start[min(1, len(p_next.unit_start) - 1)]) if moved else g1) + 0.3
            found = [p for p in got if p.line != nxt and p.found_again(voiced) and p.unit_end[-1] <= bound]
            log.debug("lines %s searched again in %.1f-%.1f s: support %s", [p.line + 1 for p in got], seek / 100,
                      (seek + nf) / 100, [f"{p.support:.2f}{'' if p.ok else ' (squeezed)' if p.squeezed else ''}"
                                          for p in got])
            for p in found:
                placed[p.line] = p
                unsung.discard(p.line)
            if found and moved:
                placed[nxt] = p_next
            last = max((p.line for p in found), default=None)
            if reaches:
                break
            if last is not None:
                todo = [k for k in todo if k > last]
                seek = max(seek + 50, int((_cap_end(placed[last], song.vad) - 0.2) * 100))
            else:
                seek += nf // 2


def _place_by_voice(lines: list[LineTokens], timed: list[LineTiming], vad: VoiceActivity | None,
                    duration: float) -> list[LineTiming]:
    """Every line not heard, in runs between heard neighbours: placed by its length on the
    voice between them (estimated), or left out where no voice sounds there."""
    heard = {t.index: t for t in timed}
    missing = [k for k in range(len(lines)) if k not in heard]
    rates = [_rate(lines[t.index], np.array([w.start for w in t.words])) for t in timed]
    rate = float(np.median(rates)) if rates else DEFAULT_RATE
    out = dict(heard)
    for a, b in _runs(missing):
        g0, g1 = _neighbours(heard, a, b, duration)
        where = (f"between lines {a} and {b + 2}" if a > 0 and b + 1 < len(lines)
                 else f"before line {b + 2}" if b + 1 < len(lines) else f"after line {a}")
        runs = voiced_runs(vad, g0, g1)
        if not runs:
            why = "no voice" if g1 - g0 > 0.3 else "no time"
            for k in range(a, b + 1):
                out[k] = LineTiming(k, 0.0, 0.0, (), 0.0, sung=False, note=f"{why} {where}")
            continue
        spans = place_in_voice([sum(weight(u) for u in lines[k].units) for k in range(a, b + 1)], runs, rate,
                               g0 + 0.02, g1 - 0.02)
        for k, (s0, s1) in zip(range(a, b + 1), spans):
            w = np.array([weight(u) for u in lines[k].units])
            edges = s0 + (s1 - s0) * np.concatenate([[0.0], np.cumsum(w) / w.sum()])
            words = tuple(Word(u, float(x), float(y)) for u, x, y in zip(lines[k].units, edges[:-1], edges[1:]))
            out[k] = LineTiming(k, float(s0), float(s1), words, ESTIMATED_CONFIDENCE, estimated=True,
                                note=f"placed by its length on the voice {where}")
    return [out[k] for k in range(len(lines))]


def _candidates(lines: list[LineTokens], i: int, window_s: float, unsung: set[int]) -> list[int]:
    """Lines i.. that could be sung in a window of window_s seconds (at the fastest plausible
    rate), at least two, at most MAX_TOKENS tokens."""
    out: list[int] = []
    syllables, tokens = 0.0, 0
    for k in range(i, len(lines)):
        if k in unsung:
            continue
        syllables += sum(weight(u) for u in lines[k].units)
        tokens += len(lines[k].tokens)
        if out and (tokens > MAX_TOKENS or (len(out) >= 2 and syllables * SEC_PER_SYLLABLE[0] > window_s)):
            break
        out.append(k)
    return out


def _align_window(song: _Song, enc, cand: list[int], t0: float, nf: int, last_window: bool) -> list[_Placed]:
    """Align the candidate lines in one window; one _Placed per line. The window is aligned once
    per language among the lines, each line taking the path and probabilities of its own
    language's start sequence. A line is *squeezed* when the path gives it less time than the
    fastest delivery needs, or piles a third of its units onto one instant (tokens passed
    without time: the text is not there); where voice activity runs and the window holds some
    voice, a line placed over none of it counts as squeezed too (the path was pulled there by
    the text, not by a voice)."""
    flat: list[int] = []
    starts: list[int] = []
    for k in cand:
        starts.append(len(flat))
        flat.extend(song.lines[k].tokens)
    if not flat:
        return []
    n = len(flat)
    langs = {k: song.language(k, enc, t0) for k in cand}
    window_end = t0 + nf / 100
    paths: dict = {}

    def run(lang: str | None) -> None:
        sot = (song.tokenizer(lang) if lang is not None else song.tokenizers[None]).sot_sequence
        res = song.model.model.align(enc, sot, [flat], nf, median_filter_width=7)[0]
        null = song.model.model.align(song.silence, sot, [flat], nf, median_filter_width=7)[0]
        logp = np.log(np.asarray(res.text_token_probs[:n], np.float64) + 1e-6)
        logq = np.log(np.asarray(null.text_token_probs[:n], np.float64) + 1e-6)
        paths[lang] = (*_token_times(res, n, nf, t0), logp, logq)

    first = langs[cand[0]]
    run(first)
    # another language is aligned only for a line the first path ends inside the window: a line
    # at the window's end waits for a later window (and its own language there) anyway
    for k, s in zip(cand, starts):
        if langs[k] not in paths and (last_window or paths[first][1][s + len(song.lines[k].tokens) - 1]
                                      < window_end - EDGE_S):
            run(langs[k])
    vad = song.vad
    window_voiced = vad.fraction(t0, window_end) if vad is not None else 0.0
    out = []
    for k, s in zip(cand, starts):
        lt = song.lines[k]
        own = langs[k] in paths  # else: not aligned in its own language here, so not accepted here
        tok_start, tok_end, p, q = paths[langs[k] if own else first]
        sl = slice(s, s + len(lt.tokens))
        us, ue = _unit_times(lt, tok_start[sl], tok_end[sl])
        # the first token's probability depends on the line break before it, not on the audio
        inner = slice(s + 1, s + len(lt.tokens)) if len(lt.tokens) > 1 else sl
        c0 = us[1] if len(us) > 1 else us[0]
        core_w = sum(weight(u) for u in lt.units[1:]) or weight(lt.units[0])
        piled = float(np.mean((ue - us)[1:] < 1.5 * FRAME_S)) if len(us) > 2 else 0.0
        unvoiced = window_voiced > 0.02 and vad.fraction(c0, ue[-1]) < 0.1
        short = ue[-1] - c0 < 0.5 * SEC_PER_SYLLABLE[0] * core_w or piled > 1 / 3
        out.append(_Placed(k, us, ue, _support(p[inner], q[inner]),
                           at_edge=not own or ((not last_window) and ue[-1] >= window_end - EDGE_S),
                           squeezed=short or unvoiced, short=short, language=langs[k]))
    return out


def _token_times(res, n: int, nf: int, t0: float) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (s) of each of the n tokens on an alignment's path."""
    path = np.asarray(res.alignments, dtype=np.int64).reshape(-1, 2)  # (steps, [token, frame])
    tok_start = np.full(n + 1, np.inf)
    tok_end = np.full(n + 1, -np.inf)
    np.minimum.at(tok_start, np.clip(path[:, 0], 0, n), path[:, 1])
    np.maximum.at(tok_end, np.clip(path[:, 0], 0, n), path[:, 1] + 1)
    # tokens the path skipped take the time where their neighbours meet
    tok_start = np.minimum.accumulate(tok_start[::-1])[::-1][:n]
    tok_start = np.where(np.isfinite(tok_start), tok_start, nf // 2)  # (a path never misses the end)
    tok_end = np.maximum(np.maximum.accumulate(tok_end)[:n], tok_start)
    return t0 + tok_start * FRAME_S, t0 + tok_end * FRAME_S


def _support(logp: np.ndarray, logq: np.ndarray) -> float:
    """How much the song supports a line's tokens (0..1), from their log-probabilities given
    the window (logp) and given silence with the same text before them (logq), which is what
    the language model expects by itself. Two views, the larger wins: the mean log ratio
    (strong for new text), and the share of the remaining uncertainty the audio removes (for a
    repeated line, which the language model already expects from the text before it)."""
    if not len(logp):
        return 0.0
    ratio = float(np.mean(logp - logq))
    p, q = np.exp(logp), np.exp(logq)
    gain = float(np.mean(np.clip((p - q) / (1.0 - q + 1e-3), -1.0, 1.0)))
    return max(1.0 - math.exp(-max(ratio, 0.0) / 1.5), gain, 0.0)


def _unit_times(lt: LineTokens, ts: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start/end of each unit from its tokens' times. A token belongs to the characters it
    completes, or, when it completes none (the first bytes of a CJK character), to the character
    it begins; a token completing several characters shares its time evenly among them."""
    n_chars = lt.char_spans[-1][1] if lt.char_spans else 0
    c0 = np.full(n_chars, np.inf)
    c1 = np.full(n_chars, -np.inf)
    done = 0
    for j, e in enumerate(lt.ends):
        first, last = done, max(e, done + 1)  # characters [first, last) this token works on
        last = min(last, n_chars)
        m = max(last - first, 1)
        for k, c in enumerate(range(first, last)):
            c0[c] = min(c0[c], ts[j] + (te[j] - ts[j]) * k / m)
            c1[c] = max(c1[c], ts[j] + (te[j] - ts[j]) * (k + 1) / m)
        done = max(done, e)
    us = np.array([c0[a] for a, _ in lt.char_spans])
    ue = np.array([c1[b - 1] for _, b in lt.char_spans])
    return us, np.maximum(ue, us)


# ---- edges, words and confidence -------------------------------------------------------------------

def _rate(lt: LineTokens, us: np.ndarray) -> float:
    """Seconds per syllable of the line's delivery: the median over its inner units (the first
    and last take the music around the line, some inner ones a pause)."""
    w = [weight(u) for u in lt.units]
    per = [(us[j + 1] - us[j]) / w[j] for j in range(1, len(us) - 1)]
    r = float(np.median(per)) if per else DEFAULT_RATE
    return float(np.clip(r, *SEC_PER_SYLLABLE))


def _line_start(lt: LineTokens, us: np.ndarray, ue: np.ndarray, rate: float,
                vad: VoiceActivity | None, prev_end: float) -> float:
    """Where the line starts. The path's first units are not trusted: the first (and after a
    long gap sometimes the next ones too) are spread over the music before the line. The
    *anchor* is the first unit after those stretched ones (much longer than the line's rate
    gives, and unvoiced where voice activity is known). The start is the earliest voice onset
    from which the voice runs on into the anchor, within the time the units before the anchor
    can take; without one, the anchor's start less their expected length."""
    w = [weight(u) for u in lt.units]
    if len(us) == 1:
        anchor_t, lead = float(ue[0]), w[0]
    else:
        anchor = 1
        for j in range(1, (len(us) + 1) // 2):
            dur, expect = us[j + 1] - us[j], rate * w[j]
            if vad is not None:
                stretched = dur > 1.5 * expect + 0.25 and vad.fraction(us[j], us[j + 1]) < 0.5
            else:
                stretched = dur > 2.5 * expect + 0.4
            if stretched:
                anchor = j + 1
        anchor_t, lead = float(us[anchor]), sum(w[:anchor])
    est = max(float(us[0]), anchor_t - rate * lead)
    if vad is not None:
        lo = max(prev_end - 0.05, float(us[0]) - 0.2, anchor_t - SEC_PER_SYLLABLE[1] * lead - 0.3)
        hi = anchor_t + 0.3  # the path may put the anchor a little early
        for o in vad.onsets():
            if lo <= o <= hi and vad.fraction(o, max(anchor_t, o + 0.1)) >= 0.6:
                return float(o)
    return est


def _cap_end(p: _Placed, vad: VoiceActivity | None, shortest: float = 0.05,
             longest: float = math.inf) -> float:
    """The end of singing: the path's end (its last token takes the music after the line too),
    cut where the voice stops after the last unit starts, kept between `shortest` and `longest`
    seconds after that start (VAD often loses a held note before it ends)."""
    end = float(p.unit_end[-1])
    last = float(p.unit_start[-1])
    if vad is not None:
        off = vad.offsets()
        after = off[(off > last + 0.05) & (off < end)]
        if len(after):
            end = float(after[0])
    return float(min(max(end, last + shortest), last + longest, p.unit_end[-1]))


def _finish(lines: list[LineTokens], placed: dict[int, _Placed], vad: VoiceActivity | None,
            duration: float) -> list[LineTiming]:
    """Line starts first (each after the previous line's sung end as the path and the voice
    tell), then ends (each at least its last unit's length, before the next line's start),
    then the words in between."""
    order = sorted(placed)
    rates = [_rate(lines[k], placed[k].unit_start) for k in order]
    starts: list[float] = []
    prev_end = prev_min = 0.0
    for k, rate in zip(order, rates):
        p = placed[k]
        # voice onsets before the previous line's end (as path and voice tell) are its own; but
        # between back-to-back lines the path's boundary is no better than this line's estimate:
        # only the previous last unit's shortest length bounds it
        starts.append(max(_line_start(lines[k], p.unit_start, p.unit_end, rate, vad, prev_end), prev_min))
        prev_end = _cap_end(p, vad)
        prev_min = float(p.unit_start[-1]) + 0.5 * rate * weight(lines[k].units[-1])
    out: list[LineTiming] = []
    for n, (k, rate, start) in enumerate(zip(order, rates, starts)):
        p, lt = placed[k], lines[k]
        # the last unit lasts at least half its length at the line's rate, a held note up to 2.5 times
        w_last = weight(lt.units[-1])
        end = _cap_end(p, vad, 0.5 * rate * w_last, 2.5 * rate * w_last + 0.3)
        if n + 1 < len(order):
            end = min(end, starts[n + 1] - 0.02)
        end = float(min(max(end, start + 0.05), duration))
        us = np.clip(p.unit_start, start, end)
        us[0] = start
        us = _spread_ties(us, end)
        ue = np.concatenate([us[1:], [end]])
        words = tuple(Word(u, float(a), float(b)) for u, a, b in zip(lt.units, us, ue))
        out.append(LineTiming(k, float(start), end, words, _confidence(p, vad, start, end), language=p.language))
    return out


def _spread_ties(us: np.ndarray, end: float) -> np.ndarray:
    """Units the path gave one instant (e.g. two characters in one frame) share the time up to
    the next unit evenly, so every word has a length."""
    us = us.copy()
    k = 0
    while k < len(us):
        j = k
        while j + 1 < len(us) and us[j + 1] - us[k] < 1e-6:
            j += 1
        if j > k:
            nxt = us[j + 1] if j + 1 < len(us) else end
            us[k:j + 1] = us[k] + (nxt - us[k]) * np.arange(j - k + 1) / (j - k + 1)
        k = j + 1
    return us


def _confidence(p: _Placed, vad: VoiceActivity | None, start: float, end: float) -> float:
    """0..1: how much the song supports the words and, where VAD runs, how much of the line
    is voiced."""
    c = p.support
    if vad is not None:
        c *= 0.5 + 0.5 * min(1.0, vad.fraction(start, end) / 0.6)
    return round(float(c), 3)
