"""Memory stays flat over song length while rendering (the field's tools hold every frame).

Two checks of one property: the structural one (default run) counts, during a render, how many
batches of frames are alive at once and how far generation runs ahead of the encoder, for a
short song and a 5x longer one; the measured one (slow) compares the peak RSS of the two in
fresh processes (benchmarks/render_memory.py)."""
import gc
import importlib.util
import weakref
from pathlib import Path

import numpy as np
import pytest

from conftest import write_audio

ROOT = Path(__file__).resolve().parents[1]

# the render pipeline's own bounds: the encoder's queue (2 batches), the batch the encoder
# thread holds, the one the calling thread holds and the one being made; a batch more of slack
# for the moment a batch changes hands
MOST_BATCHES_ALIVE = 6


class _Census:
    """Every frame batch the render makes (weak references: counting keeps nothing alive), the
    frames the encoder has written, and the frame ranges asked of the frame source."""

    def __init__(self):
        self.refs: list[weakref.ref] = []
        self.made = 0  # frames generated
        self.written = 0  # frames handed to the H.264 encoder
        self.most_alive = 0
        self.most_ahead = 0  # frames generated but not yet written, at most
        self.ranges: list[tuple[int, int]] = []

    def alive(self) -> int:
        self.refs = [r for r in self.refs if r() is not None]
        if len(self.refs) >= MOST_BATCHES_ALIVE:  # only what a reference cycle keeps: collect it first
            gc.collect()
            self.refs = [r for r in self.refs if r() is not None]
        return len(self.refs)

    def batch(self, payload):
        self.most_alive = max(self.most_alive, self.alive() + 1)
        self.most_ahead = max(self.most_ahead, self.made - self.written)
        self.refs.append(weakref.ref(payload))
        self.made += payload.shape[0]
        return payload


class _Source:
    def __init__(self, inner, census):
        self.inner, self.census = inner, census

    def __len__(self):
        return len(self.inner)

    def latents(self, lo, hi):
        self.census.ranges.append((lo, hi))
        return self.inner.latents(lo, hi)


def _render_counted(monkeypatch, gen, tmp_path, seconds, overlay, **frame):
    import torch

    from musivid.video import render as rmod
    from musivid.config import RenderConfig
    from musivid.video.interpolate import FrameLatents, frame_count, plan
    from musivid.video.motion import Keyframe

    census = _Census()
    yuv = rmod.frames_yuv420  # the no-overlay path's batches: the yuv420p planes it returns
    monkeypatch.setattr(rmod, "frames_yuv420", lambda *a, **k: census.batch(yuv(*a, **k)))
    rgb = rmod.frames_rgb  # the overlay path's: the RGB frames it returns
    monkeypatch.setattr(rmod, "frames_rgb", lambda *a, **k: census.batch(rgb(*a, **k)))
    write = rmod._Writer.write

    def counted_write(self, pts, planes):
        write(self, pts, planes)
        census.written += planes.shape[0]

    monkeypatch.setattr(rmod._Writer, "write", counted_write)
    fps, sr = 24, 16000  # many frames per second of audio: the audio's AAC encoding is the slow part
    t = np.arange(int(seconds * sr)) / sr
    audio = write_audio(tmp_path / f"song{seconds}.wav", (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr)
    torch.manual_seed(0)
    k = 3
    kz, kc = torch.randn(k, gen.z_dim), torch.sigmoid(torch.randn(k, 1000))
    n = frame_count(seconds, fps)
    p = plan([Keyframe(i, i * seconds / k, False) for i in range(k)], n, fps, np.zeros(n), reactivity=0.0)
    cfg = RenderConfig(**{"fps": fps, "size": 32, "batch": 2, "preset": "ultrafast", **frame})
    res = rmod.render(gen, _Source(FrameLatents(p, kz, kc), census), audio,
                      tmp_path / f"v{seconds}-{overlay is not None}.mp4", cfg, overlay=overlay)
    monkeypatch.undo()
    assert res.frames == n == census.made == census.written
    assert census.ranges == [(lo, min(n, lo + cfg.batch)) for lo in range(0, n, cfg.batch)]  # batch by batch
    return census, n // cfg.batch


@pytest.mark.parametrize("overlay", [None, lambda i, frame: frame], ids=["planes", "overlay"])
def test_a_render_holds_a_bounded_number_of_frame_batches_whatever_the_length(monkeypatch, tiny_models, tmp_path,
                                                                             overlay):
    """2 s and 10 s of video at 24 fps (24 and 120 batches of 2 frames): at no moment are more than a
    handful of batches alive, and generation never runs more than those batches ahead of the
    encoder, for the short song and for the 5x longer one alike. A render that kept its frames
    (or encoded them only at the end) would hold every batch of the song."""
    _, gen = tiny_models
    for seconds in (2.0, 10.0):
        census, batches = _render_counted(monkeypatch, gen, tmp_path, seconds, overlay)
        print(f"{seconds:g} s, {batches} batches: at most {census.most_alive} alive, "
              f"{census.most_ahead} frames ahead of the encoder")
        assert batches > 3 * MOST_BATCHES_ALIVE
        assert census.most_alive <= MOST_BATCHES_ALIVE, (seconds, census.most_alive)
        assert census.most_ahead <= 2 * MOST_BATCHES_ALIVE, (seconds, census.most_ahead)


@pytest.mark.slow
def test_peak_rss_flat_over_a_five_times_longer_song():
    """30 s and 150 s of video (120 and 600 frames at 4 fps): the longer song peaks no higher."""
    spec = importlib.util.spec_from_file_location("render_memory", ROOT / "benchmarks" / "render_memory.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--fps", "4", "--size", "64", "--minutes", "0.5", "2.5"])
    assert res["rows"][1]["frames"] == 5 * res["rows"][0]["frames"] == 600
    assert res["ratio"] < 1.2


