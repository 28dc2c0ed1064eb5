"""Peak RSS and frames/s of the streaming render: a 1-minute vs a 5-minute song.

Each measurement runs in a fresh process (peak RSS is per process): tiny random models, the
render stage alone (frames generated in batches, encoded as they come, audio decoded and encoded
alongside). Usage:

    python benchmarks/render_memory.py [--fps 24] [--size 256] [--aspect 1:1] [--minutes 1 5]
                                       [--device cuda --full-size] [--batch 16]

--aspect 16:9 --size 1080 measures 1920x1080 frames (the image on the blur fill).

--full-size renders with BigGAN-deep-256's architecture and random weights (bf16 autocast on CUDA):
the render speed on a GPU, which does not depend on weight values.

Prints a Markdown table (paste it into benchmarks/RESULTS.md) and the 5-min/1-min RSS ratio.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

# the generator of a child process: tiny random models, or the full-size architecture (render_frames.py too)
MODELS = r"""
device = torch.device({device!r})
if {full_size!r}:
    from musivid.images.models import biggan as bg
    torch.manual_seed(0)
    gen = bg.Generator(bg.prepare(bg.new_model(bg.full_config(256))).to(device), "biggan-deep-256 (random weights)", True)
else:
    gen = load_biggan(ModelConfig(untrained=True), device)
amp = torch.bfloat16 if device.type == "cuda" else None
torch.manual_seed(0)
"""

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, {tests!r})
from conftest import write_audio
from musivid.config import ModelConfig, RenderConfig
from musivid.images.models.load import load_biggan
from musivid.video.interpolate import FrameLatents, frame_count, plan
from musivid.video.render import render
from musivid.video.motion import Keyframe
minutes, fps, size, aspect, tmp = {minutes}, {fps}, {size}, {aspect!r}, Path({tmp!r})
sr = 22050
dur = minutes * 60.0
t = np.arange(int(dur * sr)) / sr
audio = write_audio(tmp / f"song{{minutes}}.m4a", (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
del t
""" + MODELS + r"""k = max(2, int(dur // 4))  # a keyframe every 4 s
kfs = [Keyframe(i, i * 4.0, False) for i in range(k)]
kz, kc = torch.randn(k, gen.z_dim), torch.sigmoid(torch.randn(k, 1000))
n = frame_count(dur, fps)
p = plan(kfs, n, fps, np.zeros(n), reactivity=0.0)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
res = render(gen, FrameLatents(p, kz, kc), audio, tmp / f"v{{minutes}}.mp4", RenderConfig(fps=fps, size=size, aspect=aspect, batch={batch}),
             amp_dtype=amp)
secs = time.perf_counter() - t0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"minutes": minutes, "frames": res.frames, "seconds": secs, "fps": res.frames / secs,
                  "peak_rss_mb": peak / 1024, "before_render_mb": base / 1024}}))
"""


def measure(minutes: float, fps: float, size: int, device: str = "cpu", full_size: bool = False,
            batch: int = 16, aspect: str = "1:1") -> dict:
    tests = str(Path(__file__).resolve().parents[1] / "tests")
    with tempfile.TemporaryDirectory() as tmp:
        code = CHILD.format(tests=tests, minutes=minutes, fps=fps, size=size, tmp=tmp, device=device,
                            full_size=full_size, batch=batch, aspect=aspect)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"render_memory: the {minutes:g}-minute run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fps", type=float, default=24)
    ap.add_argument("--size", type=int, default=256, help="the frame's short side")
    ap.add_argument("--aspect", default="1:1", help="16:9, 9:16, 4:3 or 1:1")
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 5])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--full-size", action="store_true", help="BigGAN-deep-256 architecture, random weights")
    ap.add_argument("--batch", type=int, default=16, help="frames generated per batch")
    a = ap.parse_args(argv)
    rows = [measure(m, a.fps, a.size, a.device, a.full_size, a.batch, a.aspect) for m in a.minutes]
    model = "BigGAN-deep-256 architecture, random weights" if a.full_size else "tiny random BigGAN (64 px)"
    print(f"device {a.device}, {model}, {a.size} px {a.aspect}, {a.fps:g} fps, batch {a.batch}")
    print("| song | frames | render s | frames/s | peak RSS MB | RSS before render MB |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['minutes']:g} min | {r['frames']} | {r['seconds']:.1f} | {r['fps']:.1f} | "
              f"{r['peak_rss_mb']:.0f} | {r['before_render_mb']:.0f} |")
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    print(f"peak RSS ratio {rows[-1]['minutes']:g} min / {rows[0]['minutes']:g} min: {ratio:.3f}")
    return {"rows": rows, "ratio": ratio}


if __name__ == "__main__":
    main()
