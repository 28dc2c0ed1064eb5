"""Lyrics: plain text (one line per lyric line) or LRC (`[mm:ss.xx]` time tags) → [LyricLine].

Enhanced LRC is read too: word tags `<mm:ss.xx>` before each word give word times
(`[00:12.00]<00:12.00>Hello <00:12.50>world`), and a tag after the last word (the A2 extension's
form) is that word's end. An empty timed line marks a gap: the line before it ends there. Lines
with the same time tag are kept in file order and share the time until the next tag (with a
warning naming them).

Reading: UTF-8 (with or without a BOM), and UTF-16 or UTF-32 with a BOM; UTF-16/32 without one is
refused with "re-save it as UTF-8". Every line is cleaned (`musivid.text.clean_line`: escape
sequences, control and invisible format characters removed, with one warning naming the lines),
so captions, .srt/.lrc files and CLIP prompts never see them.

Image prompts: a line may end with ` | PROMPT` (a bar with a space on each side; a bar without
them is part of the words): the words before it are the line (sung, aligned, captioned), PROMPT is
what its image shows instead of the words (`LyricLine.prompt`; images/targets.py reads the
`[classes: ...]` and `[avoid: ...]` inside it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..text import clean_line, has_invisible, likely_language, words_language
from .segments import Segment, Word, from_times

# CLIP's context is 77 tokens; lines longer than this many characters are cut for CLIP (the full
# text stays in captions and the project).
MAX_LINE_CHARS = 300

_TAG = re.compile(r"\[(\d{1,3}):(\d{1,2}(?:[.:]\d{1,3})?)\]")
_WORD_TAG = re.compile(r"<(\d{1,3}):(\d{1,2}(?:[.:]\d{1,3})?)>")
_ANY_TAG = re.compile(r"<[^<>]{0,12}\d[^<>]{0,12}>")  # anything tag-like with a digit: a word tag, maybe bad
_META = re.compile(r"^\[[a-zA-Z#]+:.*\]\s*$")  # [ar:..] [ti:..] [offset:..] [length:..]
_LINE_BODY = re.compile(r"^(?:\[\d{1,3}:\d{1,2}(?:[.:]\d{1,3})?\])+(.*)$")  # a timed line and its text
_OFFSET = re.compile(r"^\[offset:\s*([+-]?\d{1,9})\s*\]\s*$", re.IGNORECASE)  # up to ~11 days in ms


@dataclass(frozen=True)
class LyricLine:
    text: str
    time: float | None = None  # seconds, from an LRC tag; None for plain lyrics
    words: tuple[Word, ...] = ()  # enhanced LRC word times; a last word without an end tag ends at inf
    prompt: str | None = None  # the image prompt after ` | ` (None: the image follows the words)


PROMPT_BAR = " | "


def split_prompt(line: str) -> tuple[str, str | None]:
    """'fire in the sky | a volcano at night' -> ('fire in the sky', 'a volcano at night'): the
    words before the first ` | ` and the image prompt after it (None without one, or when either
    side is empty: then the line is all words)."""
    words, bar, prompt = line.partition(PROMPT_BAR)
    if not bar or not words.strip() or not prompt.strip():
        return line, None
    return words.strip(), " ".join(prompt.split())


def with_prompt(words: str, prompt: str | None) -> str:
    """A lyric line written back with its image prompt (the inverse of split_prompt)."""
    return f"{words}{PROMPT_BAR}{prompt}" if prompt else words


def lrc_with_prompts(lrc: str, prompts: list[str | None]) -> str:
    """An LRC text (one timed lyric line per prompt, in order; empty timed lines and tags without
    text skipped) with each line's image prompt put back after ` | `."""
    out, k = [], 0
    for raw in lrc.splitlines():
        m = _LINE_BODY.match(raw)
        if m and m.group(1).strip() and k < len(prompts):
            raw = with_prompt(raw, prompts[k])
            k += 1
        out.append(raw)
    return "\n".join(out) + "\n"




