"""Captions: SRT and LRC files, and lyric lines drawn into frames (plain or karaoke).

Which frames show a line, exactly: frame i (shown at t = i / fps, fps the exact rational rate
render.fps_fraction gives) shows line L iff start_L <= t < end_L. `frame_span` computes that once;
the burned-in captions (CaptionTrack) and the .srt (write_srt with fps) both use it, so they agree
to the frame: the .srt's start is the time of the first frame showing the line and its end the
time of the first frame after it. A line's end is the end of its singing (from the timing stage),
so an instrumental break shows no caption.

Karaoke: the word being sung is drawn in CURRENT colour, the words already sung in SUNG, the
rest in UPCOMING. The highlighted units are `musivid.text.unit_spans`: words, and each character
of a script written without spaces (Chinese, Japanese, Thai...), exactly the units alignment
times. Word times come from Segment.words (alignment, enhanced LRC); a line without
them spreads its words over the line by character count. `layout` is the one function that places
words in a frame: the renderer draws with it and tests measure with it.

Every text written or drawn here goes through `musivid.text.clean_line` first (lyrics are cleaned
when read; a segment from elsewhere, a transcription or an edit, may not be): no escape sequence,
control or invisible format character reaches an .srt, an .lrc or a frame, and a line left with
no text is not written.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..files import atomic_write_text
from ..text import Unit, clean_line, unit_spans
from .fonts import FontFinder
from ..song.segments import Segment, Word

UPCOMING = (255, 255, 255)  # karaoke: words not sung yet (and every word of a plain caption)
CURRENT = (255, 200, 0)  # karaoke: the word being sung
SUNG = (130, 200, 255)  # karaoke: words already sung
OUTLINE = (0, 0, 0)


# ---- times and files -------------------------------------------------------------------------------

def srt_time(t: float) -> str:
    ms = int(round(max(0.0, t) * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def lrc_time(t: float) -> str:
    cs = int(round(max(0.0, t) * 100))  # LRC has centiseconds: round once, carry into the minutes
    return f"{cs // 6000:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def exact_fps(fps: float) -> float:
    """The frame rate the video is written with (29.97 -> 30000/1001), as a float."""
    from .render import fps_fraction

    return float(fps_fraction(fps))


def frame_span(start: float, end: float, fps: float) -> tuple[int, int]:
    """Frames [first, stop) whose time i / fps lies in [start, end); fps as written (exact_fps).
    A tolerance of a millionth of a frame absorbs float error at a frame's exact time."""
    first = max(0, math.ceil(start * fps - 1e-6))
    stop = max(first, math.ceil(end * fps - 1e-6))
    return first, stop


def clean_segments(segments: Sequence[Segment]) -> list[Segment]:
    """The segments with their text and words cleaned (`musivid.text.clean_line`); a segment
    whose text is left empty is dropped."""
    out = []
    for s in segments:
        text = clean_line(s.text)
        if text == s.text and all(clean_line(w.text) == w.text for w in s.words):
            out.append(s)
        elif text:
            out.append(dataclasses.replace(s, text=text, words=tuple(
                dataclasses.replace(w, text=clean_line(w.text)) for w in s.words)))
    return out


def write_srt(segments: Sequence[Segment], path: Path, fps: float | None = None,
              frames: tuple[int, int] | None = None) -> None:
    """SubRip captions. With `fps` (the video's), each line runs from its first shown frame to the
    frame after its last, exactly as burned in; `frames` = [first, last) of an excerpt: only the
    lines it shows, timed from its first frame. Without fps: the segments' own times. Texts are
    cleaned (`clean_segments`)."""
    entries = []
    for s in clean_segments(segments):
        if fps is None:
            entries.append((s.start, max(s.end, s.start + 0.001), s.text))
            continue
        rate = exact_fps(fps)
        a, b = frame_span(s.start, s.end, rate)
        if frames is not None:
            a, b = max(a, frames[0]) - frames[0], min(b, frames[1]) - frames[0]
        if b > a:  # a line shorter than a frame is never on screen
            entries.append((a / rate, b / rate, s.text))
    lines = []
    for i, (t0, t1, text) in enumerate(entries, 1):
        lines += [str(i), f"{srt_time(t0)} --> {srt_time(t1)}", text, ""]
    atomic_write_text(path, "\n".join(lines))


def write_lrc(segments: Sequence[Segment], path: Path) -> None:
    """LRC, enhanced where word times are known: `[mm:ss.xx]<mm:ss.xx>word <mm:ss.xx>word <end>`
    (the trailing tag is the end of the last word). A line that ends before the next one starts
    is followed by an empty timed line, LRC's mark for "no lyric here", so reading the file back
    gives the same captions. Texts are cleaned (`clean_segments`)."""
    segments = clean_segments(segments)
    out = ["[re:musivid align]"]
    for k, s in enumerate(segments):
        out.append(f"[{lrc_time(s.start)}]{_tagged(s) if s.words else s.text}")
        nxt = segments[k + 1].start if k + 1 < len(segments) else None
        if nxt is None or s.end < nxt - 0.015:
            out.append(f"[{lrc_time(s.end)}]")
    atomic_write_text(path, "\n".join(out) + "\n")


