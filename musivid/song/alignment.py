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
later line in the same window is, and that the path puts where no voice sounds, is not sung: it
is left out and reported.

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
import unicodedata
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..errors import InputError
from ..text import is_no_space, unit_spans
from .segments import Word

log = logging.getLogger(__name__)

SR = 16000
FRAME_S = 0.02  # one encoder position (Whisper: 50 per second)
WINDOW_FRAMES = 3000  # 30 s of mel frames (100 per second)
MAX_TOKENS = 220  # text tokens per window (the decoder holds 448 with the prompt)
# a line counts as heard when the song supports its words at least this much (see _support:
# lines absent from a window score below 0.15, heard ones 0.4 to 1 on the test songs)
MIN_SUPPORT = 0.28
EDGE_S = 0.6  # a line ending this close to the window's end may be cut off: next window
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


@dataclass(frozen=True)
class LineTokens:
    """A lyric line as Whisper tokens: unit u covers characters [char_spans[u]) of `chars`, token
    j ends at character `ends[j]` of `chars` (a partly decoded character counts as not yet)."""

    text: str
    units: tuple[str, ...]
    tokens: tuple[int, ...]
    ends: tuple[int, ...]  # (len(tokens),) cumulative characters decoded after each token
    char_spans: tuple[tuple[int, int], ...]  # (len(units), 2)


def tokenize(text: str, tokenizer) -> LineTokens:
    """Tokens of a line, word by word (a leading space before words of spaced scripts, as Whisper
    writes them), with the character each token completes."""
    us = unit_spans(text)
    tokens: list[int] = []
    ends: list[int] = []
    spans: list[tuple[int, int]] = []
    done = 0
    for unit in us:
        u = unit.text
        piece = u if unit.no_space else " " + u
        ids = tokenizer.encode(piece)
        start = done
        for j in range(1, len(ids) + 1):
            dec = tokenizer.decode(ids[:j])
            ok = len(dec.lstrip(" ").split("\ufffd")[0]) if "\ufffd" in dec else len(dec.lstrip(" "))
            ends.append(start + min(ok, len(u)))
        tokens.extend(ids)
        if ids:
            ends[-1] = start + len(u)
        done = start + len(u)
        spans.append((start, done))
    return LineTokens(text, tuple(u.text for u in us), tuple(tokens), tuple(ends), tuple(spans))


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


# ---- the walk ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LineTiming:
    """Where one lyric line is sung: start/end of its singing, its words, and how sure we are
    (0..1). `sung` False: it was not found in the song (start/end are then meaningless)."""

    index: int
    start: float
    end: float
    words: tuple[Word, ...]
    confidence: float
    sung: bool = True


@dataclass
class _Placed:
    """A line as one window's path placed it (times in seconds from the song's start)."""

    line: int
    unit_start: np.ndarray  # (U,)
    unit_end: np.ndarray  # (U,)
    support: float  # 0..1, see _support
    at_edge: bool
    squeezed: bool

    @property
    def ok(self) -> bool:
        return not self.at_edge and not self.squeezed and self.support >= MIN_SUPPORT


def align_lines(model, samples16k: np.ndarray, texts: Sequence[str], language: str | None, *,
                vad: VoiceActivity | None = None, progress: Callable[[float], None] | None = None
                ) -> list[LineTiming]:
    """Time every line of `texts` in the song. `model`: a faster_whisper.WhisperModel;
    `language`: ISO code for a multilingual model (None for an English-only one).
    `progress(fraction)` is called after each window. Lines are returned in order; lines not
    found have sung=False."""
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    multi = model.model.is_multilingual
    tok = Tokenizer(model.hf_tokenizer, multi, task="transcribe", language=language if multi else None)
    lines = [tokenize(t, tok) for t in texts]
    for k, lt in enumerate(lines):
        if len(lt.tokens) > MAX_TOKENS:
            raise InputError(f"lyric line {k + 1} is too long to align ({len(lt.tokens)} Whisper tokens, at most "
                             f"{MAX_TOKENS}): split it into the lines that are sung")
    feats = model.feature_extractor(np.asarray(samples16k, np.float32))  # (n_mels, F), 100 per s
    n_frames = feats.shape[-1]
    duration = len(samples16k) / SR
    silence = model.encode(pad_or_trim(np.zeros_like(feats[:, :1]) + feats.min()))

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
        got = _align_window(model, tok, enc, silence, lines, cand, seek / 100, nf, last_window, vad)
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
            # heard lines follow in this window, so this one lies between them: not sung when
            # squeezed, or (where voice activity tells) placed mostly where no voice sounds
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
            first = got[0] if got else None
            jump = WINDOW_FRAMES // 2
            if first is not None and first.at_edge:
                core = first.unit_start[min(1, len(first.unit_start) - 1)]
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
    return _finish(lines, placed, unsung, vad, duration)


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


