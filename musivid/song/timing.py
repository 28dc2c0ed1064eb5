"""Lyric timing: LRC as given; plain lyrics force-aligned to the song (musivid.song.alignment); no lyrics:
the song transcribed into lines.

Backends: faster-whisper (default; CTranslate2 model by name or local directory), which does the
forced alignment, and openai-whisper (`--asr openai-whisper`), which only transcribes: with it,
plain lyrics are placed by matching its transcript to the lines (the older method, kept for it;
see `line_starts`).

Language: each line's own as its script or words tell (`text.line_languages`); the song's is the
one most lines are in, else the lyrics' words together (`lyrics.guess_language`), else Whisper's
language detection on the 30 s of the song with the most voice (not the first 30 s, often an
instrumental intro). Alignment decodes each line in its language (a line the text does not tell
takes the song's, or in a song of several languages the one Whisper detects where it is sung).
An English-only model is refused when any line is not English.
"""
from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from contextlib import AbstractContextManager, nullcontext
from typing import Callable, Sequence

import numpy as np

from .audio import Audio
from ..config import DEFAULT_WHISPER, ModelConfig, TimingConfig
from ..errors import InputError, ModelUnavailableError
from ..files import looks_like_path
from ..text import clean_line, language_name, line_languages, normalize_words
from .lyrics import Lyrics, guess_language
from .segments import Segment, Word, from_times, spread_evenly
from .whisper_models import (EXTRA, INSTALL_HINT, WHISPER_MODELS, base_dir, bundled_tiny_en, cannot_download,
                             installed_base, installed_base_parts, joined_ok, unavailable_why)

log = logging.getLogger(__name__)

SR = 16000
VERSION = 2  # of the timing method: part of the project's timing cache key
LOW_CONFIDENCE = 0.35  # lines timed with less are named in a warning



# ---- results ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TimingResult:
    """Timed lines. `method`: "lrc" (as given), "aligned" (forced alignment or transcript match),
    "transcribed" (no lyrics), "even" (spread evenly: no recogniser, or nothing recognised).
    `lines[i]`: the lyric line (0-based) segment i comes from; lines not sung are left out and
    listed in `skipped`. `confidence[i]`: 0..1 per segment (1 for LRC, 0 for even spreads)."""

    segments: list[Segment]
    method: str
    warnings: tuple[str, ...] = ()
    lines: tuple[int, ...] = ()
    confidence: tuple[float, ...] = ()
    skipped: tuple[int, ...] = ()
    language: str | None = None


def segments_for(lyrics: Lyrics | None, audio: Audio, *, align=None) -> TimingResult:
    """Segments for `lyrics` (None: transcribe with `align`).

    `align`: a callable (audio, texts | None, source) -> TimingResult from `aligner`; without it
    plain lyrics are spread evenly.
    """
    dur = audio.duration
    if lyrics is not None and lyrics.timed:
        texts = [ln.text for ln in lyrics.lines]
        starts = [float(ln.time or 0.0) for ln in lyrics.lines]
        n = len(texts)
        return TimingResult(from_times(texts, starts, dur), "lrc", lyrics.warnings, tuple(range(n)), (1.0,) * n)
    if align is None:
        if lyrics is None:
            raise InputError("no lyrics given and no speech recogniser available: pass a lyrics file")
        return _even([ln.text for ln in lyrics.lines], dur, lyrics.warnings)
    texts_in = [ln.text for ln in lyrics.lines] if lyrics is not None else None
    res = align(audio, texts_in, lyrics.path if lyrics is not None else None)
    if lyrics is not None and lyrics.warnings:
        res = TimingResult(res.segments, res.method, lyrics.warnings + res.warnings, res.lines, res.confidence,
                           res.skipped, res.language)
    return res


def _even(texts: list[str], duration: float, warnings: tuple[str, ...] = (), language=None) -> TimingResult:
    n = len(texts)
    return TimingResult(spread_evenly(texts, duration), "even", warnings, tuple(range(n)), (0.0,) * n,
                        language=language)


