"""Decode any audio (or a video's audio track) to float32 mono with PyAV, in-process."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class Audio:
    samples: np.ndarray  # (T,) float32 mono in [-1, 1]
    sample_rate: int
    path: Path

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def decode(path: str | Path, sample_rate: int = 22050) -> Audio:
    """Decode the first audio stream of `path`, downmixed to mono and resampled to `sample_rate`.

    Raises InputError with a one-line message for a missing, empty, truncated or non-audio file.
    A video file is fine: its audio track is used.
    """
    import av  # lazy: keeps `musivid --help` instant

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file: check the audio path")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise InputError(f"{path}: the file is empty: give an audio file (mp3, wav, flac, ogg, m4a)")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise InputError(
            f"{path}: not a readable audio file ({_short(e)}): give an mp3, wav, flac, ogg or m4a"
        ) from None
    chunks: list[np.ndarray] = []
    try:
        if not container.streams.audio:
            raise InputError(f"{path}: has no audio stream: give a file with sound in it")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as e:
            if not chunks:
                raise InputError(
                    f"{path}: the audio could not be decoded ({_short(e)}): the file may be "
                    "truncated or corrupt; re-export it"
                ) from None
            # A truncated tail: keep what decoded (players do the same).
    finally:
        container.close()
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    if len(samples) < sample_rate // 10:
        raise InputError(
            f"{path}: the audio is empty or shorter than 0.1 s: give a song with sound in it"
        )
    np.clip(samples, -1.0, 1.0, out=samples)
    return Audio(samples=samples, sample_rate=sample_rate, path=path)


def _short(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg[:120]
