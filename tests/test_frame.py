"""The video frame (video/frame.py): sizes from --aspect and --size, the fills (black, mirror,
blur) checked on pixels, the device path's planes against the RGB path's, the UNTRAINED PREVIEW
mark (present in untrained renders only, clear of the captions), captions that scale with the
frame, and the settings on the command line. Tiny models, CPU, small frames."""
import av
import numpy as np
import pytest
import torch

from conftest import musivid, write_audio
from musivid.config import RenderConfig, frame_size
from musivid.errors import InputError
from musivid.video.frame import FrameSpec, compose_rgb, mark_clear, untrained_mark


def _images(n=2, side=64, seed=0):
    """(n, 3, side, side) in [0, 1]: smooth random pictures with some detail."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, 8, 8, generator=g)
    return torch.nn.functional.interpolate(small, size=(side, side), mode="bicubic", align_corners=False).clamp(0, 1)


@pytest.mark.parametrize("aspect,short,want", [
    ("16:9", 720, (1280, 720)), ("9:16", 720, (720, 1280)), ("16:9", 1080, (1920, 1080)), ("9:16", 1080, (1080, 1920)),
    ("4:3", 720, (960, 720)), ("16:9", 480, (854, 480)), ("16:9", 256, (456, 256)), ("4:3", 256, (342, 256)),
    ("1:1", 256, (256, 256))])
def test_frame_sizes_are_even_with_the_short_side_given(aspect, short, want):
    assert frame_size(aspect, short) == want
    spec = FrameSpec(*want)
    assert spec.side == short and spec.x % 2 == 0 and spec.y % 2 == 0
    # the image is centred to within a pixel (its offset rounded down to even, for the chroma planes)
    assert 0 <= (spec.width - spec.side) / 2 - spec.x <= 1 and 0 <= (spec.height - spec.side) / 2 - spec.y <= 1


def test_black_fill_borders_are_black_and_the_image_is_in_the_middle():
    img = _images()
    spec = FrameSpec(114, 64, "black")
    out = compose_rgb(img, spec)
    assert out.shape == (2, 3, 64, 114)
    x = spec.x
    assert torch.equal(out[..., x:x + 64], img)
    assert out[..., :x].abs().max() == 0 and out[..., x + 64:].abs().max() == 0


@pytest.mark.parametrize("size", [(114, 64), (64, 114)])
def test_mirror_fill_mirrors_the_image_edge(size):
    img = _images()
    spec = FrameSpec(*size, "mirror")
    out = compose_rgb(img, spec)
    x, y, s = spec.x, spec.y, spec.side
    assert torch.equal(out[..., y:y + s, x:x + s], img)
    if x:  # left border: the image's first columns, reversed (the edge column repeated first)
        assert torch.equal(out[..., :x].flip(-1), img[..., :x])
        right = out[..., x + s:]
        assert torch.equal(right, img[..., s - right.shape[-1]:].flip(-1))
    else:
        assert torch.equal(out[..., :y, :].flip(-2), img[..., :y, :])
        below = out[..., y + s:, :]
        assert torch.equal(below, img[..., s - below.shape[-2]:, :].flip(-2))


def test_blur_fill_is_darker_and_follows_the_image():
    """The borders are darker than the image (DARKEN), smooth, and correlated with the image
    scaled to cover the frame there (what a blurred, darkened backdrop is)."""
    from musivid.video.frame import DARKEN

    img = _images(4, seed=3)
    spec = FrameSpec(228, 128, "blur")
    out = compose_rgb(img, spec)
    x, s = spec.x, spec.side
    border = torch.cat([out[..., :x], out[..., x + s:]], -1)  # (4, 3, 128, 2x)
    cover = torch.nn.functional.interpolate(img, size=(228, 228), mode="bilinear", align_corners=False)[..., 50:178, :]
    cover_border = torch.cat([cover[..., :x], cover[..., x + s:]], -1)
    ratio = border.mean() / cover_border.mean()
    coarse = torch.nn.functional.avg_pool2d  # compare the structure, not the pixels (it is blurred)
    a, b = coarse(border, 8).flatten(), coarse(cover_border, 8).flatten()
    corr = float(np.corrcoef(a.numpy(), b.numpy())[0, 1])
    print(f"blur fill: brightness {ratio:.2f} of the covering image's, correlation {corr:.2f}")
    assert abs(ratio - DARKEN) < 0.05 and corr > 0.6
    assert border.mean() < 0.7 * out[..., x:x + s].mean()
    # smooth: neighbouring pixels differ far less than in the image itself
    assert (border[..., 1:] - border[..., :-1]).abs().mean() < 0.5 * (img[..., 1:] - img[..., :-1]).abs().mean()


@pytest.mark.parametrize("fill", ["blur", "mirror", "black"])
@pytest.mark.parametrize("size", [(228, 128), (128, 228), (172, 128)])
def test_device_planes_match_the_rgb_frames_in_every_frame(tiny_models, fill, size):
    """The render's yuv420p planes (fill and mark made on the Y'CbCr planes, chroma at half size)
    against the RGB frames converted: the same picture, chroma lined up with luma."""
    from musivid.video.render import frames_rgb, frames_yuv420, rgb_to_yuv420

    _, gen = tiny_models
    torch.manual_seed(0)
    z, c = torch.randn(2, gen.z_dim), torch.softmax(3 * torch.randn(2, 1000), 1)
    spec = FrameSpec(*size, fill)
    mark = untrained_mark(*size)
    a = frames_yuv420(gen, z, c, 1.0, spec.side, frame=spec, mark=mark).numpy().astype(int)
    b = rgb_to_yuv420(frames_rgb(gen, z, c, 1.0, spec, mark=mark)).numpy().astype(int)
    assert a.shape == b.shape == (2, size[1] * 3 // 2, size[0])
    d = np.abs(a - b)
    h = size[1]
    print(fill, size, "max luma difference", d[:, :h].max(), "chroma", d[:, h:].max(), "mean", d.mean())
    assert d[:, :h].max() <= 2 and d[:, h:].max() <= 8 and d.mean() < 0.5


def test_the_mark_goes_where_the_captions_are_not_and_only_where_it_is_legible():
    top = untrained_mark(456, 256)
    x0, y0, x1, y1 = top.box
    assert x0 < 10 and y0 < 10 and x1 < 0.5 * 456 and (y1 - y0) >= 8
    assert mark_clear(top, 256) == (y1 + max(2, (y1 - y0) // 4), 0)
    low = untrained_mark(456, 256, "top")
    assert low.box[3] > 246 and mark_clear(low, 256)[0] == 0 and mark_clear(low, 256)[1] > 0
    assert untrained_mark(128, 128).box[2] < 0.55 * 128  # the shorter "UNTRAINED"
    assert untrained_mark(64, 64) is None  # no legible words fit: the metadata says it
    assert all(v % 2 == 0 for v in top.box)


def _render(gen, tmp_path, name, cfg, untrained=False, overlay=None, seconds=0.5):
    from musivid.video.interpolate import FrameLatents, frame_count, plan
    from musivid.video.motion import Keyframe
    from musivid.video.render import render

    audio = tmp_path / "a.wav"
    if not audio.exists():
        write_audio(audio, 0.2 * np.sin(np.arange(int(22050 * seconds)) / 7.0), 22050)
    n = frame_count(seconds, cfg.fps)
    torch.manual_seed(0)
    kz, kc = torch.randn(2, gen.z_dim), torch.sigmoid(torch.randn(2, 1000) * 3)
    source = FrameLatents(plan([Keyframe(0, 0.0, False), Keyframe(1, seconds / 2, False)], n, cfg.fps, np.zeros(n),
                               reactivity=0.0), kz, kc)
    res = render(gen, source, audio, tmp_path / name, cfg, overlay=overlay, untrained=untrained)
    with av.open(str(tmp_path / name)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(float)
    return res, frames, source


def test_the_untrained_mark_is_in_every_frame_of_an_untrained_render_only(tiny_models, tmp_path):
    """The same frames rendered as an untrained preview and as a trained one: they differ in the
    mark's corner (every frame), and nowhere else beyond encoding noise; the trained one's corner is
    the picture itself."""
    from musivid.video.render import frames_rgb

    _, gen = tiny_models
    cfg = RenderConfig(fps=12, size=128, aspect="16:9", crf=12, preset="ultrafast")
    _, marked, source = _render(gen, tmp_path, "u.mp4", cfg, untrained=True)
    _, plain, _ = _render(gen, tmp_path, "t.mp4", cfg, untrained=False)
    x0, y0, x1, y1 = untrained_mark(228, 128).box
    inside = np.abs(marked - plain)[:, y0:y1, x0:x1].mean(axis=(1, 2, 3))
    rest = np.abs(marked - plain)
    rest[:, :y1 + 4, :x1 + 4] = 0
    print(f"mark box: mean change per frame {inside.min():.1f}..{inside.max():.1f}; elsewhere at most "
          f"{rest.mean(axis=(1, 2, 3)).max():.2f}")
    assert len(inside) == 6 and inside.min() > 20 and rest.mean(axis=(1, 2, 3)).max() < 1.0
    want = frames_rgb(gen, *source.latents(0, 6), 1.0, FrameSpec.of(cfg)).numpy().astype(float)
    err = np.abs(plain - want)[:, y0:y1, x0:x1].mean()
    assert err < 4.0, err  # no mark in the trained render: its corner is the picture


@pytest.mark.parametrize("fill", ["black", "mirror", "blur"])
def test_fills_in_the_decoded_video(tiny_models, tmp_path, fill):
    """Through H.264: black borders are black, a mirrored border is the image edge reflected, a
    blurred border is darker than the image and follows it."""
    _, gen = tiny_models
    cfg = RenderConfig(fps=12, size=128, aspect="16:9", fill=fill, crf=12, preset="ultrafast")
    res, frames, _ = _render(gen, tmp_path, f"{fill}.mp4", cfg)
    assert (res.width, res.height, frames.shape[1:3]) == (228, 128, (128, 228))
    x = FrameSpec.of(cfg).x
    left, image = frames[:, :, :x - 2], frames[:, :, x + 2:x + 126]  # two columns off the seam (chroma)
    if fill == "black":
        assert left.max() <= 12 and frames[:, :, x + 130:].max() <= 12
    elif fill == "mirror":
        mirrored = frames[:, :, x:2 * x][:, :, ::-1]
        assert np.abs(frames[:, :, :x] - mirrored).mean() < 3.0
    else:
        assert left.mean() < 0.7 * image.mean()
        rows_border = frames[:, :, :x].mean(axis=(2, 3))  # (F, 128): the border's brightness by row
        rows_edge = frames[:, :, x:x + 24].mean(axis=(2, 3))  # the image's left edge, by row
        corr = np.corrcoef(rows_border.ravel(), rows_edge.ravel())[0, 1]
        print(f"blur: border {left.mean():.1f} vs image {image.mean():.1f}; row correlation {corr:.2f}")
        assert corr > 0.5


# ---- captions in the frame -------------------------------------------------------------------------

def test_captions_scale_with_the_short_side_and_wrap_to_the_width():
    from musivid.video.captions import caption_px, layout

    text = "a fairly long lyric line that has to wrap somewhere in the frame tonight"
    wide, square, tall = layout(text, 1280, 720), layout(text, 720, 720), layout(text, 720, 1280)
    assert wide.size == square.size == tall.size == caption_px(720, 720) == 45
    assert len(wide.rows) < len(square.rows) == len(tall.rows)  # wrapped to the frame's width
    assert layout(text, 1280, 720, scale=0.5).size == 22 and len(layout(text, 1280, 720, scale=0.5).rows) == 1
    assert layout(text, 256, 256).size == 256 // 16  # the square default: as before
    for pos, lo, hi in (("top", 0, 0.2), ("middle", 0.3, 0.7), ("bottom", 0.75, 1.0)):
        lay = layout("short line", 1280, 720, position=pos)
        ys = [b[1] for b in lay.boxes] + [b[3] for b in lay.boxes]
        assert lo * 720 <= min(ys) and max(ys) <= hi * 720, (pos, min(ys), max(ys))
    lay = layout("short line", 1280, 720, position="top", clear=(60, 0))  # below the mark's band
    assert min(b[1] for b in lay.boxes) >= 60 - lay.stroke


@pytest.mark.parametrize("karaoke", [False, True])
def test_a_caption_sprite_blended_is_the_caption_drawn(karaoke):
    """The sprite the encoder blends into the planes is what draw_caption draws on the frame, to
    a level or two, everywhere in the frame (nothing of the drawing falls outside the sprite's box); on
    the yuv420p planes, luma to a level too."""
    from musivid.video.captions import caption_sprite, draw_caption, layout
    from musivid.video.render import _yuv_weights, rgb_to_yuv420

    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (200, 356, 3), dtype=np.uint8)
    lay = layout("Wide fjords, 月亮 and the night", 356, 200, scale=1.5, position="middle")
    want = draw_caption(frame, lay, 2 if karaoke else None, karaoke).astype(float)
    sp = caption_sprite(lay, 356, 200, 2 if karaoke else None, karaoke)
    got = frame.astype(float)
    x0, y0, x1, y1 = sp.box
    got[y0:y1, x0:x1] = got[y0:y1, x0:x1] * (1 - sp.alpha[..., None]) + sp.premult * 255
    err = float(np.abs(got - want).max())  # PIL rounds the outline and the fill each: a level or two
    assert err <= 2.0 and (sp.x, sp.y, x1 - x0, y1 - y0) == tuple(v // 2 * 2 for v in
                                                                                        (sp.x, sp.y, x1 - x0, y1 - y0))
    planes = rgb_to_yuv420(torch.from_numpy(frame[None].copy())).numpy()[0].copy()
    m, off = _yuv_weights("bt601", "cpu")
    sp.blend_planes(planes, m.numpy(), off.numpy())
    ref = rgb_to_yuv420(torch.from_numpy(want.astype(np.uint8)[None])).numpy()[0].astype(int)
    d = np.abs(planes.astype(int) - ref)
    print("luma max difference", d[:200].max(), "chroma mean", d[200:].mean())
    assert d[:200].max() <= 1 and d[200:].mean() < 0.2  # chroma: 2x2 means of products, on pixel noise


def test_caption_track_keeps_clear_of_the_mark():
    from musivid.song.segments import Segment
    from musivid.video.captions import caption_track

    cfg = RenderConfig(captions="line", aspect="16:9", size=256, caption_position="middle", caption_size=4.0)
    text = "a very long line that wraps into many rows in a small frame"
    track = caption_track([Segment(0, text, 0.0, 1.0)], cfg, untrained=True)
    mark = untrained_mark(456, 256, "middle")
    lay = track.layout(0, 456, 256)
    assert min(b[1] for b in lay.boxes) + lay.stroke >= mark.box[3]
    assert caption_track([Segment(0, text, 0.0, 1.0)], RenderConfig(), untrained=True) is None  # no captions


# ---- settings ----------------------------------------------------------------------------------------

def test_frame_settings_from_the_command_line():
    from musivid.cli.options import run_settings

    r = run_settings(aspect="16:9", fill="mirror", caption_size=0.75, caption_position="top").render
    assert (r.aspect, r.fill, r.caption_size, r.caption_position) == ("16:9", "mirror", 0.75, "top")
    assert (run_settings(platform="shorts").render.aspect, run_settings(platform="shorts").render.size) == ("9:16", 1080)
    assert run_settings(platform="youtube", size=720).render.size == 720  # a size given with it wins
    with pytest.raises(InputError, match=r"--platform tiktok: no such platform"):
        run_settings(platform="tiktok")
    with pytest.raises(InputError, match="caption_size must be from 0.25 to 4"):
        RenderConfig(caption_size=9)
    from musivid.config import RunSettings

    s = RunSettings(render=RenderConfig(aspect="9:16", fill="black", caption_position="middle"))
    assert RunSettings.from_json(s.to_json()).render == s.render  # stored in the project as it is
    assert RunSettings.from_json({"render": {"size": 128}}).render.aspect == "1:1"  # projects from before: square


@pytest.mark.parametrize("args,word", [(["--aspect", "21:9"], "aspect"), (["--fill", "smear"], "fill"),
                                       (["--caption-position", "left"], "caption_position")])
def test_a_bad_frame_value_is_refused_in_one_line(tmp_path, args, word):
    song = write_audio(tmp_path / "s.wav", np.zeros(22050), 22050)
    r = musivid(song, "-o", tmp_path / "x.mp4", "--untrained", *args)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert f"{word} must be one of" in lines[0] and args[1] in lines[0] and f"pass e.g. {args[0]}" in lines[0]
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "x.musivid").exists()