def _named(idx: Sequence[int], texts: Sequence[str], extra: Sequence[str] = ()) -> str:
    """Lyric lines by number (1-based, after repeat markers are expanded) and their start."""
    out = []
    for k, i in enumerate(idx):
        t = texts[i] if len(texts[i]) <= 24 else texts[i][:23] + "…"
        out.append(f'{i + 1} ("{t}"{", " + extra[k] if extra else ""})')
    return ", ".join(out)


def from_alignment(texts: Sequence[str], timed: Sequence, duration: float, model_name: str,
                   language: str | None) -> TimingResult:
    """TimingResult from alignment.LineTiming per lyric line: sung lines become segments (with
    their words), lines left out are skipped; skips (with why: "no voice between lines 5 and
    7"), lines placed by their length (not heard) and low confidences are warned about by line
    number; when no line was found at all, the lines are spread evenly with one warning."""
    sung = [t for t in timed if t.sung]
    if not sung:
        msg = (f"no lyric line was recognised in the song (an instrumental, or a language Whisper {model_name} "
               "cannot hear?): lines spread evenly over the song")
        log.warning(msg)
        return _even(list(texts), duration, (msg,), language)
    warnings = []
    skipped = tuple(t.index for t in timed if not t.sung)
    estimated = [t for t in sung if t.estimated]
    for note in dict.fromkeys(t.note for t in timed if not t.sung):
        idx = [t.index for t in timed if not t.sung and t.note == note]
        warnings.append(f"line(s) {_named(idx, texts)} not found in the song{': ' + note if note else ''} (not sung?): "
                        "left out of the timing; if they are sung, time them by hand in an LRC")
    for note in dict.fromkeys(t.note for t in estimated):
        est = [t for t in estimated if t.note == note]
        warnings.append(f"line(s) {_named([t.index for t in est], texts, [f'{t.confidence:.2f}' for t in est])} "
                        f"not heard clearly: {note}: check them (musivid align writes an LRC to correct)")
    if len(skipped) + len(estimated) > len(timed) / 2:
        warnings.append(f"only {len(sung) - len(estimated)} of {len(timed)} lines were found: Whisper {model_name} "
                        "may not hear this song well; a larger --whisper-model may")
    low = [t for t in sung if t.confidence < LOW_CONFIDENCE and not t.estimated]
    if low:
        warnings.append(f"line(s) {_named([t.index for t in low], texts, [f'{t.confidence:.2f}' for t in low])} "
                        "timed with low confidence: check them (musivid align writes an LRC to correct)")
    for w in warnings:
        log.warning(w)
    segs = [Segment(k, texts[t.index], t.start, t.end, t.words) for k, t in enumerate(sung)]
    return TimingResult(segs, "aligned", tuple(warnings), tuple(t.index for t in sung),
                        tuple(t.confidence for t in sung), skipped, language)


def from_transcript(words: Sequence[Word], duration: float, language: str | None) -> TimingResult:
    """No lyrics: the transcript cut into lines; each ends where its last word ends."""
    words = [Word(t, w.start, w.end) for w in words if (t := clean_line(w.text))]  # no control characters
    lines = lines_from_words(words)
    segs = []
    for k, ln in enumerate(lines):
        nxt = lines[k + 1][0].start if k + 1 < len(lines) else duration
        start = min(ln[0].start, duration)
        end = float(np.clip(ln[-1].end, start, max(start, min(nxt, duration))))
        segs.append(Segment(k, " ".join(w.text for w in ln), start, end,
                            tuple(Word(w.text, w.start, min(w.end, end)) for w in ln)))
    return TimingResult(segs, "transcribed", (), tuple(range(len(segs))), (1.0,) * len(segs), language=language)


