"""Captions: SRT and LRC files, and lyric lines drawn into frames (fonts, word wrap, outline)."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import numpy as np

from .files import atomic_write_text
from .schedule import Segment

# fonts tried in order; the CJK ones are preferred for text outside Latin/Greek/Cyrillic
LATIN_FONTS = ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
CJK_FONTS = ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
             "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")


def srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def lrc_time(t: float) -> str:
    m, sec = divmod(max(0.0, t), 60)
    return f"{int(m):02d}:{sec:05.2f}"


def write_srt(segments: Sequence[Segment], path: Path) -> None:
    lines = []
    for i, s in enumerate(segments, 1):
        lines += [str(i), f"{srt_time(s.start)} --> {srt_time(max(s.end, s.start + 0.001))}", s.text, ""]
    atomic_write_text(path, "\n".join(lines))


def write_lrc(segments: Sequence[Segment], path: Path) -> None:
    lines = ["[re:musivid align]"] + [f"[{lrc_time(s.start)}]{s.text}" for s in segments]
    atomic_write_text(path, "\n".join(lines) + "\n")


@functools.lru_cache(maxsize=64)
def font(size: int, cjk: bool = False):
    """A TrueType font of `size` px (bold where available); CJK-capable when asked and installed."""
    from PIL import ImageFont

    for name in (CJK_FONTS + LATIN_FONTS) if cjk else (LATIN_FONTS + CJK_FONTS):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def font_for(text: str, size: int):
    """A font with glyphs for `text` (CJK falls back to Noto CJK where installed)."""
    return font(size, cjk=any(ord(ch) > 0x2E7F for ch in text))


def wrap(draw, text: str, fnt, width: float) -> list[str]:
    """Greedy word wrap to `width` pixels; a word longer than the width gets a line of its own."""
    lines: list[str] = []
    cur = ""
    for word in text.split() or [text]:
        trial = f"{cur} {word}".strip()
        if not cur or draw.textlength(trial, font=fnt) <= width:
            cur = trial
        else:
            lines.append(cur)
            cur = word
    lines.append(cur)
    return lines


def burn_caption(frame: np.ndarray, text: str) -> np.ndarray:
    """Draw `text` at the bottom of an (H, W, 3) uint8 frame, white with a dark outline."""
    from PIL import Image, ImageDraw

    h, w = frame.shape[:2]
    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    size = max(10, h // 16)
    fnt = font_for(text, size)
    lines = wrap(draw, text, fnt, 0.92 * w)
    step = int(size * 1.35)
    y = h - step * len(lines) - size // 2
    for line in lines:
        tw = draw.textlength(line, font=fnt)
        draw.text(((w - tw) / 2, y), line, font=fnt, fill=(255, 255, 255), stroke_width=max(1, size // 12),
                  stroke_fill=(0, 0, 0))
        y += step
    return np.asarray(img)


class CaptionTrack:
    """Which lyric line is drawn on which video frame: an overlay for render.render."""

    def __init__(self, texts: Sequence[str], line_of_frame: np.ndarray):
        self.texts = list(texts)
        self.line_of_frame = line_of_frame  # (F,) index into texts, -1: no caption

    def line_at(self, index: int) -> int:
        return int(self.line_of_frame[index])

    def __call__(self, index: int, frame: np.ndarray) -> np.ndarray:
        line = self.line_at(index)
        return frame if line < 0 else burn_caption(frame, self.texts[line])