def _tagged(s: Segment) -> str:
    """The line's text with a time tag before each word found in it (so spelling, spacing and
    punctuation stay the lyric's own; a transcribed word that is not in the text gets no tag),
    and the last word's end after it."""
    parts, pos = [], 0
    for w, span in zip(s.words, word_spans(s.text, s.words)):
        if span is None:
            continue
        parts += [s.text[pos:span[0]], f"<{lrc_time(w.start)}>", s.text[span[0]:span[1]]]
        pos = span[1]
    if not parts:
        return s.text
    return "".join(parts) + s.text[pos:] + f"<{lrc_time(s.words[-1].end)}>"


# ---- words of a line ---------------------------------------------------------------------------------

def word_spans(text: str, words: Sequence[Word]) -> list[tuple[int, int] | None]:
    """Where each timed word sits in the line's text (case-insensitive, in order); None for a
    word not found there (a transcription that differs from the lyric)."""
    low = text.casefold()
    spans: list[tuple[int, int] | None] = []
    pos = 0
    for w in words:
        needle = w.text.strip().casefold()
        at = low.find(needle, pos) if needle else -1
        if at < 0:
            bare = re.sub(r"[^\w]", "", needle)
            at = low.find(bare, pos) if bare else -1
            needle = bare
        if at < 0:
            spans.append(None)
            continue
        spans.append((at, at + len(needle)))
        pos = at + len(needle)
    return spans


def unit_times(seg: Segment, us: Sequence[Unit]) -> list[float]:
    """When each unit starts being sung: from the segment's word times where they cover it,
    otherwise spread by character count between the known neighbours (the whole line without
    word times)."""
    n = len(us)
    starts: list[float | None] = [None] * n
    for w, span in zip(seg.words, word_spans(seg.text, seg.words)):
        if span is None:
            continue
        for k, u in enumerate(us):
            if u.a < span[1] and span[0] < u.b:
                starts[k] = w.start if starts[k] is None else min(starts[k], w.start)
    # units without a time: by character count between the neighbours that have one
    weight = [max(1, len(u.text)) for u in us]
    k = 0
    while k < n:
        if starts[k] is not None:
            k += 1
            continue
        j = k
        while j < n and starts[j] is None:
            j += 1
        t0 = seg.start if k == 0 else starts[k - 1]
        t1 = starts[j] if j < n else seg.end
        prev_w = 0 if k == 0 else weight[k - 1]
        total = prev_w + sum(weight[k:j])
        acc = prev_w
        for i in range(k, j):
            starts[i] = t0 + (t1 - t0) * acc / total
            acc += weight[i]
        k = j
    return [float(max(seg.start, t)) for t in starts]  # type: ignore[arg-type]


# ---- layout and drawing --------------------------------------------------------------------------------

@dataclass(frozen=True)
class CaptionLayout:
    """A line placed in a frame: the font, its rows and every unit's box in frame pixels."""

    font: object  # PIL FreeTypeFont
    size: int
    stroke: int
    rows: tuple[tuple[str, float, float], ...]  # (text, x, y) per row
    units: tuple[Unit, ...]
    boxes: tuple[tuple[float, float, float, float], ...]  # (x0, y0, x1, y1) per unit, outline included
    origins: tuple[tuple[float, float], ...]  # where each unit's text is drawn


def caption_px(width: int, height: int, scale: float = 1.0) -> int:
    """The caption font's size in pixels: 1/16 of the frame's short side times `scale`
    (RenderConfig.caption_size), at least 10."""
    return max(10, int(min(width, height) * scale / 16))