def lines_from_words(words: Sequence[Word], max_words: int = 10, pause: float = 0.6) -> list[list[Word]]:
    """No lyrics given: cut the transcript into lines at pauses, sentence marks and length."""
    lines: list[list[Word]] = []
    cur: list[Word] = []
    for w in words:
        if cur and (w.start - cur[-1].end >= pause or len(cur) >= max_words
                    or (re.search(r"[.,!?;:。，！？]$", cur[-1].text.strip()) and len(cur) >= 3)):
            lines.append(cur)
            cur = []
        cur.append(w)
    if cur:
        lines.append(cur)
    return lines


# ---- the song's language --------------------------------------------------------------------------

def language_for(texts: Sequence[str] | None, recogniser, samples16k: np.ndarray, vad,
                 source: Path | None = None) -> str | None:
    """The song's language, to transcribe in and to report (None for an English-only model): the
    language most lyric lines are in as their text tells (script or words: `text.line_languages`),
    else the lyrics' words together (`guess_language`), else Whisper's detection on the song's most
    voiced 30 s. Raises InputError, in one line, when any line is not English and the model hears
    English only."""
    texts = list(texts) if texts else []
    per = line_languages(texts)
    whole = guess_language(texts) if texts else None
    known = [lang for lang in per if lang]
    if recogniser.english_only:
        foreign = [(k, lang) for k, lang in enumerate(per) if lang not in (None, "en")]
        if foreign or whole not in (None, "en"):
            k, lang = foreign[0] if foreign else (None, whole)
            what = (f"the lyrics look {language_name(lang)} ({lang})" if k is None or set(known) == {lang}
                    else f"line {k + 1} looks {language_name(lang)} ({lang})")
            fallback = " (the default model could not be loaded)" if recogniser.fallback else ""
            raise InputError(f"{source or 'the lyrics'}: {what} but Whisper {recogniser.name}{fallback} hears English "
                             "only: pass a multilingual model, e.g. --whisper-model base")
        return None
    if known:
        return max(dict.fromkeys(known), key=known.count)  # the most lines' (the first of a tie)
    if whole is not None:
        return whole
    detect = getattr(recogniser, "detect_language", None)
    if detect is None:
        return None
    lang, prob = detect(samples16k, vad)
    log.info("the song sounds %s (%s, p=%.2f)", language_name(lang), lang, prob)
    return lang


def languages_per_line(texts: Sequence[str], song: str | None) -> list[str | None]:
    """The language each line is aligned in: its own as its text tells; a line whose text does
    not tell takes the song's language when the lines that tell agree on one, else None (the
    language Whisper detects where it is sung: a song in several languages)."""
    per = line_languages(list(texts))
    if len({lang for lang in per if lang}) <= 1:
        return [lang or song for lang in per]
    return per


def most_voiced_window(n_samples: int, vad, seconds: float = 30.0) -> int:
    """Start sample of the `seconds` of the song with the most voice (0 without VAD)."""
    win = int(seconds * SR)
    if vad is None or n_samples <= win:
        return 0
    step = int(5 * SR)
    starts = range(0, n_samples - win + 1, step)
    return max(starts, key=lambda a: vad.fraction(a / SR, (a + win) / SR))


# ---- backends --------------------------------------------------------------------------------------

