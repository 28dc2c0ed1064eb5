"""Per-frame latents → H.264 (yuv420p, +faststart) + AAC mp4 via PyAV, streaming.

Frames are generated in batches on the device, converted to uint8 there, and encoded as they
come; the song's audio is decoded and encoded alongside in step with the video, so memory does not
grow with the song's length. Exactly round(duration · fps) frames, frame i at i / fps. The file
is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import torch

from .config import RenderConfig
from .files import atomic_output
from .progress import Bar

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


class _AudioFeed:
    """Decodes the source's audio lazily and encodes the stretch [start, end) of it into the output,
    in step with the video (time 0 of the output is `start` in the source)."""

    def __init__(self, src: Path, out_container, bitrate: int, start: float = 0.0, end: float | None = None):
        import av

        self.inp = av.open(str(src))
        self.ist = self.inp.streams.audio[0]
        rate = self.ist.codec_context.sample_rate or 44100
        rate = rate if rate in (44100, 48000, 32000, 22050, 24000, 16000) else 48000
        self.ost = out_container.add_stream("aac", rate=rate)
        self.ost.bit_rate = bitrate
        self.ost.layout = "stereo"
        self.rate = rate
        self.frame_size = self.ost.codec_context.frame_size or 1024
        self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=rate)
        self.fifo = av.AudioFifo()
        self.frames = self.inp.decode(self.ist)
        self.out = out_container
        self.skip = int(round(start * rate))  # source samples still to drop before the excerpt
        self.limit = None if end is None else int(round((end - start) * rate))  # samples to keep
        self.kept = 0  # samples taken into the output so far (queued or encoded)
        self.written = 0  # samples sent to the encoder
        self.done = False

    def feed_until(self, t: float | None) -> None:
        """Encode the output's audio up to time `t` (seconds from the output's start; None: all)."""
        import av

        while not self.done and (t is None or self.kept < t * self.rate):
            try:
                frame = next(self.frames)
            except StopIteration:
                frame = None
            except av.error.FFmpegError:  # a truncated tail: end the audio there
                frame = None
            if frame is not None:
                frame.pts = None
            for out in self.resampler.resample(frame):
                self._take(out)
            if frame is None:
                self.done = True
            self._encode(final=False)

    def _take(self, fr) -> None:
        import av

        arr = fr.to_ndarray()  # (2, n) planar float
        if self.skip:
            cut = min(self.skip, arr.shape[1])
            arr, self.skip = arr[:, cut:], self.skip - cut
        if self.limit is not None:
            arr = arr[:, :max(0, self.limit - self.kept)]
            if self.kept + arr.shape[1] >= self.limit:
                self.done = True
        if arr.shape[1]:
            new = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr), format="fltp", layout="stereo")
            new.sample_rate = self.rate
            self.fifo.write(new)
            self.kept += arr.shape[1]

    def _encode(self, final: bool) -> None:
        while self.fifo.samples >= self.frame_size or (final and self.fifo.samples):
            fr = self.fifo.read(min(self.frame_size, self.fifo.samples))
            fr.pts = self.written
            fr.time_base = Fraction(1, self.rate)
            self.written += fr.samples
            for pkt in self.ost.encode(fr):
                self.out.mux(pkt)

    def close(self) -> None:
        self.feed_until(None)
        self._encode(final=True)
        for pkt in self.ost.encode(None):
            self.out.mux(pkt)
        self.inp.close()


class FrameSource(Protocol):
    """The latents of every frame of a song (interpolate.FrameLatents)."""

    def __len__(self) -> int: ...

    def latents(self, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]: ...  # (z, class vectors)


Overlay = Callable[[int, np.ndarray], np.ndarray]  # (frame index in the song, (H, W, 3) uint8) -> frame


def render(generator, source: FrameSource, audio_path: Path, out_path: Path, cfg: RenderConfig, *,
           truncation: float = 1.0, amp_dtype: torch.dtype | None = None, overlay: Overlay | None = None,
           metadata: dict[str, str] | None = None, frames: tuple[int, int] | None = None,
           progress: bool = False, callback: Callable[[int, int], None] | None = None) -> RenderResult:
    """Render the frames of `source` (all, or the excerpt `frames` = [first, last)) and mux them
    with the matching stretch of the audio of `audio_path` into `out_path`.

    `overlay(i, image)` draws on frame i (captions). `callback(done, total)` after each batch.
    """
    import av

    first, last = frames if frames is not None else (0, len(source))
    n = last - first
    rate = fps_fraction(cfg.fps)
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
            start_s = first / float(rate)
            audio = _AudioFeed(Path(audio_path), out, cfg.audio_bitrate, start_s,
                               None if frames is None else last / float(rate))
            with Bar(n, "rendering", "frame", enabled=progress) as bar:
                for lo in range(first, last, cfg.batch):
                    hi = min(last, lo + cfg.batch)
                    z, c = source.latents(lo, hi)
                    pixels = generator.images_uint8(z, c, truncation, cfg.size, amp_dtype)  # (b, H, W, 3)
                    for j in range(hi - lo):
                        arr = pixels[j] if overlay is None else overlay(lo + j, pixels[j])
                        frame = av.VideoFrame.from_ndarray(arr, format="rgb24").reformat(format="yuv420p")
                        frame.pts = lo + j - first
                        for pkt in vst.encode(frame):
                            out.mux(pkt)
                    audio.feed_until((hi - first) / float(rate))
                    bar.update(hi - lo)
                    if callback is not None:
                        callback(hi - first, n)
                for pkt in vst.encode(None):
                    out.mux(pkt)
                audio.close()
        finally:
            out.close()
    return RenderResult(Path(out_path), n, float(rate), cfg.size, n / float(rate))