def layout(text: str, width: int, height: int, finder: FontFinder | None = None,
           line: int | None = None, scale: float = 1.0, position: str = "bottom",
           clear: tuple[int, int] = (0, 0)) -> CaptionLayout:
    """Centre `text` horizontally in a width x height frame, at its bottom, middle or top
    (`position`), wrapped to 92 % of the width (at spaces, and between the characters of scripts
    written without spaces), in a font that covers it, of caption_px(width, height, scale).
    `clear` = (top, bottom): bands of the frame's height the rows stay out of (the untrained mark).
    The text is cleaned first (`musivid.text.clean_line`): the units' spans are in the clean text."""
    from PIL import Image, ImageDraw

    text = clean_line(text)
    finder = finder or _default_finder()
    size = caption_px(width, height, scale)
    fnt = finder.font(text, size, line)
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    us = unit_spans(text) or [Unit(text, 0, len(text), False)]
    rows = _wrap_units(draw, us, fnt, 0.92 * width)
    stroke = max(1, size // 12)
    step = int(size * 1.35)
    block = step * len(rows)
    y = {"bottom": height - block - size // 2, "middle": (height - block) // 2, "top": size // 2}[position]
    y = max(clear[0], min(y, height - clear[1] - block)) if clear != (0, 0) else y
    placed, boxes, origins = [], [], []
    for row in rows:
        s = _join(row)
        x = (width - draw.textlength(s, font=fnt)) / 2
        top, bottom = fnt.getbbox(s)[1], fnt.getbbox(s)[3]
        prefix = ""
        for k, u in enumerate(row):
            sep = " " if (u.space and k > 0) else ""
            x0 = x + draw.textlength(prefix + sep, font=fnt)
            x1 = x + draw.textlength(prefix + sep + u.text, font=fnt)
            origins.append((x0, y))
            boxes.append((x0 - stroke, y + top - stroke, x1 + stroke, y + bottom + stroke))
            prefix += sep + u.text
        placed.append((s, x, y))
        y += step
    return CaptionLayout(fnt, size, stroke, tuple(placed), tuple(u for row in rows for u in row), tuple(boxes),
                         tuple(origins))


def _join(row: Sequence[Unit]) -> str:
    return "".join((" " if (u.space and k > 0) else "") + u.text for k, u in enumerate(row))


def _wrap_units(draw, us: Sequence[Unit], fnt, width: float) -> list[list[Unit]]:
    rows: list[list[Unit]] = []
    cur: list[Unit] = []
    for u in us:
        if cur and draw.textlength(_join(cur + [u]), font=fnt) > width:
            rows.append(cur)
            cur = []
        cur.append(u)
    rows.append(cur)
    return rows


def wrap(draw, text: str, fnt, width: float) -> list[str]:
    """Greedy wrap of `text` to `width` pixels at spaces and between the characters of scripts
    written without spaces; a word longer than the width gets a row of its own."""
    us = unit_spans(text)
    return [_join(row) for row in _wrap_units(draw, us, fnt, width)] if us else [text]


def draw_caption(frame: np.ndarray, lay: CaptionLayout, current: int | None = None,
                 karaoke: bool = False) -> np.ndarray:
    """Draw a laid-out line on an (H, W, 3) uint8 frame: white with a dark outline; in karaoke,
    unit `current` in CURRENT and the ones before it in SUNG (current None: nothing sung yet)."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    kw = dict(font=lay.font, stroke_width=lay.stroke, stroke_fill=OUTLINE)
    if not karaoke:
        for s, x, y in lay.rows:
            draw.text((x, y), s, fill=UPCOMING, **kw)
    else:
        for k, (u, xy) in enumerate(zip(lay.units, lay.origins)):
            colour = UPCOMING if current is None or k > current else CURRENT if k == current else SUNG
            draw.text(xy, u.text, fill=colour, **kw)
    return np.asarray(img)


def caption_sprite(lay: CaptionLayout, width: int, height: int, current: int | None = None,
                   karaoke: bool = False):
    """The laid-out line as a frame.Sprite (its box only, clipped to the frame): what draw_caption
    draws, taken as colour and coverage by drawing it once on black and once on white (a pixel
    drawn as frame x (1 - alpha) + p is p on black and 255 (1 - alpha) + p on white), so blending
    it over any frame (in RGB, or on the encoder's yuv420p planes) is draw_caption on that frame.
    None when nothing of it is in the frame."""
    from .frame import Sprite

    pad = lay.stroke + lay.size // 4 + 2  # glyphs may reach past their advance boxes
    x0 = max(0, int(math.floor(min(b[0] for b in lay.boxes))) - pad) // 2 * 2
    y0 = max(0, int(math.floor(min(b[1] for b in lay.boxes))) - pad) // 2 * 2
    x1 = min(width, int(math.ceil(max(b[2] for b in lay.boxes))) + pad + 1) // 2 * 2
    y1 = min(height, int(math.ceil(max(b[3] for b in lay.boxes))) + pad + 1) // 2 * 2
    if x1 <= x0 or y1 <= y0:
        return None
    moved = dataclasses.replace(
        lay, rows=tuple((t, x - x0, y - y0) for t, x, y in lay.rows),
        boxes=tuple((a - x0, b - y0, c - x0, d - y0) for a, b, c, d in lay.boxes),
        origins=tuple((x - x0, y - y0) for x, y in lay.origins))
    shape = (y1 - y0, x1 - x0, 3)
    on_black = draw_caption(np.zeros(shape, np.uint8), moved, current, karaoke).astype(np.float32)
    on_white = draw_caption(np.full(shape, 255, np.uint8), moved, current, karaoke).astype(np.float32)
    alpha = np.clip(1 - (on_white - on_black).mean(-1) / 255, 0, 1)
    return Sprite(x0, y0, on_black / 255, alpha)


def burn_caption(frame: np.ndarray, text: str, finder: FontFinder | None = None) -> np.ndarray:
    """Draw `text` at the bottom of an (H, W, 3) uint8 frame, white with a dark outline."""
    h, w = frame.shape[:2]
    return draw_caption(frame, layout(text, w, h, finder))


@functools.lru_cache(maxsize=1)
def _default_finder() -> FontFinder:
    return FontFinder()


# ---- the overlay ---------------------------------------------------------------------------------------

def caption_track(segments: Sequence[Segment], cfg, untrained: bool = False) -> "CaptionTrack | None":
    """The captions a RenderConfig asks for (None: none), laid out for its frame (size and place,
    clear of the untrained mark where the render draws one: `untrained`)."""
    from .frame import FrameSpec, mark_clear, untrained_mark

    if cfg.captions == "none":
        return None
    spec = FrameSpec.of(cfg)
    mark = untrained_mark(spec.width, spec.height, cfg.caption_position) if untrained else None
    return CaptionTrack(segments, cfg.fps, cfg.captions, cfg.font, cfg.caption_size, cfg.caption_position,
                        mark_clear(mark, spec.height))


class CaptionTrack:
    """The lyric line (and in karaoke the word) drawn on each video frame: the overlay that
    render.render calls as overlay(frame index in the song, image). `scale`, `position` and
    `clear`: how `layout` places the lines."""

    def __init__(self, segments: Sequence[Segment], fps: float, mode: str = "line", font: str | None = None,
                 scale: float = 1.0, position: str = "bottom", clear: tuple[int, int] = (0, 0)):
        if mode not in ("line", "karaoke"):
            raise ValueError(f"caption mode {mode!r}: use 'line' or 'karaoke'")
        self.segments = clean_segments(segments)  # what is drawn, and the units karaoke times
        self.fps = exact_fps(fps)
        self.mode = mode
        self.scale, self.position, self.clear = scale, position, clear
        self.spans = [frame_span(s.start, s.end, self.fps) for s in self.segments]
        self.line_of_frame = np.full(max((b for _, b in self.spans), default=0), -1)  # (F,) -1: none
        for k, (a, b) in enumerate(self.spans):  # a later line takes over from an overlapping one
            self.line_of_frame[a:b] = k
        self.finder = FontFinder(font)
        for s in self.segments:  # choose fonts (and warn about missing glyphs) before rendering starts
            self.finder.face_for(s.text, s.index + 1)
        self._layouts: dict[tuple[int, int, int], CaptionLayout] = {}
        self._starts: dict[int, list[float]] = {}
        self._sprites: dict[tuple[int, int | None, int, int], object] = {}

    def line_at(self, index: int) -> int:
        """The position in `self.segments` (the given segments, cleaned, a line left with no text
        dropped) of the line shown on frame `index`, -1 for none."""
        return int(self.line_of_frame[index]) if 0 <= index < len(self.line_of_frame) else -1

    def word_at(self, index: int) -> int | None:
        """Karaoke: the unit (see `musivid.text.unit_spans`) being sung on frame `index` (None: none yet or no line)."""
        k = self.line_at(index)
        if k < 0:
            return None
        if k not in self._starts:
            self._starts[k] = unit_times(self.segments[k], unit_spans(self.segments[k].text))
        t = index / self.fps
        sung = [i for i, st in enumerate(self._starts[k]) if st <= t]
        return sung[-1] if sung else None

    def layout(self, k: int, width: int, height: int) -> CaptionLayout:
        key = (k, width, height)
        if key not in self._layouts:
            s = self.segments[k]
            self._layouts[key] = layout(s.text, width, height, self.finder, s.index + 1, self.scale, self.position,
                                        self.clear)
        return self._layouts[key]

    def sprite(self, index: int, width: int, height: int):
        """What frame `index` of a width x height video shows of the captions, as a frame.Sprite
        (None: no line): render.render blends it into the encoder's planes. Made once per line (and
        per karaoke word), kept while the line shows."""
        k = self.line_at(index)
        if k < 0:
            return None
        current = self.word_at(index) if self.mode == "karaoke" else None
        key = (k, current, width, height)
        if key not in self._sprites:
            if len(self._sprites) > 64:  # the lines already shown: not needed again in order
                self._sprites.clear()
            self._sprites[key] = caption_sprite(self.layout(k, width, height), width, height, current,
                                                self.mode == "karaoke")
        return self._sprites[key]

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        k = self.line_at(index)
        if k < 0:
            return frame
        lay = self.layout(k, frame.shape[1], frame.shape[0])
        if self.mode == "karaoke":
            return draw_caption(frame, lay, self.word_at(index), karaoke=True)
        return draw_caption(frame, lay)