class FasterWhisper:
    """faster-whisper (CTranslate2): transcription, language detection, forced alignment."""

    def __init__(self, model: str, *, offline: bool = False, cache: Path | None = None, device: str = "cpu",
                 fallback: bool = False, name: str | None = None):
        from faster_whisper import WhisperModel

        local = Path(model)
        # a local directory is named by its folder (and the one above when that is just "model")
        self.name = name or ((("/".join(local.parts[-2:]) if local.name in ("model", "models") else local.name)
                              if local.exists() else model))
        self.fallback = fallback  # loaded because the requested model could not be
        self.model = WhisperModel(model, device=device, compute_type="int8" if device == "cpu" else "float16",
                                  local_files_only=offline, download_root=str(cache) if cache else None)
        self.english_only = not self.model.model.is_multilingual

    def words(self, samples16k: np.ndarray, language: str | None = None) -> list[Word]:
        segs, _ = self.model.transcribe(samples16k, word_timestamps=True, beam_size=5,
                                        language="en" if self.english_only else language,
                                        condition_on_previous_text=False)
        return [Word(w.word.strip(), float(w.start), float(w.end)) for s in segs for w in (s.words or [])]

    def detect_language(self, samples16k: np.ndarray, vad=None) -> tuple[str, float]:
        """(ISO code, probability) from the song's most voiced 30 s."""
        from faster_whisper.audio import pad_or_trim

        a = most_voiced_window(len(samples16k), vad)
        feats = self.model.feature_extractor(np.asarray(samples16k[a:a + 30 * SR], np.float32))
        res = self.model.model.detect_language(self.model.encode(pad_or_trim(feats)))[0]
        token, prob = res[0]
        return token[2:-2], float(prob)

    def align(self, samples16k: np.ndarray, texts: Sequence[str], language: str | None, vad=None,
              languages: Sequence[str | None] | None = None):
        """alignment.LineTiming for every line of `texts` (`languages`: each line's, see align_lines)."""
        from .alignment import align_lines

        return align_lines(self.model, samples16k, texts, language, languages=languages, vad=vad)


class OpenAIWhisper:
    """openai-whisper: transcription only (plain lyrics are matched to its transcript)."""

    fallback = False

    def __init__(self, model, download_root: Path | None = None, device: str = "cpu"):
        import whisper

        self.name = model if isinstance(model, str) else "openai-whisper model"
        self.fp16 = device != "cpu"
        self.model = (whisper.load_model(model, device=device, download_root=str(download_root) if download_root else None)
                      if isinstance(model, str) else model)
        self.english_only = not self.model.is_multilingual

    def words(self, samples16k: np.ndarray, language: str | None = None) -> list[Word]:
        res = self.model.transcribe(samples16k.astype(np.float32), word_timestamps=True, language=language,
                                    fp16=self.fp16, condition_on_previous_text=False, temperature=0.0)
        return [Word(w["word"].strip(), float(w["start"]), float(w["end"]))
                for s in res["segments"] for w in s.get("words", [])]


