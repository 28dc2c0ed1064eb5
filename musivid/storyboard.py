"""A PNG contact sheet: one row per lyric line (text, time, every variant's keyframe with its CLIP
score, the chosen one framed), written with every run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import project as proj

THUMB = 128


def write_storyboard(job, path: Path, max_variants: int = 8) -> Path:
    from PIL import Image, ImageDraw

    from .job import chosen_variant
    from .render import _font

    texts = job.clip_texts()
    lkey = job.lkey
    rows = []  # (segment, [(variant, score, latent)], chosen)
    for seg, text in zip(job.segments, texts):
        have = job.project.variants_of(text, lkey)[:max_variants]
        chosen, _ = chosen_variant(job, text)
        lat = [(v, job.project.data["latents"][proj.latent_key(lkey, text, v)]["score"],
                job.project.load_latent(proj.latent_key(lkey, text, v))) for v in have]
        rows.append((seg, lat, chosen))
    gen = job.generator()
    flat = [l for _, lat, _ in rows for l in lat]
    z = torch.stack([l[2]["z"] for l in flat]).float()
    c = torch.sigmoid(torch.stack([l[2]["cls"] for l in flat]).float())
    thumbs = []
    with torch.no_grad():
        for lo in range(0, len(flat), 16):
            img = gen(z[lo:lo + 16].to(job.device, gen.dtype), c[lo:lo + 16].to(job.device, gen.dtype),
                      job.settings.optimize.truncation).float()
            img = torch.nn.functional.interpolate(img, size=(THUMB, THUMB), mode="bilinear", antialias=True)
            thumbs += list((img.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy())
    ncols = max(len(lat) for _, lat, _ in rows)
    text_w, pad, head = 300, 8, 18
    W = max(560, text_w + ncols * (THUMB + pad) + pad)
    H = len(rows) * (THUMB + head + pad) + pad + (24 if job.settings.models.untrained else 0)
    sheet = Image.new("RGB", (W, H), (24, 24, 28))
    draw = ImageDraw.Draw(sheet)
    font, small = _font(14), _font(12)
    y = pad
    if job.settings.models.untrained:
        draw.text((pad, y), "UNTRAINED random-weight models: pipeline preview, not a real result",
                  font=font, fill=(255, 120, 80))
        y += 24
    k = 0
    for seg, lat, chosen in rows:
        label = f"{seg.index + 1}. [{seg.start:6.2f}s] {seg.text}"
        _wrap(draw, label, (pad, y), text_w - 2 * pad, font)
        for j, (v, score, _) in enumerate(lat):
            x = text_w + j * (THUMB + pad)
            sheet.paste(Image.fromarray(np.asarray(thumbs[k])), (x, y + head))
            k += 1
            mark = " *chosen*" if v == chosen else ""
            draw.text((x, y), f"v{v} {score:.3f}{mark}", font=small,
                      fill=(120, 255, 120) if v == chosen else (200, 200, 200))
            if v == chosen:
                draw.rectangle([x - 3, y + head - 3, x + THUMB + 2, y + head + THUMB + 2],
                               outline=(120, 255, 120), width=3)
        y += THUMB + head + pad
    proj.atomic_write_bytes(path, _png_bytes(sheet))
    return path


def _png_bytes(img) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _wrap(draw, text: str, xy, width: int, font) -> None:
    x, y = xy
    line = ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) > width and line:
            draw.text((x, y), line, font=font, fill=(235, 235, 235))
            y += 17
            line = word
        else:
            line = trial
    draw.text((x, y), line, font=font, fill=(235, 235, 235))
