"""Render speed and peak memory by frame: 1080-line 16:9 frames (1920x1080, the image on a blur,
mirror or black fill) against today's 256 px square, in one run, on the CPU with the tiny models.

Each row renders the same song (a sine, a keyframe every 2 s, a caption line every 2 s where
captions are on) in a fresh process (peak RSS is per process), the render stage alone, as an
untrained preview (its mark drawn, as `--untrained` renders are). Usage:

    python benchmarks/render_frames.py [--seconds 5] [--fps 24] [--preset medium] [--repeats 1]
                                       [--device cuda --full-size]

--repeats N renders every row N times (each in a fresh process) and keeps the fastest (a shared
machine's other work only ever slows a run down). --full-size renders with BigGAN-deep-256's
architecture and random weights (bf16 on CUDA): the render speed on a GPU.

Prints a Markdown table (for benchmarks/RESULTS.md): frames/s, the encoder thread's share of the
time, peak RSS and the RSS before the render.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from render_memory import MODELS  # noqa: E402  (the same generator)

ROWS = [  # (label, aspect, size, fill, captions)
    ("256 px square", "1:1", 256, "blur", False),
    ("256 px square, captions", "1:1", 256, "blur", True),
    ("1920x1080 16:9, blur fill", "16:9", 1080, "blur", False),
    ("1920x1080 16:9, blur fill, captions", "16:9", 1080, "blur", True),
    ("1920x1080 16:9, mirror fill", "16:9", 1080, "mirror", False),
    ("1920x1080 16:9, black fill", "16:9", 1080, "black", False),
]

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, {tests!r})
from conftest import write_audio
from musivid.config import ModelConfig, RenderConfig
from musivid.images.models.load import load_biggan
from musivid.song.segments import Segment
from musivid.video.captions import caption_track
from musivid.video.interpolate import FrameLatents, frame_count, plan
from musivid.video.motion import Keyframe
from musivid.video.render import RenderTimes, render
seconds, fps, tmp = {seconds}, {fps}, Path({tmp!r})
sr = 22050
t = np.arange(int(seconds * sr)) / sr
audio = write_audio(tmp / "song.m4a", (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
""" + MODELS + r"""k = max(2, int(seconds // 2))
kz, kc = torch.randn(k, gen.z_dim), torch.sigmoid(torch.randn(k, 1000))
n = frame_count(seconds, fps)
p = plan([Keyframe(i, i * 2.0, False) for i in range(k)], n, fps, np.zeros(n), reactivity=0.0)
cfg = RenderConfig(fps=fps, size={size}, aspect={aspect!r}, fill={fill!r}, preset={preset!r},
                   captions="line" if {captions!r} else "none")
segs = [Segment(i, f"line number {{i + 1}} of the song, sung here", 2.0 * i + 0.2, 2.0 * i + 1.8) for i in range(k)]
overlay = caption_track(segs, cfg, untrained=True)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
times = RenderTimes()
t0 = time.perf_counter()
res = render(gen, FrameLatents(p, kz, kc), audio, tmp / "v.mp4", cfg, overlay=overlay, untrained=True, times=times,
             amp_dtype=amp)
secs = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"frames": res.frames, "width": res.width, "height": res.height, "seconds": secs,
                  "fps": res.frames / secs, "encode_share": times.encode / secs, "peak_rss_mb": peak / 1024,
                  "before_render_mb": base / 1024, "threads": torch.get_num_threads()}}))
"""


def measure(aspect: str, size: int, fill: str, captions: bool, seconds: float, fps: float, preset: str,
            device: str = "cpu", full_size: bool = False) -> dict:
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    with tempfile.TemporaryDirectory() as tmp:
        code = CHILD.format(tests=tests, seconds=seconds, fps=fps, tmp=tmp, size=size, aspect=aspect, fill=fill,
                            preset=preset, captions=captions, device=device, full_size=full_size)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"render_frames: the {aspect} {size} px run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds of video per row")
    ap.add_argument("--fps", type=float, default=24)
    ap.add_argument("--preset", default="medium", help="x264 preset (the render's default: medium)")
    ap.add_argument("--repeats", type=int, default=1, help="runs per row; the fastest is kept")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--full-size", action="store_true", help="BigGAN-deep-256 architecture, random weights")
    a = ap.parse_args(argv)
    load = os.getloadavg()[0]  # other work on the machine slows every row down
    rows = []
    for label, asp, size, fill, cap in ROWS:
        runs = [measure(asp, size, fill, cap, a.seconds, a.fps, a.preset, a.device, a.full_size)
                for _ in range(max(1, a.repeats))]
        rows.append((label, max(runs, key=lambda r: r["fps"])))
    model = "BigGAN-deep-256 architecture, random weights" if a.full_size else "tiny random BigGAN (64 px images)"
    where = f"CPU ({os.cpu_count()} cores)" if a.device == "cpu" else a.device
    print(f"{where}, {model}, {a.seconds:g} s at {a.fps:g} fps, x264 preset {a.preset}, untrained mark on, "
          f"fastest of {max(1, a.repeats)}; load average at the start {load:.1f}")
    print("| frame | frames | render s | frames/s | encoder thread busy | peak RSS MB | RSS before render MB |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, r in rows:
        print(f"| {label} | {r['frames']} | {r['seconds']:.1f} | {r['fps']:.1f} | {100 * r['encode_share']:.0f} % | "
              f"{r['peak_rss_mb']:.0f} | {r['before_render_mb']:.0f} |")
    square = rows[0][1]["fps"]
    for label, r in rows[2:]:
        print(f"{label}: {r['fps'] / square:.2f}x the 256 px square's frames/s")
    return {"rows": [dict(r, label=label) for label, r in rows]}


if __name__ == "__main__":
    main()