def load_transcriber(asr: str, model: str | None, offline: bool = False, cache: Path | None = None,
                     device: str = "cpu"):
    """A speech recogniser on `device` ("cpu" or "cuda"). `model`: a name (downloaded into `cache`,
    unless offline) or a local directory; None: Whisper "small", or when that cannot be had the
    multilingual base of musivid[asr-offline], else the tiny.en of musivid[test]. "base" that
    cannot be downloaded is the installed base (whisper_models.installed_base)."""
    if asr == "openai-whisper":
        try:
            import whisper  # noqa: F401
        except ImportError:
            raise ModelUnavailableError("--asr openai-whisper needs the package: pip install openai-whisper") from None
        if offline and model and not Path(model).exists():
            raise ModelUnavailableError(f"--whisper-model {model}: offline mode is on and it is not a local file: "
                                        "give a local model file or drop --offline")
        return OpenAIWhisper(model or DEFAULT_WHISPER, download_root=cache, device=device)
    if asr not in ("auto", "faster-whisper"):
        raise InputError(f"--asr {asr}: unknown speech recogniser: use faster-whisper, openai-whisper or none")
    if model:
        try:
            return FasterWhisper(model, offline=offline, cache=cache, device=device)
        except Exception as e:  # noqa: BLE001 - download or format failure
            err = e
        if looks_like_path(model) or not cannot_download(err, offline):
            raise ModelUnavailableError(
                f"--whisper-model {model}: Whisper {model} {unavailable_why(err, offline)}: give a model name of "
                "`musivid models list` (with network access once) or a local CTranslate2 directory") from None
        where = "offline mode is on" if offline else "the model hub cannot be reached"
        if model == "base":  # the same model came with musivid[asr-offline]
            base = installed_base(cache)
            if base is not None:
                log.info("Whisper base is not in the cache and cannot be downloaded (%s): using the multilingual "
                         "base installed with %s", where, EXTRA)
                return FasterWhisper(str(base), device=device, name="base (installed)")
            hint = INSTALL_HINT
        elif installed_base_parts() is not None or joined_ok(base_dir(cache)):
            hint = f"--whisper-model base uses the multilingual base installed with {EXTRA}"
        else:
            hint = INSTALL_HINT
        raise ModelUnavailableError(
            f"--whisper-model {model}: Whisper {model} is not in the cache and cannot be downloaded ({where}): "
            f"{hint}, or pass --whisper-model DIR with a CTranslate2 Whisper model") from None
    try:
        return FasterWhisper(DEFAULT_WHISPER, offline=offline, cache=cache, device=device)
    except Exception as e:  # noqa: BLE001
        why = unavailable_why(e, offline)
    try:
        base = installed_base(cache)
    except ModelUnavailableError as e:  # damaged parts: said, and the next model is tried
        log.warning("%s", e)
        base = None
    if base is not None:
        log.warning("Whisper %s %s: using the multilingual base installed with %s (smaller, less accurate); "
                    "pass --whisper-model DIR for another", DEFAULT_WHISPER, why, EXTRA)
        return FasterWhisper(str(base), device=device, fallback=True, name="base (installed)")
    tiny = bundled_tiny_en()
    if tiny is None:
        raise ModelUnavailableError(
            f"Whisper {DEFAULT_WHISPER} {why}, and no other Whisper model is installed: {INSTALL_HINT}, run once "
            f"with network access (it downloads ~{WHISPER_MODELS[DEFAULT_WHISPER][1]} MB), pass --whisper-model "
            "DIR, give timed .lrc lyrics, or --asr none")
    log.warning("Whisper %s %s: using the English tiny.en model installed with musivid[test] (less accurate); "
                "pass --whisper-model DIR for another, or pip install '%s' for a multilingual one",
                DEFAULT_WHISPER, why, EXTRA)
    return FasterWhisper(str(tiny), device=device, fallback=True, name="tiny.en")


def aligner(asr: str, model: str | None, *, offline: bool = False, cache: Path | None = None,
            device: str = "cpu", required: bool = False) -> Callable | None:
    """A callable (audio, texts | None, source=None) -> TimingResult, or None if no recogniser
    can be had and one is not required (plain lyrics are then spread evenly, with a warning).
    `source` names the lyrics in error messages."""
    try:
        tr = load_transcriber(asr, model, offline, cache, device)
    except ModelUnavailableError as e:
        if required or asr != "auto" or model:
            raise
        log.warning("%s; until then the lyric lines are spread evenly over the song", e)
        return None

    def run(audio, texts, source: Path | None = None) -> TimingResult:
        from .voice import voice_activity

        x = _to16k(audio)
        dur = len(x) / SR
        vad = voice_activity(x)
        lang = language_for(texts, tr, x, vad, source)
        if texts is None:
            res = from_transcript(tr.words(x, lang), dur, lang)
            if not res.segments:
                raise InputError(f"{audio.path}: no words were recognised in the song: give the lyrics as a file")
            return res
        texts = list(texts)
        if isinstance(tr, FasterWhisper):
            langs = None if tr.english_only else languages_per_line(texts, lang)
            return from_alignment(texts, tr.align(x, texts, lang, vad, languages=langs), dur, tr.name, lang)
        words = tr.words(x, lang)  # openai-whisper: match the transcript to the lines
        if not words:
            return from_alignment(texts, [], dur, tr.name, lang)
        onsets = vad.onsets() if vad is not None else ()
        segs = from_times(texts, line_starts(texts, words, dur, onsets), dur)
        return TimingResult(segs, "aligned", (), tuple(range(len(segs))), (0.5,) * len(segs), language=lang)

    run.model_name = tr.name  # type: ignore[attr-defined]
    return run


