"""Compile librosa's numba kernels into their on-disk cache, once per environment.

librosa's beat and onset code is JIT-compiled by numba on its first call in a new environment
(~25-35 s on 2 cores), then cached beside librosa's own files. `make install` runs this once, so
neither the first `musivid` run nor the test suite pays for it: it analyses 4 s of a synthetic
drum loop exactly as a song's rhythm is analysed.

    python tools/warm_caches.py
"""
from __future__ import annotations

import numpy as np

from musivid.song.audio import Audio
from musivid.song.rhythm import analyze


def main() -> None:
    sr = 22050
    t = np.arange(4 * sr) / sr
    kick = np.sin(2 * np.pi * 60 * t) * np.exp(-(t % 0.5) * 30)  # a beat every 0.5 s
    analyze(Audio((0.5 * kick).astype(np.float32), sr, None))


if __name__ == "__main__":
    main()
