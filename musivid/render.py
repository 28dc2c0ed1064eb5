"""Per-frame latents → H.264 (yuv420p, +faststart) + AAC mp4 via PyAV, streaming.

Frames are generated in batches on the device, converted to uint8 there, and encoded as they
come; the song's audio is decoded and encoded alongside in step with the video, so memory does not
grow with the song's length. Exactly round(duration · fps) frames, frame i at i / fps. The file
is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import logging
import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .config import RenderConfig
from .errors import InputError
from .interpolate import FramePlan, frame_latents, pulse_direction
from .schedule import Segment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderResult:
    path: Path
    frames: int
    fps: float
    size: int
    duration: float  # video duration in seconds (frames / fps)


def fps_fraction(fps: float) -> Fraction:
    """29.97 → 30000/1001, 23.976 → 24000/1001, integers stay integers."""
    f = Fraction(fps).limit_denominator(1001)
    for base in (24, 30, 60):
        ntsc = Fraction(base * 1000, 1001)
        if abs(float(ntsc) - fps) < 0.002:
            return ntsc
    return f


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temp path beside `path`; rename onto it only if the block succeeds."""
    path = Path(path)
    check_writable(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix + ".part")
    from .project import default_mode

    os.fchmod(fd, default_mode())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_writable(path: Path) -> None:
    """Fail early (before any slow work) if `path` cannot be written: try it for real, since
    permission bits alone do not tell (root, read-only mounts)."""
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        raise InputError(f"{path}: is a directory: give a file name, e.g. -o {path / 'video.mp4'}")
    if not parent.exists():
        raise InputError(f"{parent}: output directory does not exist: create it or choose another -o")
    if not parent.is_dir():
        raise InputError(f"{parent}: is not a directory: choose another -o")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".musivid-write-test.")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise InputError(f"{parent}: output directory is not writable ({e.strerror}): choose another -o") from None


def write_srt(segments: Sequence[Segment], path: Path) -> None:
    def ts(t: float) -> str:
        ms = int(round(t * 1000))
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"

    lines = []
    for i, s in enumerate(segments, 1):
        lines += [str(i), f"{ts(s.start)} --> {ts(max(s.end, s.start + 0.001))}", s.text, ""]
    with atomic_output(path) as tmp:
        tmp.write_text("\n".join(lines), encoding="utf-8")


class _AudioFeed:
    """Decodes the source's audio lazily and encodes it into the output up to a given time."""

    def __init__(self, src: Path, out_container, bitrate: int):
        import av

        self.inp = av.open(str(src))
        self.ist = self.inp.streams.audio[0]
        rate = self.ist.codec_context.sample_rate or 44100
        rate = rate if rate in (44100, 48000, 32000, 22050, 24000, 16000) else 48000
        self.ost = out_container.add_stream("aac", rate=rate)
        self.ost.bit_rate = bitrate
        self.ost.layout = "stereo"
        self.rate = rate
        self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate,
                                           frame_size=self.ost.codec_context.frame_size or 1024)
        self.frames = self.inp.decode(self.ist)
        self.out = out_container
        self.written = 0  # samples sent to the encoder
        self.done = False

    def feed_until(self, t: float | None) -> None:
        while not self.done and (t is None or self.written < t * self.rate):
            try:
                frame = next(self.frames)
            except StopIteration:
                self._encode(self.resampler.resample(None))
                self.done = True
                break
            except Exception:  # a truncated tail: end the audio there
                self.done = True
                break
            frame.pts = None
            self._encode(self.resampler.resample(frame))

    def _encode(self, frames) -> None:
        for fr in frames:
            fr.pts = self.written
            fr.time_base = Fraction(1, self.rate)
            self.written += fr.samples
            for pkt in self.ost.encode(fr):
                self.out.mux(pkt)

    def close(self) -> None:
        self.feed_until(None)
        for pkt in self.ost.encode(None):
            self.out.mux(pkt)
        self.inp.close()


def _font(size: int):
    from PIL import ImageFont

    for name in ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
                 "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
                 "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size)


def _font_for(text: str, size: int):
    """A font that has glyphs for `text` (CJK falls back to Noto CJK where installed)."""
    from PIL import ImageFont

    if any(ord(ch) > 0x2E7F for ch in text):
        for name in ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
                     "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"):
            try:
                return ImageFont.truetype(name, size)
            except OSError:
                continue
    return _font(size)