def _to16k(audio) -> np.ndarray:
    if audio.sample_rate == SR:
        return audio.samples
    import librosa

    return librosa.resample(audio.samples, orig_sr=audio.sample_rate, target_sr=SR).astype(np.float32)


# ---- transcript matching (openai-whisper) ------------------------------------------------------------------

def _bigrams(w: str) -> set[str]:
    w = f"^{w}$"
    return {w[i:i + 2] for i in range(len(w) - 1)}


def expected_duration(word: str) -> float:
    """Rough sung/spoken length of a word (s): used only to catch stretched stamps."""
    return 0.12 + 0.065 * len(word)


def align_words(lyric: Sequence[str], heard: Sequence[str], gap: float = -0.4,
                min_sim: float = 0.5) -> list[int | None]:
    """For each lyric word, the index of the transcript word it matches (or None): global
    alignment (Needleman-Wunsch) with bigram-Dice similarity, free end gaps."""
    n, m = len(lyric), len(heard)
    if n == 0 or m == 0:
        return [None] * n
    big_h = [_bigrams(h) for h in heard]
    sim = np.zeros((n, m), dtype=np.float32)
    for i in range(n):
        bl = _bigrams(lyric[i])
        for j in range(m):
            sim[i, j] = 1.0 if lyric[i] == heard[j] else 2 * len(bl & big_h[j]) / (len(bl) + len(big_h[j]))
    score = np.where(sim >= min_sim, 2 * sim - 1, -1.0)
    dp = np.full((n + 1, m + 1), -np.inf)
    dp[0, :] = 0.0  # leading heard words are free
    dp[1:, 0] = gap * np.arange(1, n + 1)
    back = np.zeros((n + 1, m + 1), dtype=np.int8)  # 0 diag, 1 up (lyric gap), 2 left (heard gap)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d, u, l_ = dp[i - 1, j - 1] + score[i - 1, j - 1], dp[i - 1, j] + gap, dp[i, j - 1] + gap
            dp[i, j], back[i, j] = (d, 0) if d >= u and d >= l_ else ((u, 1) if u >= l_ else (l_, 2))
    j, i = int(np.argmax(dp[n])), n  # trailing heard words are free
    out: list[int | None] = [None] * n
    while i > 0 and j > 0:
        b = back[i, j]
        if b == 0:
            if sim[i - 1, j - 1] >= min_sim:
                out[i - 1] = j - 1
            i, j = i - 1, j - 1
        elif b == 1:
            i -= 1
        else:
            j -= 1
    return out


def line_starts(lines: Sequence[str], words: Sequence[Word], duration: float,
                onsets: Sequence[float] = ()) -> list[float]:
    """Start of every lyric line from a transcript (never None, strictly increasing, inside
    [0, duration)): a stretched first word is clamped, a missed one backed off from the first
    matched word, the estimate snapped to a speech onset within [-0.8, +0.4] s; lines never
    recognised are interpolated between their neighbours by text length."""
    lw = [normalize_words(t) for t in lines]
    flat = [(li, k, w) for li, ws in enumerate(lw) for k, w in enumerate(ws)]
    hflat = [(wi, h) for wi, w in enumerate(words) for h in normalize_words(w.text)]
    match = align_words([w for _, _, w in flat], [h for _, h in hflat])
    est: list[float | None] = [None] * len(lines)
    onsets = np.asarray(sorted(onsets), dtype=float)
    prev_end = -1.0
    for li in range(len(lines)):
        items = [(k, w, match[idx]) for idx, (l2, k, w) in enumerate(flat) if l2 == li]
        hits = [(k, w, hflat[m][0]) for k, w, m in items if m is not None]
        if not hits:
            continue
        k0, w0, wi = hits[0]
        word = words[wi]
        if k0 == 0:
            start = word.start
            if word.end - word.start > 1.6 * expected_duration(w0):  # stretched back over silence
                start = word.end - expected_duration(w0)
        else:
            start = word.start - sum(expected_duration(w) for k, w, _ in items if k < k0)
        if len(onsets):
            cand = onsets[(onsets >= start - 0.8) & (onsets <= start + 0.4) & (onsets > prev_end - 0.05)]
            if len(cand):
                start = float(cand[np.argmin(np.abs(cand - start))])
        est[li] = start
        prev_end = max(prev_end, words[hits[-1][2]].end)
    return _fill_and_order(est, lines, duration)