def _align_window(model, tok, enc, silence, lines, cand, t0, nf, last_window, vad) -> list[_Placed]:
    """Align the candidate lines in one window; one _Placed per line. A line is *squeezed* when
    the path gives it less time than the fastest delivery needs, or piles a third of its units
    onto one instant (tokens passed without time: the text is not there); where voice activity
    runs and the window holds some voice, a line placed over none of it counts as squeezed
    too (the path was pulled there by the text, not by a voice)."""
    flat: list[int] = []
    starts: list[int] = []
    for k in cand:
        starts.append(len(flat))
        flat.extend(lines[k].tokens)
    if not flat:
        return []
    res = model.model.align(enc, tok.sot_sequence, [flat], nf, median_filter_width=7)[0]
    null = model.model.align(silence, tok.sot_sequence, [flat], nf, median_filter_width=7)[0]
    path = np.asarray(res.alignments, dtype=np.int64).reshape(-1, 2)  # (steps, [token, frame])
    n = len(flat)
    tok_start = np.full(n + 1, np.inf)
    tok_end = np.full(n + 1, -np.inf)
    np.minimum.at(tok_start, np.clip(path[:, 0], 0, n), path[:, 1])
    np.maximum.at(tok_end, np.clip(path[:, 0], 0, n), path[:, 1] + 1)
    # tokens the path skipped take the time where their neighbours meet
    tok_start = np.minimum.accumulate(tok_start[::-1])[::-1][:n]
    tok_start = np.where(np.isfinite(tok_start), tok_start, nf // 2)  # (a path never misses the end)
    tok_end = np.maximum(np.maximum.accumulate(tok_end)[:n], tok_start)
    tok_start = t0 + tok_start * FRAME_S
    tok_end = t0 + tok_end * FRAME_S
    p = np.log(np.asarray(res.text_token_probs[:n], np.float64) + 1e-6)
    q = np.log(np.asarray(null.text_token_probs[:n], np.float64) + 1e-6)
    window_end = t0 + nf / 100
    window_voiced = vad.fraction(t0, window_end) if vad is not None else 0.0
    out = []
    for k, s in zip(cand, starts):
        lt = lines[k]
        sl = slice(s, s + len(lt.tokens))
        us, ue = _unit_times(lt, tok_start[sl], tok_end[sl])
        # the first token's probability depends on the line break before it, not on the audio
        inner = slice(s + 1, s + len(lt.tokens)) if len(lt.tokens) > 1 else sl
        c0 = us[1] if len(us) > 1 else us[0]
        core_w = sum(weight(u) for u in lt.units[1:]) or weight(lt.units[0])
        piled = float(np.mean((ue - us)[1:] < 1.5 * FRAME_S)) if len(us) > 2 else 0.0
        unvoiced = window_voiced > 0.02 and vad.fraction(c0, ue[-1]) < 0.1
        out.append(_Placed(k, us, ue, _support(p[inner], q[inner]),
                           at_edge=(not last_window) and ue[-1] >= window_end - EDGE_S,
                           squeezed=(ue[-1] - c0 < 0.5 * SEC_PER_SYLLABLE[0] * core_w or piled > 1 / 3
                                     or unvoiced)))
    return out


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


def _finish(lines: list[LineTokens], placed: dict[int, _Placed], unsung: set[int],
            vad: VoiceActivity | None, duration: float) -> list[LineTiming]:
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
        out.append(LineTiming(k, float(start), end, words, _confidence(p, vad, start, end)))
    out += [LineTiming(k, 0.0, 0.0, (), 0.0, sung=False) for k in unsung]
    return sorted(out, key=lambda t: t.index)


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
