"""Decode any audio (or a video's audio track) to float32 mono with PyAV, in-process.

The whole file is decoded and its length compared with the length its container states, so a
truncated or partly corrupt file is found here, not later as lyrics "past the end of the song".
A stated length is trusted only where the container records it (an mp3's Xing/Info header, FLAC's
STREAMINFO, an mp4 index, a Matroska or Ogg duration); one that FFmpeg estimates from the bitrate
(an mp3 or ADTS AAC without a header) can be off by half and is never held against a file.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

log = logging.getLogger(__name__)

# A file is short when it decodes to less than its stated length by more than this (seconds, and a
# fraction of the length): encoder delay and padding (mp3, AAC, Opus) move it by < 0.1 s.
SHORT_BY_S = 0.25
SHORT_BY = 0.005
# what FFmpeg says when a stated length is a guess, or when the demuxer finds the file cut short
_ESTIMATED = "Estimating duration from bitrate"
_ENDED_EARLY = ("File ended prematurely", "filesize and duration do not match")


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # (T,) float32 mono in [-1, 1]
    sample_rate: int
    path: Path

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def decode(path: str | Path, sample_rate: int = 22050, *, accept_truncated: bool = False) -> Audio:
    """Decode the first audio stream of `path`, downmixed to mono and resampled to `sample_rate`.

    Raises InputError with a one-line message for a missing, empty, non-audio, truncated or partly
    corrupt file (decoded length short of the stated one); with `accept_truncated` such a file is
    used as far as it decodes, with a warning. A video file is fine: its audio track is used.
    """
    import av  # lazy: keeps `musivid --help` instant
    import av.logging

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file: check the audio path")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty: give an audio file (mp3, wav, flac, ogg, m4a)")
    level, skip = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.WARNING)  # FFmpeg's messages tell an estimate from a stated length
    av.logging.set_skip_repeated(False)  # every time: the same file's message is this file's too
    try:
        with av.logging.Capture() as messages:
            samples, stated, whole, lost = _decode(av, path, sample_rate)
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError, IndexError, OverflowError) as e:
        raise InputError(
            f"{path}: not a readable audio file ({_short(e)}): give an mp3, wav, flac, ogg or m4a"
        ) from None
    finally:
        av.logging.set_level(level)
        av.logging.set_skip_repeated(skip)
    said = " ".join(str(m[2]) for m in messages)
    if stated is not None and _ESTIMATED in said:
        stated = _wav_stated(path) if path.suffix.lower() in (".wav", ".wave") else None
    if stated is None and any(m in said for m in _ENDED_EARLY):
        stated = whole  # the demuxer itself says the file is cut short: the container's length
    decoded = len(samples) / sample_rate
    if len(samples) < sample_rate // 10:
        if lost or (stated and stated > 0.1):
            raise InputError(f"{path}: the audio could not be decoded (decoded {decoded:.2f} s of a stated "
                             f"{stated or 0:.2f} s): the file is truncated or corrupt; re-export or re-download it")
        raise InputError(f"{path}: the audio is empty or shorter than 0.1 s: give a song with sound in it")
    short = stated is not None and stated - decoded > max(SHORT_BY_S, SHORT_BY * stated)
    if short or lost > SHORT_BY_S:
        what = (f"decoded {decoded:.2f} s but the file says {stated:.2f} s" if short
                else f"{lost:.2f} s of it could not be decoded")
        if not accept_truncated:
            raise InputError(f"{path}: truncated or corrupt audio ({what}): re-export or re-download it, or pass "
                             f"--accept-truncated to use the {decoded:.2f} s that decode")
        log.warning("%s: truncated or corrupt audio (%s): using the %.2f s that decode (--accept-truncated)",
                    path, what, decoded)
    np.clip(samples, -1.0, 1.0, out=samples)
    return Audio(samples=samples, sample_rate=sample_rate, path=path)


def _decode(av, path: Path, sample_rate: int) -> tuple[np.ndarray, float | None, float | None, float]:
    """(mono samples at sample_rate, the stream's stated length in s or None, the container's,
    seconds lost to undecodable packets). A packet that fails to decode becomes silence of
    its length, so what follows stays in time with the file; a cut at the end simply stops."""
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise InputError(f"{path}: has no audio stream: give a file with sound in it")
        stream = container.streams.audio[0]
        whole = container.duration / 1_000_000 if container.duration else None
        stated = None
        if stream.duration is not None and stream.time_base:
            stated = float(stream.duration * stream.time_base)
        elif len(container.streams) == 1:
            stated = whole  # the container's length is this stream's
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        lost = 0.0
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    if packet.duration and packet.time_base and packet.size:
                        gap = float(packet.duration * packet.time_base)
                        lost += gap
                        chunks.append(np.zeros(int(round(gap * sample_rate)), np.float32))
                    continue
                for frame in frames:
                    frame.pts = None  # the resampler follows the samples, not gaps in the timestamps
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError:
            pass  # the demuxer stopped (a truncated file): the lengths below tell how much is missing
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return samples, stated, whole, lost


def _wav_stated(path: Path) -> float | None:
    """A WAV file's length by its header (the data chunk's size), which FFmpeg replaces by an
    estimate when the file is cut short; None when the header does not say (0 or 0xFFFFFFFF: a
    stream written without knowing its length)."""
    import struct

    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, None
    while pos + 8 <= len(head):
        kind, size = head[pos:pos + 4], struct.unpack("<I", head[pos + 4:pos + 8])[0]
        if kind == b"fmt " and pos + 16 <= len(head):
            byte_rate = struct.unpack("<I", head[pos + 16:pos + 20])[0]
        elif kind == b"data":
            return size / byte_rate if byte_rate and size not in (0, 0xFFFFFFFF) else None
        pos += 8 + size + (size & 1)
    return None


def _short(e: Exception) -> str:
    import av

    if isinstance(e, av.error.FFmpegError) and e.strerror:
        msg = e.strerror + (f": {str(e.log[2]).strip()}" if e.log and len(e.log) > 2 else "")
    else:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg[:120]