def _fill_and_order(est: list[float | None], lines: Sequence[str], duration: float) -> list[float]:
    """Interpolate missing starts by text length between known neighbours (evenly when none is
    known); keep them strictly increasing inside the song."""
    n = len(est)
    weights = [max(1, len(t)) for t in lines]
    out = list(est)
    anchors = [(-1, 0.0)] + [(i, e) for i, e in enumerate(est) if e is not None] + [(n, duration)]
    for (ia, ta), (ib, tb) in zip(anchors, anchors[1:]):
        if ib - ia <= 1:
            continue
        if ia < 0:  # before the first known line: line 0 at the song's start, even steps
            for i in range(0, ib):
                out[i] = ta + (tb - ta) * i / ib
            continue
        span_w = sum(weights[ia:ib])
        acc = weights[ia]
        for i in range(ia + 1, ib):
            out[i] = ta + (tb - ta) * acc / span_w
            acc += weights[i]
    gap = min(0.05, duration / (2 * max(n, 1)))
    res: list[float] = []
    for t in out:
        t = float(np.clip(t, 0.0, duration))
        res.append(max(t, res[-1] + gap) if res else t)
    if res and res[-1] > duration - gap:  # squeeze the tail back inside the song
        limit = duration - gap
        for i in range(n - 1, -1, -1):
            res[i] = min(res[i], limit)
            limit = res[i] - gap
        res = [max(0.0, t) for t in res]
    return res


def time_lyrics(lyrics: Lyrics | None, audio: Audio, t: TimingConfig, models: ModelConfig, device: str,
                stage: Callable[[str, str | None], AbstractContextManager] | None = None,
                required: bool = False) -> TimingResult:
    """Segments for the lyrics (LRC: as given, with gap marks and enhanced LRC's word times; plain:
    force-aligned with Whisper; none: transcribed). `stage(name, message)` wraps the model load
    ("load_whisper") and the timing ("timing"): said, timed, reported (pipeline). `required`: a
    recogniser must be had (else an error, not an even spread)."""
    from .lyrics import timed_segments
    from ..images.models.registry import cache_dir, offline_from_env

    stage = stage or (lambda name, message: nullcontext())
    for w in (lyrics.warnings if lyrics is not None else ()):
        log.warning(w)
    align = None
    if (lyrics is None or not lyrics.timed) and t.asr != "none":
        with stage("load_whisper", None):
            align = aligner(t.asr, t.whisper_model, offline=models.offline or offline_from_env(), device=device,
                            cache=cache_dir(models.cache_dir) / "whisper", required=required or lyrics is None)
    msg = None
    if align is not None:
        what = "transcribing the song" if lyrics is None else f"aligning {len(lyrics.lines)} lyric lines to the song"
        msg = f"{what} with Whisper {align.model_name}"
    with stage("timing", msg):
        res = segments_for(lyrics, audio, align=align)
    if lyrics is not None and lyrics.timed:
        res = dataclasses.replace(res, segments=timed_segments(lyrics, audio.duration))
    if lyrics is not None and not lyrics.timed and t.asr == "none":  # else `aligner` said why
        log.warning("plain lyrics with --asr none: lines are spread evenly over the song (timed .lrc lyrics "
                    "place them exactly)")
    return res