def test_a_wide_frame_with_captions_streams_the_same_way(monkeypatch, tiny_models, tmp_path):
    """A 16:9 frame with captions (sprites blended on the encoder thread into planes made on the
    device path) holds no more batches than a square one."""
    from musivid.song.segments import Segment
    from musivid.video.captions import CaptionTrack

    _, gen = tiny_models
    track = CaptionTrack([Segment(0, "a line", 0.5, 4.0), Segment(1, "another", 5.0, 9.0)], 24)
    census, batches = _render_counted(monkeypatch, gen, tmp_path, 5.0, track, aspect="16:9", size=64)
    print(f"16:9 with captions, {batches} batches: at most {census.most_alive} alive")
    assert census.most_alive <= MOST_BATCHES_ALIVE and census.most_ahead <= 2 * MOST_BATCHES_ALIVE


def test_the_render_batch_fits_the_free_memory(monkeypatch):
    """A batch of 1080p frames that would take more than a quarter of the free memory is made
    smaller (the render says so); unknown free memory leaves it as asked."""
    from musivid.video.frame import FrameSpec
    from musivid.video.render import fit_batch

    spec = FrameSpec(1920, 1080)
    per = spec.bytes_per_frame(rgb=False)
    assert 1920 * 1080 * 1.5 < per < 1920 * 1080 * 64
    assert fit_batch(16, spec, False, None) == 16
    assert fit_batch(16, spec, False, 4 * 5 * per) == 5
    assert fit_batch(16, spec, False, 10) == 1  # never less than one frame
    assert fit_batch(16, FrameSpec(256, 256), False, 4 * 5 * per) == 16
    assert fit_batch(16, spec, True, 4 * 5 * per) < 5  # RGB frames for a drawing overlay take more
    assert fit_batch(16, spec, False, None, cpu=True) == 4  # the CPU's pixel budget
    assert fit_batch(16, FrameSpec(1280, 720), False, None, cpu=True) == 9
    assert fit_batch(16, FrameSpec(256, 256), False, None, cpu=True) == 16


def test_a_render_makes_smaller_batches_when_memory_is_short(monkeypatch, tiny_models, tmp_path):
    """With free memory for a quarter-budget of 3 frames, the render asks its frame source for 3
    frames at a time, not the configured 16, and still writes every frame."""
    import torch

    from musivid.config import RenderConfig
    from musivid.images import optimize
    from musivid.video.frame import FrameSpec
    from musivid.video.interpolate import FrameLatents, frame_count, plan
    from musivid.video.motion import Keyframe
    from musivid.video.render import render

    _, gen = tiny_models
    cfg = RenderConfig(fps=24, size=64, aspect="16:9", batch=16, preset="ultrafast")
    monkeypatch.setattr(optimize, "available_memory", lambda device: 4 * 3 * FrameSpec.of(cfg).bytes_per_frame(False))
    audio = write_audio(tmp_path / "s.wav", np.zeros(16000, np.float32), 16000)
    n = frame_count(1.0, 24)
    torch.manual_seed(0)
    census = _Census()
    source = _Source(FrameLatents(plan([Keyframe(0, 0.0, False)], n, 24, np.zeros(n), reactivity=0.0),
                                  torch.randn(1, gen.z_dim), torch.sigmoid(torch.randn(1, 1000))), census)
    res = render(gen, source, audio, tmp_path / "v.mp4", cfg)
    assert res.frames == n and (res.width, res.height) == (114, 64)
    assert census.ranges == [(lo, min(n, lo + 3)) for lo in range(0, n, 3)]
