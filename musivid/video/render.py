"""Per-frame latents → H.264 (yuv420p, +faststart) + AAC mp4 via PyAV, as a pipeline.

The calling thread generates frames in batches on the device, places them in the frame there
(frame.py: --aspect, the fill, the untrained mark, all batched) and converts them there to uint8
YUV 4:2:0 (a matrix and 2x2 averaging in torch, BT.601 or BT.709 limited range, tagged in the
stream); on CUDA the planes cross to the host through pinned buffers, asynchronously. One encoder
thread takes each batch as soon as it is on the host, blends the captions (a sprite per line, or
per karaoke word, made once) into the planes of the frames that show one, encodes H.264 and the
stretch of audio that belongs to those frames, and muxes, while the next batch is generated.
Queues and buffers are bounded, so memory does not grow with the song's length (and a batch is
made smaller when its frames would not fit in the device's free memory: 1080p frames are big).
Exactly round(duration · fps) frames, frame i at i / fps. The file is written under a temporary
name and renamed when complete; a failure anywhere leaves no file.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from ..config import RenderConfig
from ..files import atomic_output
from ..progress import Bar
from .frame import FrameSpec, Sprite, compose_rgb, compose_yuv, untrained_mark

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderResult:
    path: Path
    frames: int
    fps: float
    size: int  # the frame's short side
    duration: float  # video duration in seconds (frames / fps)
    width: int = 0
    height: int = 0


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


class Sprites(Protocol):
    """An overlay drawn as sprites (captions.CaptionTrack): frame i shows sprite(i, W, H), a
    frame.Sprite or None, blended into its yuv420p planes; the frames themselves stay on the
    device path."""

    def sprite(self, index: int, width: int, height: int) -> Sprite | None: ...

# Y' and (B' - Y', R' - Y') weights per matrix (ITU-R BT.601 / BT.709): Kr, Kb
MATRICES = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722)}


def yuv_matrix(size: int) -> str:
    """BT.709 from 720 lines up, BT.601 below: what players assume for untagged video (the
    stream is tagged as well)."""
    return "bt709" if size >= 720 else "bt601"


def _yuv_weights(matrix: str, device) -> tuple[torch.Tensor, torch.Tensor]:
    """(3, 3) matrix and (3,) offset taking full-range R'G'B' in [0, 1] to limited-range Y'CbCr
    levels (Y 16-235, chroma 16-240)."""
    kr, kb = MATRICES[matrix]
    kg = 1.0 - kr - kb
    m = torch.tensor([[kr, kg, kb],
                      [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
                      [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))]], device=device)
    scale = torch.tensor([219.0, 224.0, 224.0], device=device)[:, None]
    return m * scale, torch.tensor([16.0, 128.0, 128.0], device=device)


def _planes(y: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Y (B, H, W) and U, V (B, H/2, W/2) levels → (B, H·3/2, W) uint8 yuv420p."""
    b, h, w = y.shape
    out = torch.empty(b, h * 3 // 2 * w, dtype=torch.uint8, device=y.device)
    k = h * w // 4
    for plane, lo, hi in ((y, 0, 4 * k), (u, 4 * k, 5 * k), (v, 5 * k, 6 * k)):
        out[:, lo:hi].copy_(plane.reshape(b, -1).round().clamp_(0, 255))  # the copy converts to uint8
    return out.view(b, h * 3 // 2, w)


def rgb_to_yuv420(rgb: torch.Tensor, matrix: str = "bt601") -> torch.Tensor:
    """(B, H, W, 3) uint8 RGB (full range) → (B, H·3/2, W) uint8 yuv420p planes (Y, then U and V
    at half resolution, each chroma sample the mean of a 2x2 block), limited range as libx264
    expects. Runs on the tensor's device; H and W must be even."""
    m, off = _yuv_weights(matrix, rgb.device)
    b, h, w, _ = rgb.shape
    yuv = F.linear(rgb.float(), m / 255.0, off)  # (B, H, W, 3) levels
    uv = yuv[..., 1:].view(b, h // 2, 2, w // 2, 2, 2).mean((2, 4))  # (B, H/2, W/2, 2)
    return _planes(yuv[..., 0], uv[..., 0], uv[..., 1])


def frames_yuv420(generator, z: torch.Tensor, classes: torch.Tensor, truncation: float, size: int,
                  dtype: torch.dtype | None = None, matrix: str = "bt601", frame: FrameSpec | None = None,
                  mark: Sprite | None = None) -> torch.Tensor:
    """The generator's frames as (B, H·3/2, W) uint8 yuv420p planes, made on its device from the
    float images: converted at the generator's resolution, then Y resized to the frame's image side
    and chroma to half of it (bicubic, antialiased when shrinking; an exact halving a 2x2 mean) and
    each placed on the frame's fill (frame: default a size x size square), the mark drawn over
    them. Colour conversion, resizing and the fills are all linear, so this equals doing them in
    RGB first; it skips the full-size RGB frames."""
    img = generator(z.to(generator.device), classes.to(generator.device), truncation, dtype)  # (B, 3, R, R)
    m, off = _yuv_weights(matrix, img.device)
    yuv = torch.einsum("ij,bjhw->bihw", m, img) + off[:, None, None]  # (B, 3, R, R) levels
    y, uv = compose_yuv(yuv, frame or FrameSpec.square(size), (m, off), mark)  # (B, 1, H, W), (B, 2, H/2, W/2)
    return _planes(y[:, 0], uv[:, 0], uv[:, 1])


def frames_rgb(generator, z: torch.Tensor, classes: torch.Tensor, truncation: float, frame: FrameSpec,
               dtype: torch.dtype | None = None, mark: Sprite | None = None) -> torch.Tensor:
    """The generator's frames placed on the frame (its fill, the mark) as (B, H, W, 3) uint8 RGB,
    made and quantised on its device (for an overlay to draw on)."""
    img = generator(z.to(generator.device), classes.to(generator.device), truncation, dtype)  # (B, 3, R, R)
    out = compose_rgb(img, frame, mark)  # (B, 3, H, W) in [0, 1]
    return (out.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


CPU_BATCH_PIXELS = 8_400_000  # on the CPU a batch holds at most this many pixels (4 frames of 1080p)


def fit_batch(batch: int, frame: FrameSpec, rgb: bool, free: int | None, cpu: bool = False) -> int:
    """The render batch: `batch` frames, fewer when a batch would take more than a quarter of the
    `free` bytes of the device (None: unknown) while made and encoded. On the CPU, where a batch
    gains nothing from its size, at most CPU_BATCH_PIXELS: 1080p rendered 4 frames at a time was
    faster than 16 at a time and peaked 300 MB lower (benchmarks/render_memory.py)."""
    if cpu:
        batch = min(batch, max(1, CPU_BATCH_PIXELS // (frame.width * frame.height)))
    if free is None:
        return batch
    return max(1, min(batch, free // 4 // frame.bytes_per_frame(rgb)))


class _Writer:
    """The output container: H.264 from yuv420p planes and the song's audio for the same stretch,
    muxed in step. Used from one thread at a time."""

    def __init__(self, path: Path, cfg: RenderConfig, audio_path: Path, start_s: float, end_s: float | None,
                 metadata: dict[str, str] | None):
        import av

        self.rate = fps_fraction(cfg.fps)
        self.out = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
        try:
            for k, v in (metadata or {}).items():
                self.out.metadata[k] = v
            vst = self.out.add_stream("libx264", rate=self.rate)
            self.frame = FrameSpec.of(cfg)
            vst.width, vst.height = self.frame.width, self.frame.height
            vst.pix_fmt = "yuv420p"
            vst.codec_context.time_base = 1 / self.rate
            self.matrix = yuv_matrix(cfg.size)
            # tag what the planes hold, so no player has to guess the matrix
            tags = {"bt601": (6, 6, 6), "bt709": (1, 1, 1)}[self.matrix]  # smpte170m / bt709 codes
            cc = vst.codec_context
            cc.colorspace, cc.color_primaries, cc.color_trc = tags
            cc.color_range = 1  # MPEG (limited)
            vst.options = {"crf": str(cfg.crf), "preset": cfg.preset}
            self.vst = vst
            self.audio = _AudioFeed(Path(audio_path), self.out, cfg.audio_bitrate, start_s, end_s)
        except BaseException:
            self.out.close()
            raise

    def write(self, pts: int, planes: np.ndarray) -> None:
        """Encode frames (b, H·3/2, W) uint8 with presentation times pts, pts + 1, ..., then the
        audio up to the end of the last of them."""
        import av

        for j in range(planes.shape[0]):
            frame = av.VideoFrame.from_ndarray(planes[j], format="yuv420p")
            frame.pts = pts + j
            for pkt in self.vst.encode(frame):
                self.out.mux(pkt)
        self.audio.feed_until((pts + planes.shape[0]) / float(self.rate))

    def finish(self) -> None:
        for pkt in self.vst.encode(None):
            self.out.mux(pkt)
        self.audio.close()

    def close(self, failed: bool = False) -> None:
        """Close the container. After a failure (`failed`: an error is on its way up, the file will be
        removed) an error closing it (the trailer meets the same full disk) is not a second one."""
        if not failed:
            self.out.close()
            return
        try:
            self.out.close()
        except Exception:  # noqa: BLE001 - the first error is the one to report
            pass


class _Staging:
    """Host buffers the device's planes are copied into: pinned and reused on CUDA (an
    asynchronous copy), plain tensors on the CPU. `take` blocks while every buffer is in use: the
    generator never runs more than `count` batches ahead of the encoder."""

    def __init__(self, device: torch.device, count: int = 3):
        self.cuda = device.type == "cuda"
        self.free: queue.Queue = queue.Queue()
        self.count = count
        self.made = 0

    def take(self, like: torch.Tensor, alive: Callable[[], None]) -> tuple[torch.Tensor, object]:
        """(host tensor that will hold `like`, CUDA event to wait for before reading it, or None)."""
        if not self.cuda:  # a fresh tensor every batch: nothing to copy or reuse
            return like.contiguous(), None
        if self.made < self.count:
            self.made += 1
            buf = torch.empty(like.shape, dtype=like.dtype, pin_memory=True)
        else:
            while True:  # wait for the encoder to give one back (raising its error, if any)
                alive()
                try:
                    buf = self.free.get(timeout=0.1)
                    break
                except queue.Empty:
                    continue
            if buf.shape != like.shape:  # a shorter last batch
                buf = torch.empty(like.shape, dtype=like.dtype, pin_memory=True)
        buf.copy_(like, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        return buf, event

    def give_back(self, buf: torch.Tensor) -> None:
        if self.cuda:
            self.free.put(buf)


class _Encoder(threading.Thread):
    """The encoder thread: host batches in, overlay, H.264 + audio, mux."""

    def __init__(self, writer: _Writer, staging: _Staging, overlay: Overlay | None, first: int,
                 sprites: Sprites | None = None):
        super().__init__(name="musivid-encoder", daemon=True)
        self.writer, self.staging, self.overlay, self.first = writer, staging, overlay, first
        self.sprites = sprites
        m, off = _yuv_weights(writer.matrix, "cpu")
        self.yuv = m.numpy(), off.numpy()
        self.jobs: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.stopped = False
        self.busy_s = 0.0  # time spent encoding (for the benchmark)

    def run(self) -> None:
        try:
            while True:
                job = self.jobs.get()
                if job is None or self.stopped:
                    self.stopped = True
                    return
                lo, host, event, keep = job
                if event is not None:
                    event.synchronize()  # this batch's copy only; the device keeps generating
                t = time.perf_counter()
                arr = host.numpy()
                if self.sprites is not None:  # arr: yuv420p planes: the captions blended into them here
                    w, h = self.writer.frame.width, self.writer.frame.height
                    for j in range(arr.shape[0]):
                        if (sp := self.sprites.sprite(lo + j, w, h)) is not None:
                            sp.blend_planes(arr[j], *self.yuv)
                    self.writer.write(lo - self.first, arr)
                elif self.overlay is not None:  # arr: RGB frames to draw on, then convert here
                    for a in range(0, arr.shape[0], 4):  # a few at a time: float copies of 1080p frames are big
                        drawn = np.stack([self.overlay(lo + j, arr[j]) for j in range(a, min(a + 4, arr.shape[0]))])
                        self.writer.write(lo + a - self.first, rgb_to_yuv420(torch.from_numpy(drawn),
                                                                             self.writer.matrix).numpy())
                else:
                    self.writer.write(lo - self.first, arr)
                self.busy_s += time.perf_counter() - t
                self.staging.give_back(host)
                del keep
        except BaseException as e:  # noqa: BLE001 - handed to the calling thread
            self.error = e

    def alive(self) -> None:
        """Raise the encoder's error in the calling thread, if it had one."""
        if self.error is not None:
            raise self.error
        if not self.is_alive() and not self.stopped:
            raise RuntimeError("the encoder thread stopped unexpectedly")

    def put(self, job) -> None:
        while True:
            self.alive()
            try:
                self.jobs.put(job, timeout=0.1)
                return
            except queue.Full:
                continue

    def finish(self) -> None:
        self.put(None)
        self.join()
        self.alive()

    def abort(self) -> None:
        self.stopped = True
        try:
            while True:
                self.jobs.get_nowait()
        except queue.Empty:
            pass
        self.jobs.put(None)
        self.join(timeout=60)


@dataclass
class RenderTimes:
    """Where a render's time went (seconds), filled in when given to render()."""

    total: float = 0.0
    encode: float = 0.0  # the encoder thread's busy time (overlay, H.264, audio, mux)


def render(generator, source: FrameSource, audio_path: Path, out_path: Path, cfg: RenderConfig, *,
           truncation: float = 1.0, amp_dtype: torch.dtype | None = None, overlay: Overlay | None = None,
           metadata: dict[str, str] | None = None, frames: tuple[int, int] | None = None,
           progress: bool = False, callback: Callable[[int, int], None] | None = None,
           times: RenderTimes | None = None, untrained: bool = False) -> RenderResult:
    """Render the frames of `source` (all, or the excerpt `frames` = [first, last)) and mux them
    with the matching stretch of the audio of `audio_path` into `out_path`, in the frame cfg
    asks for (aspect, size, fill).

    `overlay`: the captions, on the encoder thread: a Sprites (captions.CaptionTrack: blended into
    the frames' planes, which are made on the device path), or a function overlay(i, image) that
    draws on frame i's RGB picture. `callback(done, total)` after each batch is handed to the
    encoder. `untrained`: the frames carry the UNTRAINED PREVIEW mark (frame.untrained_mark, in
    the corner away from the captions)."""
    first, last = frames if frames is not None else (0, len(source))
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    if generator.device.type == "cpu":  # leave cores to x264: OpenMP threads spin when it takes them
        torch.set_num_threads(max(1, threads // 2))
    try:
        return _render(generator, source, Path(audio_path), Path(out_path), cfg, truncation, amp_dtype, overlay,
                       metadata, (first, last), frames is not None, progress, callback, times, t0, untrained)
    finally:
        torch.set_num_threads(threads)


def _render(generator, source, audio_path: Path, out_path: Path, cfg: RenderConfig, truncation, amp_dtype, overlay,
            metadata, span: tuple[int, int], excerpt: bool, progress, callback, times, t0, untrained) -> RenderResult:
    from ..images.optimize import available_memory

    first, last = span
    n = last - first
    rate = fps_fraction(cfg.fps)
    spec = FrameSpec.of(cfg)
    mark = untrained_mark(spec.width, spec.height, cfg.caption_position) if untrained else None
    sprites = overlay if hasattr(overlay, "sprite") else None
    rgb = overlay is not None and sprites is None  # a drawing function: RGB frames for it
    batch = fit_batch(cfg.batch, spec, rgb, available_memory(generator.device), generator.device.type == "cpu")
    if batch < fit_batch(cfg.batch, spec, rgb, None, generator.device.type == "cpu"):
        log.info("rendering %d frames at a time (%d x %d frames; the free memory holds no more)", batch,
                 spec.width, spec.height)
    with atomic_output(Path(out_path)) as tmp:
        writer = _Writer(tmp, cfg, audio_path, first / float(rate), last / float(rate) if excerpt else None, metadata)
        staging = _Staging(generator.device)
        encoder = _Encoder(writer, staging, None if sprites is not None else overlay, first, sprites)
        encoder.start()
        try:
            with Bar(n, "rendering", "frame", enabled=progress) as bar:
                for lo in range(first, last, batch):
                    hi = min(last, lo + batch)
                    z, c = source.latents(lo, hi)
                    if rgb:  # RGB frames, drawn on and converted on the encoder thread
                        payload = frames_rgb(generator, z, c, truncation, spec, amp_dtype, mark)  # (b, H, W, 3)
                    else:
                        payload = frames_yuv420(generator, z, c, truncation, cfg.size, amp_dtype, writer.matrix,
                                                spec, mark)
                    host, event = staging.take(payload, encoder.alive)
                    encoder.put((lo, host, event, payload))
                    bar.update(hi - lo)
                    if callback is not None:
                        callback(hi - first, n)
                encoder.finish()
            writer.finish()
        except BaseException:
            encoder.abort()
            writer.close(failed=True)
            raise
        writer.close()
    if times is not None:
        times.total, times.encode = time.perf_counter() - t0, encoder.busy_s
    return RenderResult(Path(out_path), n, float(rate), cfg.size, n / float(rate), spec.width, spec.height)


def encode_frames(planes: Iterable[np.ndarray], audio_path: Path, out_path: Path, cfg: RenderConfig,
                  frames: int | None = None, metadata: dict[str, str] | None = None) -> float:
    """Encode ready yuv420p batches ((b, H·3/2, W) uint8 each) with the song's audio (its first
    `frames` / fps seconds, or all of it) in this thread, exactly as render() writes them: the
    encoder alone, the benchmark's baseline. Returns the seconds it took."""
    t = time.perf_counter()
    with atomic_output(Path(out_path)) as tmp:
        end = None if frames is None else frames / float(fps_fraction(cfg.fps))
        writer = _Writer(tmp, cfg, Path(audio_path), 0.0, end, metadata)
        try:
            pts = 0
            for batch in planes:
                writer.write(pts, batch)
                pts += batch.shape[0]
            writer.finish()
        except BaseException:
            writer.close(failed=True)
            raise
        writer.close()
    return time.perf_counter() - t