def burn_caption(frame: np.ndarray, text: str) -> np.ndarray:
    """Draw `text` at the bottom, white with a dark outline: readable on any picture."""
    from PIL import Image, ImageDraw

    h, w = frame.shape[:2]
    img = Image.fromarray(frame)
    draw = ImageDraw.Draw(img)
    size = max(10, h // 16)
    font = _font_for(text, size)
    # wrap to the frame width
    words, lines, cur = text.split(), [], ""
    for word in words or [text]:
        trial = f"{cur} {word}".strip()
        if draw.textlength(trial, font=font) <= 0.92 * w or not cur:
            cur = trial
        else:
            lines.append(cur)
            cur = word
    lines.append(cur)
    y = h - int(size * 1.35) * len(lines) - size // 2
    for line in lines:
        tw = draw.textlength(line, font=font)
        draw.text(((w - tw) / 2, y), line, font=font, fill=(255, 255, 255),
                  stroke_width=max(1, size // 12), stroke_fill=(0, 0, 0))
        y += int(size * 1.35)
    return np.asarray(img)


def render(generator, fplan: FramePlan, kz: torch.Tensor, kc: torch.Tensor, audio_path: Path,
           out_path: Path, cfg: RenderConfig, *, truncation: float = 1.0,
           device: str | torch.device = "cpu", amp_dtype: torch.dtype | None = None,
           envelope: np.ndarray | None = None, pulse: float = 0.0,
           captions: Sequence[str] | None = None, metadata: dict[str, str] | None = None,
           progress: bool = False, callback: Callable[[int, int], None] | None = None) -> RenderResult:
    """Render every frame of `fplan` and mux it with the audio of `audio_path` into `out_path`."""
    import av
    from tqdm import tqdm

    device = torch.device(device)
    n = len(fplan)
    rate = fps_fraction(cfg.fps)
    pdir = pulse_direction(tuple(kz.shape[1:]), 1234) if pulse else None
    with atomic_output(Path(out_path)) as tmp:
        out = av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        try:
            for k, v in (metadata or {}).items():
                out.metadata[k] = v
            vst = out.add_stream("libx264", rate=rate)
            vst.width = vst.height = cfg.size
            vst.pix_fmt = "yuv420p"
            vst.codec_context.time_base = 1 / rate
            vst.options = {"crf": str(cfg.crf), "preset": "medium"}
            audio = _AudioFeed(Path(audio_path), out, cfg.audio_bitrate)
            bar = tqdm(total=n, disable=not progress, unit="frame", desc="rendering")
            for lo in range(0, n, cfg.batch):
                hi = min(n, lo + cfg.batch)
                z, c = frame_latents(fplan, slice(lo, hi), kz, kc, envelope, pulse, pdir)
                pixels = _generate(generator, z, c, truncation, cfg.size, device, amp_dtype)  # (b,H,W,3) uint8
                for j in range(hi - lo):
                    arr = pixels[j]
                    if captions is not None:
                        arr = burn_caption(arr, captions[int(fplan.segment[lo + j])])
                    frame = av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p")
                    frame.pts = lo + j
                    for pkt in vst.encode(frame):
                        out.mux(pkt)
                audio.feed_until(hi / float(rate))
                bar.update(hi - lo)
                if callback is not None:
                    callback(hi, n)
            for pkt in vst.encode(None):
                out.mux(pkt)
            audio.close()
            bar.close()
        finally:
            out.close()
    return RenderResult(Path(out_path), n, float(rate), cfg.size, n / float(rate))


@torch.no_grad()
def _generate(generator, z, c, truncation, size, device, amp_dtype) -> np.ndarray:
    z = z.to(device)
    c = c.to(device)
    with torch.autocast(device.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
        img = generator(z.to(generator.dtype), c.to(generator.dtype), truncation)  # (b,3,R,R) in [0,1]
    img = img.float()
    if img.shape[-1] != size:
        img = F.interpolate(img, size=(size, size), mode="bicubic", align_corners=False)
    img = (img.clamp(0, 1) * 255).round().to(torch.uint8)  # on the device
    return img.permute(0, 2, 3, 1).contiguous().cpu().numpy()
