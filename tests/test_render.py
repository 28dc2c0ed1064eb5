"""Render with PyAV: exact frame counts, A/V sync, codecs, atomic output. Tiny models, CPU."""
from fractions import Fraction

import av
import numpy as np
import pytest
import torch

from conftest import musivid, write_audio
from musivid.config import RenderConfig
from musivid.video.interpolate import FrameLatents, frame_count, frame_latents, plan
from musivid.video.captions import CaptionTrack, write_srt
from musivid.video.render import fps_fraction, render
from musivid.video.motion import Keyframe
from musivid.song.segments import Segment


def probe(path):
    """Golden metadata of a video file (not pixel hashes)."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0]
        frames = sum(1 for _ in c.decode(video=0))
        return {
            "video_codec": v.codec_context.name, "pix_fmt": v.codec_context.pix_fmt,
            "width": v.codec_context.width, "height": v.codec_context.height,
            "fps": Fraction(v.average_rate), "frames": frames,
            "video_duration": float(v.duration * v.time_base),
            "audio_codec": a.codec_context.name,
            "audio_duration": float(a.duration * a.time_base),
            "streams": (len(c.streams.video), len(c.streams.audio)),
            "title": c.metadata.get("title", ""),
        }


def _render(tiny_models, tmp_path, fps, duration, size=64, batch=8, **kw):
    _, gen = tiny_models
    audio = write_audio(tmp_path / "a.wav", 0.2 * np.sin(np.arange(int(22050 * duration)) / 7.0), 22050)
    n = frame_count(duration, float(fps_fraction(fps)))
    kfs = [Keyframe(0, 0.0, False), Keyframe(1, duration / 2, False)]
    torch.manual_seed(0)
    kz, kc = torch.randn(2, gen.z_dim), torch.sigmoid(torch.randn(2, 1000) * 3)
    p = plan(kfs, n, fps, np.zeros(n), reactivity=0.0)
    out = tmp_path / "v.mp4"
    if "captions" in kw:
        texts = kw.pop("captions")
        half = duration / len(texts)
        kw["overlay"] = CaptionTrack([Segment(i, t, i * half, (i + 1) * half) for i, t in enumerate(texts)], fps)
    res = render(gen, FrameLatents(p, kz, kc), audio, out, RenderConfig(fps=fps, size=size, batch=batch),
                 metadata={"title": "t"}, **kw)
    expected = gen.images_uint8(*frame_latents(p, slice(0, n), kz, kc), 1.0, size)  # (n, size, size, 3)
    return res, out, n, expected


@pytest.mark.parametrize("fps,duration", [(24, 3.37), (25, 2.01), (30, 1.93), (29.97, 3.337)])
def test_exact_frame_count_and_av_sync(tiny_models, tmp_path, fps, duration):
    res, out, n, _ = _render(tiny_models, tmp_path, fps, duration)
    meta = probe(out)
    print(fps, duration, meta)
    assert meta["frames"] == n == round(duration * fps)
    assert meta["streams"] == (1, 1)
    assert meta["video_codec"] == "h264" and meta["pix_fmt"] == "yuv420p" and meta["audio_codec"] == "aac"
    assert meta["fps"] == fps_fraction(fps)
    frame = 1.0 / fps
    assert abs(meta["video_duration"] - duration) < frame
    assert abs(meta["audio_duration"] - duration) < frame
    assert abs(meta["video_duration"] - meta["audio_duration"]) < frame


def test_ntsc_rates_are_exact_fractions():
    assert fps_fraction(29.97) == Fraction(30000, 1001)
    assert fps_fraction(23.976) == Fraction(24000, 1001)
    assert fps_fraction(25) == 25


def test_frames_are_the_generated_images_and_they_glide(tiny_models, tmp_path):
    """Every decoded frame is the generator's image of that frame's latents (up to H.264 at crf 20),
    upscaled to the asked size, and the video follows the glide frame by frame: each frame is
    nearest to its own generated image among all of them (within a frame or two), which encoder
    noise on a still picture could not do. Compared on 4x4-pixel means (H.264 drops pixel noise)."""
    res, out, n, expected = _render(tiny_models, tmp_path, 24, 2.0, size=96)
    meta = probe(out)
    assert (meta["width"], meta["height"]) == (96, 96)
    with av.open(str(out)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24").astype(float) for f in c.decode(video=0)])

    def pool(x):
        return x.reshape(len(x), 24, 4, 24, 4, 3).mean(axis=(2, 4))

    got, want = pool(frames), pool(expected.astype(float))
    dist = np.abs(got[:, None] - want[None]).mean(axis=(2, 3, 4))  # (decoded frame, generated frame)
    err = dist[np.arange(n), np.arange(n)]
    glide = range(2, n // 2 - 2)  # between the two keyframes, away from the eased ends
    nearest = dist.argmin(axis=1)
    print(f"error per frame: max {err.max():.2f}; span of the glide {dist[0, n // 2]:.2f}; "
          f"nearest generated frame - own frame: {[int(nearest[i] - i) for i in glide]}")
    assert err.max() < 2.0
    assert dist[0, n // 2] > 3 * err.max()  # two different keyframe images
    assert all(abs(nearest[i] - i) <= 2 for i in glide)


def test_failed_render_leaves_no_file(tiny_models, tmp_path):
    def fail(done, total):
        if done >= 16:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        _render(tiny_models, tmp_path, 24, 2.0, callback=fail)
    assert not (tmp_path / "v.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_captions_burned_in(tiny_models, tmp_path):
    _, out_plain, _, _ = _render(tiny_models, tmp_path, 24, 1.0, size=128)
    plain = next(av.open(str(out_plain)).decode(video=0)).to_ndarray(format="rgb24")
    _, out_cap, _, _ = _render(tiny_models, tmp_path, 24, 1.0, size=128, captions=["Hello 月亮", "two"])
    cap = next(av.open(str(out_cap)).decode(video=0)).to_ndarray(format="rgb24")
    diff = np.abs(cap.astype(int) - plain.astype(int)).sum(-1)
    assert diff[96:].mean() > 5 * diff[:64].mean() + 5  # text at the bottom; the top only moves by encoding noise


def test_srt(tmp_path):
    p = tmp_path / "a.srt"
    write_srt([Segment(0, "one", 0.0, 1.5), Segment(1, "zwei", 61.25, 3725.0)], p)
    assert p.read_text() == ("1\n00:00:00,000 --> 00:00:01,500\none\n\n"
                             "2\n00:01:01,250 --> 01:02:05,000\nzwei\n")


def test_faststart_puts_the_index_first(tiny_models, tmp_path):
    _, out, _, _ = _render(tiny_models, tmp_path, 24, 1.0)
    head = out.read_bytes()
    assert 0 <= head.find(b"moov") < head.find(b"mdat")


def test_outputs_get_normal_file_permissions(tiny_models, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        _, out, _, _ = _render(tiny_models, tmp_path, 24, 0.5)
        p = tmp_path / "a.srt"
        write_srt([Segment(0, "x", 0, 1)], p)
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644 and stat.S_IMODE(p.stat().st_mode) == 0o644


# ---- the render pipeline: device YUV, encoder thread, presets ---------------------------------------

def _smooth_rgb(n=2, side=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, 12, 12, generator=g) * 255
    img = torch.nn.functional.interpolate(small, size=(side, side), mode="bicubic", align_corners=False)
    return img.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()  # (n, H, W, 3)


@pytest.mark.parametrize("matrix", ["bt601", "bt709"])
def test_yuv_conversion_matches_pyav(matrix):
    """rgb_to_yuv420 against PyAV's (swscale's) rgb24 -> yuv420p, limited range: luma within 1
    level, chroma within 2 on smooth frames (swscale filters chroma with its own kernel)."""
    from av.video.reformatter import ColorRange, Colorspace, VideoReformatter

    from musivid.video.render import rgb_to_yuv420

    rgb = _smooth_rgb()
    ours = rgb_to_yuv420(rgb, matrix).numpy().astype(int)
    cs = {"bt601": Colorspace.ITU601, "bt709": Colorspace.ITU709}[matrix]
    conv = VideoReformatter()
    for i in range(len(rgb)):
        f = av.VideoFrame.from_ndarray(rgb[i].numpy(), format="rgb24")
        ref = conv.reformat(f, format="yuv420p", dst_colorspace=cs, dst_color_range=ColorRange.MPEG).to_ndarray()
        d = np.abs(ours[i] - ref.astype(int))
        print(matrix, "max |Y| diff", d[:128].max(), "max |UV| diff", d[128:].max())
        assert d[:128].max() <= 1 and d[128:].max() <= 2


def test_device_frames_match_the_rgb_frames(tiny_models):
    """The render's planes (converted at the generator's resolution, then resized) against the
    RGB frames converted after resizing: luma within 2 levels, chroma within 6 and 0.5 on average
    (chroma is resampled 64 -> 64 px bicubic here, 2x2-averaged from 128 px there)."""
    from musivid.video.render import frames_yuv420, rgb_to_yuv420

    _, gen = tiny_models
    torch.manual_seed(0)
    z, c = torch.randn(3, gen.z_dim), torch.softmax(3 * torch.randn(3, 1000), 1)
    a = frames_yuv420(gen, z, c, 1.0, 128).numpy().astype(int)
    b = rgb_to_yuv420(gen.frames(z, c, 1.0, 128)).numpy().astype(int)
    d = np.abs(a - b)
    print("max luma difference", d[:, :128].max(), "chroma", d[:, 128:].max(), "mean", d.mean())
    assert d[:, :128].max() <= 2 and d[:, 128:].max() <= 6 and d.mean() < 0.5


def test_stream_carries_its_colour_matrix(tiny_models, tmp_path):
    _, out, _, _ = _render(tiny_models, tmp_path, 24, 0.5)
    with av.open(str(out)) as c:
        cc = c.streams.video[0].codec_context
        assert (int(cc.colorspace), int(cc.color_range)) == (6, 1)  # BT.601 (smpte170m), limited range


def test_no_reformatter_per_frame(tiny_models, tmp_path, monkeypatch):
    """Frames reach the encoder as yuv420p planes: no swscale context is made per frame."""
    def boom(*a, **k):
        raise AssertionError("VideoFrame.reformat called")

    monkeypatch.setattr(av.VideoFrame, "reformat", boom)
    res, out, n, _ = _render(tiny_models, tmp_path, 24, 1.0)
    assert probe(out)["frames"] == n


def test_an_encoder_failure_surfaces_and_leaves_no_file(tiny_models, tmp_path, monkeypatch):
    from musivid.video import render as rmod

    real = rmod._Writer.write
    calls = []

    def flaky(self, pts, planes):
        calls.append(pts)
        if len(calls) == 2:
            raise OSError("disk full (simulated)")
        return real(self, pts, planes)

    monkeypatch.setattr(rmod._Writer, "write", flaky)
    with pytest.raises(OSError, match="disk full"):
        _render(tiny_models, tmp_path, 24, 3.0)
    assert not (tmp_path / "v.mp4").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_preset_is_a_render_setting(tiny_models, tmp_path):
    from musivid.errors import InputError

    _, gen = tiny_models
    with pytest.raises(InputError, match="preset must be one of"):
        RenderConfig(preset="warp9")
    res, out, n, _ = _render(tiny_models, tmp_path, 24, 0.5)
    assert probe(out)["frames"] == n


def test_render_bench_measures_the_render_against_the_encoder_alone(tmp_path):
    """`musivid bench --render`: the render's frames/s against encoding the very same frames alone,
    in one run. Whether the render keeps up (0.84-0.86 on an idle 2-core CPU, 256 px) is a
    benchmark figure (benchmarks/RESULTS.md), never a pass/fail line: a loaded machine moves it."""
    import json

    out = tmp_path / "render.json"
    r = musivid("bench", "--render", "--device", "cpu", "--untrained", "--seconds", "1", "--size", "128",
                "--preset", "ultrafast", "--json", out, "-q")
    assert r.returncode == 0, r.stderr
    assert "render / encoder alone (best repeat):" in r.stdout and "encoder alone, same frames" in r.stdout
    j = json.loads(out.read_text())["render"]
    assert j["frames"] == 24 and j["size"] == 128 and len(j["render_fps"]) == len(j["encode_only_fps"]) == 3
    assert j["ratio"] == max(a / b for a, b in zip(j["render_fps"], j["encode_only_fps"])) > 0
    assert j["kbit_per_s"] > 100  # the encoder gets detailed frames, not near-still video
