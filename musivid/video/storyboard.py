"""A PNG contact sheet from plain rows: one row per lyric line (number, time, text), every
variant's keyframe image with its CLIP score, the chosen one framed; a variant without an image
(its thumbnail is missing) is an empty cell marked "no image"."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .captions import wrap
from ..files import atomic_write_bytes
from .fonts import FontFinder

THUMB = 128
UNTRAINED_BANNER = "UNTRAINED random-weight models: pipeline preview, not a real result"


@dataclass(frozen=True)
class Variant:
    number: int
    score: float
    image: np.ndarray | None  # (H, W, 3) uint8; None: no image (drawn as an empty cell)


@dataclass(frozen=True)
class Row:
    line: int  # 1-based lyric line number
    time: float  # seconds
    text: str
    variants: Sequence[Variant]
    chosen: int | None  # the variant number shown in the video
    prompt: str | None = None  # the line's own image prompt, shown under its words (None: the image follows the words)


def storyboard_png(rows: Sequence[Row], untrained: bool = False, font: str | None = None) -> bytes:
    """The contact sheet as PNG bytes; each row's text in a font that covers it (`font`: the
    user's --font, tried first)."""
    from PIL import Image, ImageDraw

    ncols = max((len(r.variants) for r in rows), default=0)
    text_w, pad, head = 300, 8, 18
    width = max(560, text_w + ncols * (THUMB + pad) + pad)
    height = len(rows) * (THUMB + head + pad) + pad + (24 if untrained else 0)
    sheet = Image.new("RGB", (width, height), (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    finder = FontFinder(font)
    small = finder.font("v0 0.000 *chosen*", 12)
    y = pad
    if untrained:
        draw.text((pad, y), UNTRAINED_BANNER, font=finder.font(UNTRAINED_BANNER, 14), fill=(255, 120, 80))
        y += 24
    for row in rows:
        label = f"{row.line}. [{row.time:6.2f}s] {row.text}"
        big = finder.font(label, 14, row.line)
        wrapped = wrap(draw, label, big, text_w - 2 * pad)
        for k, line in enumerate(wrapped):
            draw.text((pad, y + 17 * k), line, font=big, fill=(235, 235, 235))
        if row.prompt and row.prompt != row.text:  # what the image shows instead of the words
            note = f"image: {row.prompt}"
            it = finder.font(note, 12, row.line)
            room = max(1, (THUMB + head) // 15 - len(wrapped))  # rows left beside the thumbnails
            for k, line in enumerate(wrap(draw, note, it, text_w - 2 * pad)[:room]):
                draw.text((pad, y + 17 * len(wrapped) + 2 + 15 * k), line, font=it, fill=(160, 190, 255))
        for j, v in enumerate(row.variants):
            x = text_w + j * (THUMB + pad)
            if v.image is None:
                draw.rectangle([x, y + head, x + THUMB - 1, y + head + THUMB - 1], fill=(40, 40, 46),
                               outline=(90, 90, 96))
                draw.text((x + 8, y + head + THUMB // 2 - 7), "no image", font=small, fill=(150, 150, 150))
            else:
                thumb = Image.fromarray(np.asarray(v.image))
                if thumb.size != (THUMB, THUMB):
                    thumb = thumb.resize((THUMB, THUMB), Image.Resampling.LANCZOS)
                sheet.paste(thumb, (x, y + head))
            chosen = v.number == row.chosen
            draw.text((x, y), f"v{v.number} {v.score:.3f}" + (" *chosen*" if chosen else ""), font=small,
                      fill=(120, 255, 120) if chosen else (200, 200, 200))
            if chosen:
                draw.rectangle([x - 3, y + head - 3, x + THUMB + 2, y + head + THUMB + 2], outline=(120, 255, 120),
                               width=3)
        y += THUMB + head + pad
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    return buf.getvalue()


def write_storyboard(rows: Sequence[Row], path: Path, untrained: bool = False, font: str | None = None) -> Path:
    atomic_write_bytes(path, storyboard_png(rows, untrained, font))
    return path


def png(image: np.ndarray) -> bytes:
    """(H, W, 3) uint8 → PNG bytes (a variant's thumbnail)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def read_png(data: bytes) -> np.ndarray | None:
    """PNG bytes (a thumbnail) → (H, W, 3) uint8; None when they do not decode as an image."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except Exception:  # noqa: BLE001 - PIL raises many kinds for damaged data; the caller warns
        return None