@dataclass(frozen=True)
class Lyrics:
    lines: tuple[LyricLine, ...]
    timed: bool  # every line carries a time (LRC)
    path: Path | None
    warnings: tuple[str, ...] = ()
    gaps: tuple[float, ...] = ()  # times of empty timed LRC lines: no lyric from then on


# byte order marks, longest first (UTF-32-LE's begins with UTF-16-LE's)
_BOMS = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"), (b"\xef\xbb\xbf", "utf-8-sig"),
         (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def read_text(path: Path) -> str:
    """The text of a lyrics file: UTF-8, or UTF-16/UTF-32 with a byte order mark. An InputError
    (one line: the file, the problem, the fix) for a missing, binary or undecodable file."""
    if not path.exists():
        raise InputError(f"{path}: no such file: check the lyrics path")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a lyrics file")
    data = path.read_bytes()
    codec = next((c for bom, c in _BOMS if data.startswith(bom)), "utf-8-sig")
    name = {"utf-32": "UTF-32", "utf-16": "UTF-16", "utf-8-sig": "UTF-8"}[codec]
    if codec == "utf-8-sig" and b"\x00" in data[:4096]:
        wide = _wide_text(data[:4096])
        if wide:
            raise InputError(f"{path}: looks like {wide} text: re-save it as UTF-8 ({wide} is read only "
                             "with a byte order mark)")
        raise InputError(f"{path}: looks binary, not text: give lyrics as a UTF-8 .txt or .lrc file")
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        raise InputError(
            f"{path}: is not {name} (bad byte at offset {e.start}): re-save it as UTF-8"
        ) from None
    if "\x00" in text[:4096]:  # a byte order mark on binary data
        raise InputError(f"{path}: looks binary, not text: give lyrics as a UTF-8 .txt or .lrc file")
    return text


def _wide_text(sample: bytes) -> str | None:
    """"UTF-16" or "UTF-32" when bytes with NULs read as text in that encoding, in either byte
    order: the high byte of many code units NUL (ASCII characters, spaces, line ends), the low
    byte hardly ever, and the characters decoded printable. Binary data has NULs anywhere."""
    for size, name, codec in ((4, "UTF-32", "utf-32"), (2, "UTF-16", "utf-16")):
        n = len(sample) // size
        if n < 2:
            continue
        cut = sample[:n * size]
        nul = [cut[k::size].count(0) for k in range(size)]  # NULs at each byte position of a unit
        for order, low, high in (("le", 0, size - 1), ("be", size - 1, 0)):
            if nul[high] < max(1, n // 10) or nul[low] > n // 50:
                continue
            text = cut.decode(f"{codec}-{order}", errors="replace")
            seen = [ch for ch in text if not ch.isspace()]
            if seen and sum(ch.isprintable() and ch != "\ufffd" for ch in seen) >= 0.95 * len(seen):
                return name
    return None


# a repeat marker at the end of a line: "(x2)", "x2", "×3", "[2x]", "(x 2)"; after a space or alone
_REPEAT = re.compile(r"(?:^|\s)[(\[]?\s*(?:[x×]\s*(\d{1,2})|(\d{1,2})\s*[x×])\s*[)\]]?$", re.IGNORECASE)


def parse_plain(text: str) -> list[LyricLine]:
    """One lyric line per non-blank line. A repeat marker at the end of a line ("(x2)", "×2",
    "x3", "[2x]") stands for the line sung that many times; a marker alone repeats the line
    before it."""
    out: list[LyricLine] = []
    for raw in text.splitlines():
        t, prompt = split_prompt(clean_line(raw))
        m = _REPEAT.search(t)
        if m:
            n = int(m.group(1) or m.group(2))
            body = t[:m.start()].strip()
            if 2 <= n <= 20 and (body or out):
                line = LyricLine(body, prompt=prompt) if body else out.pop()
                out.extend([line] * n)
                continue
        if t:
            out.append(LyricLine(t, prompt=prompt))
    return out


def parse_lrc(text: str, gaps: list[float] | None = None) -> tuple[list[LyricLine], list[str]]:
    """Parse LRC: several tags per line allowed, metadata tags skipped, [offset:] applied, word
    tags read (enhanced LRC), lines sorted by time. Returns the lines and warnings (e.g. lines out
    of order, bad word tags). Empty timed lines are gap marks: their times go into `gaps`."""
    lines: list[LyricLine] = []
    where: list[tuple[int, float]] = []  # each line's number in the file and time tag, for warnings
    warnings: list[str] = []
    offset = 0.0
    last = -1.0
    out_of_order = False
    for number, raw in enumerate(text.splitlines(), 1):
        raw = clean_line(raw)
        if not raw:
            continue
        m = _OFFSET.match(raw)
        if m:
            offset = int(m.group(1)) / 1000.0  # LRC offset is in ms; positive = earlier
            continue
        tags = []
        pos = 0
        while (m := _TAG.match(raw, pos)) is not None:
            tags.append(int(m.group(1)) * 60 + float(m.group(2).replace(":", ".")))
            pos = m.end()
            while pos < len(raw) and raw[pos] == " ":
                pos += 1
        if not tags:
            if _META.match(raw):
                continue
            warnings.append(f"line without a time tag ignored: {raw[:40]!r}")
            continue
        body, prompt = split_prompt(raw[pos:])
        body, words = _word_tags(body, number, warnings)
        if not body:  # an empty timed line marks an instrumental gap
            if gaps is not None:
                gaps.extend(max(0.0, t - offset) for t in tags)
            continue
        for t in tags:
            if t < last:
                out_of_order = True
            last = t
            shift = t - tags[0] - offset  # word tags are absolute: a repeat of the line moves them along
            lines.append(LyricLine(body, max(0.0, t - offset),
                                   tuple(Word(w.text, max(0.0, w.start + shift), w.end + shift) for w in words),
                                   prompt))
            where.append((number, t))
    if out_of_order:
        warnings.append("time tags were out of order; lines sorted by time")
    ranked = sorted(zip(lines, where), key=lambda x: x[0].time or 0.0)  # stable: file order among ties
    lines = [ln for ln, _ in ranked]
    warnings += _same_time_warning([w for _, w in ranked], [ln.time or 0.0 for ln in lines])
    return lines, warnings


def _same_time_warning(where: list[tuple[int, float]], times: list[float]) -> list[str]:
    """One warning naming the lines that share a time (their file line numbers and time tag)."""
    groups: list[tuple[list[int], float]] = []
    k = 0
    while k < len(times):
        j = k
        while j < len(times) and times[j] == times[k]:
            j += 1
        if j - k > 1:
            groups.append((sorted({n for n, _ in where[k:j]}), where[k][1]))
        k = j
    if not groups:
        return []
    named = [f"{_plural('line', nums)} {_numbers(nums)} at [{_lrc_tag(t)}]" for nums, t in groups[:5]]
    more = f" and {len(groups) - 5} more times" if len(groups) > 5 else ""
    return [f"LRC {'; '.join(named)}{more} share a time tag: kept in file order, sharing the time until the "
            "next tag (give each line its own time)"]


def _numbers(nums: list[int]) -> str:
    """Sorted line numbers as ranges: "3-5, 9"."""
    runs: list[list[int]] = []
    for n in nums:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


def _plural(word: str, nums: list[int]) -> str:
    return word if len(nums) == 1 else word + "s"


def _lrc_tag(t: float) -> str:
    cs = int(round(max(0.0, t) * 100))
    return f"{cs // 6000:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def _word_tags(body: str, number: int, warnings: list[str]) -> tuple[str, tuple[Word, ...]]:
    """A line's text without its word tags, and its timed words. A tag with nothing after it is the
    end of the word before it; a malformed or backwards tag is dropped with a warning."""
    pieces: list[tuple[float | None, str]] = []  # (time of the tag before it, text)
    pos, t = 0, None
    for m in _ANY_TAG.finditer(body):
        pieces.append((t, body[pos:m.start()]))
        good = _WORD_TAG.fullmatch(m.group())
        if good is None:
            warnings.append(f"LRC line {number}: bad word tag {m.group()!r} ignored (use <mm:ss.xx>)")
            t = None
        else:
            t = int(good.group(1)) * 60 + float(good.group(2).replace(":", "."))
        pos = m.end()
    pieces.append((t, body[pos:]))
    text = clean_line("".join(p for _, p in pieces))
    words: list[Word] = []
    for k, (start, chunk) in enumerate(pieces):
        if start is None:
            continue
        if words and words[-1].end == float("inf"):
            if start < words[-1].start:
                warnings.append(f"LRC line {number}: word tag <{start:.2f}> goes back in time: ignored")
                continue
            words[-1] = Word(words[-1].text, words[-1].start, start)  # a word ends where the next begins
        if chunk.strip():
            words.append(Word(chunk.strip(), start, float("inf")))
    return text, tuple(words)


def timed_segments(lyrics: Lyrics, duration: float) -> list[Segment]:
    """Segments of timed (LRC) lyrics: each line from its time until the next line or gap mark,
    with its word times (enhanced LRC)."""
    lines = lyrics.lines
    return from_times([ln.text for ln in lines], [float(ln.time or 0.0) for ln in lines], duration,
                      lyrics.gaps, [ln.words for ln in lines])


def load(path: str | Path) -> Lyrics:
    """Read a .lrc (timed) or any other text file (one lyric line per line)."""
    path = Path(path)
    text = read_text(path)
    is_lrc = path.suffix.lower() == ".lrc" or bool(_TAG.match(text.lstrip()))
    gaps: list[float] = []
    if is_lrc:
        lines, warnings = parse_lrc(text, gaps)
    else:
        lines, warnings = parse_plain(text), []
    dirty = [n for n, raw in enumerate(text.splitlines(), 1) if has_invisible(raw)]
    if dirty:
        warnings.insert(0, f"{path}: {_plural('line', dirty)} {_numbers(dirty)}: control characters, escape "
                           "sequences or invisible formatting removed (check the lyrics' encoding and source)")
    if not lines:
        raise InputError(
            f"{path}: has no lyric lines (empty or blank): add one line of text per lyric line, "
            "or leave the lyrics out to transcribe the song"
        )
    return Lyrics(tuple(lines), timed=is_lrc, path=path, warnings=tuple(warnings), gaps=tuple(sorted(gaps)))


def check_times(lyrics: Lyrics, duration: float) -> Lyrics:
    """Drop LRC lines stamped past the end of the audio, with a warning for each."""
    if not lyrics.timed:
        return lyrics
    keep = [ln for ln in lyrics.lines if (ln.time or 0.0) < duration]
    dropped = len(lyrics.lines) - len(keep)
    warnings = list(lyrics.warnings)
    if dropped:
        warnings.append(
            f"{dropped} line(s) stamped after the end of the audio ({duration:.2f} s) were dropped"
        )
    if not keep:
        raise InputError(
            f"{lyrics.path}: every time tag is past the end of the audio ({duration:.2f} s): "
            "check that the LRC belongs to this song"
        )
    return Lyrics(tuple(keep), True, lyrics.path, tuple(warnings), lyrics.gaps)


def clip_text(text: str) -> tuple[str, bool]:
    """The text given to CLIP: cut to MAX_LINE_CHARS (returns whether it was cut)."""
    if len(text) <= MAX_LINE_CHARS:
        return text, False
    return text[:MAX_LINE_CHARS].rsplit(" ", 1)[0] or text[:MAX_LINE_CHARS], True


# ---- the lyrics' language ------------------------------------------------------------------------

def guess_language(texts: list[str]) -> str | None:
    """The lyrics' language as an ISO 639-1 code, from their script (`musivid.text.SCRIPTS`: at
    least 30 % of the letters in a script naming a language, kana among Han: Japanese), or for
    Latin script from their most frequent words (`musivid.text.words_language`); None when the text does not tell (too short,
    or a tie)."""
    text = " ".join(texts)
    return likely_language(text) or words_language(text)
