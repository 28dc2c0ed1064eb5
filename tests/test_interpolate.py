import dataclasses

import numpy as np
import pytest
import torch

from musivid.video.interpolate import frame_count, frame_latents, mix_classes, plan, slerp
from musivid.video.motion import Keyframe


def test_slerp_endpoints_and_norm():
    a, b = torch.randn(3, 128), torch.randn(3, 128)
    assert torch.allclose(slerp(a, b, torch.zeros(3)), a, atol=1e-5)
    assert torch.allclose(slerp(a, b, torch.ones(3)), b, atol=1e-5)
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    mid = slerp(a, b, torch.full((3,), 0.5))
    assert torch.allclose(mid.norm(dim=-1), torch.ones(3), atol=1e-5)  # stays on the sphere
    assert torch.allclose(slerp(a, a, torch.full((3,), 0.3)), a, atol=1e-5)  # parallel: no NaN


def test_class_mix_is_the_convex_mix_and_keeps_a_distribution():
    a = torch.softmax(torch.randn(2, 1000), -1)
    b = torch.softmax(torch.randn(2, 1000), -1)
    u = torch.tensor([0.25, 0.75])
    m = mix_classes(a, b, u)
    assert torch.allclose(m, (1 - u[:, None]) * a + u[:, None] * b)
    assert torch.allclose(m.sum(-1), torch.ones(2))  # probabilities still sum to 1
    assert torch.equal(mix_classes(a, b, torch.zeros(2)), a) and torch.equal(mix_classes(a, b, torch.ones(2)), b)
    # each class weight moves monotonically from a to b as u grows
    us = torch.linspace(0, 1, 11)
    path = torch.stack([mix_classes(a[:1], b[:1], x.view(1))[0] for x in us])  # (11, 1000)
    d = path.diff(dim=0) * torch.sign(b[0] - a[0])
    assert torch.all(d >= -1e-7)


def test_frame_count_is_exact_for_the_whole_song():
    assert frame_count(10.0, 24) == 240
    assert frame_count(10.01, 29.97) == round(10.01 * 29.97)
    assert frame_count(0.01, 24) == 1


def test_plan_holds_before_first_and_after_last_keyframe():
    kfs = [Keyframe(0, 1.0, True), Keyframe(1, 2.0, True)]
    p = plan(kfs, 80, 24.0, np.zeros(80), reactivity=0.0, ease=False)
    t = np.arange(80) / 24
    assert np.all(p.u[t < 1.0] == 0) and np.all(p.left[t < 1.0] == 0)
    assert np.all(p.left[t >= 2.0] == 1) and np.all(p.u[t >= 2.0] == 0)
    mid = (t >= 1.0) & (t < 2.0)
    assert np.allclose(p.u[mid], t[mid] - 1.0)
    kz, kc = torch.randn(2, 16), torch.rand(2, 1000)
    z, c = frame_latents(p, slice(0, 80), kz, kc)
    assert z.shape == (80, 16) and c.shape == (80, 1000)
    assert torch.allclose(z[0], kz[0]) and torch.allclose(z[-1], kz[1])
    # per-layer z keeps its shape
    z3, _ = frame_latents(p, slice(10, 30), torch.randn(2, 6, 16), kc)
    assert z3.shape == (20, 6, 16)


# ---- the walk (issue 17): motion everywhere, back on each keyframe, on the beat, deterministic ------

FPS = 24.0


def music(n: int, period: int = 12, quiet: tuple[int, int] | None = None):
    """A percussive envelope with a hit every `period` frames and a loudness curve (silence in `quiet`)."""
    env = np.zeros(n, np.float32)
    env[::period] = 1.0
    loud = np.ones(n, np.float32)
    if quiet:
        env[quiet[0]:quiet[1]] = 0.0
        loud[quiet[0]:quiet[1]] = 0.0
    return env, loud


def source(cfg=None, title=False, n=720, times=(2.0, 10.0, 20.0), zshape=(16,), seed=0, quiet=None):
    from musivid.config import ScheduleConfig
    from musivid.video.interpolate import FrameLatents, song_plan

    cfg = cfg or ScheduleConfig()
    kfs = [Keyframe(i, t, True) for i, t in enumerate(times)]
    env, loud = music(n, quiet=quiet)
    p = song_plan(kfs, n, FPS, env, loud, 120.0, cfg, title=title)
    g = torch.Generator().manual_seed(1)
    kz = torch.randn(len(kfs) + 1, *zshape, generator=g)
    kc = torch.softmax(torch.randn(len(kfs) + 1, 1000, generator=g) * 3, -1)
    return FrameLatents(p, kz, kc, env, 0.0, seed)


@pytest.mark.parametrize("title,zshape", [(False, (16,)), (True, (16,)), (False, (3, 16))])
def test_the_walk_returns_to_every_keyframe_exactly(title, zshape):
    src = source(title=title, zshape=zshape)
    p = src.plan
    assert list(p.key_frames) == [48, 240, 480] and p.walk is not None
    rows = [(int(f), k) for k, f in enumerate(p.key_frames)] + ([(0, 3)] if title else [])
    for f, k in rows:
        z, c = src.latents(f, f + 1)
        assert torch.equal(z[0], src.kz[k]) and torch.equal(c[0], src.kc[k]), (f, k)
        assert p.walk[f] == 0.0
    # and everywhere else it moves: away from the glide, on the same sphere
    z, _ = src.latents(0, len(p))
    glide, _ = frame_latents(dataclasses.replace(p, walk=None, pace=None), slice(0, len(p)), src.kz, src.kc)
    assert torch.allclose(z.norm(dim=-1), glide.norm(dim=-1), rtol=1e-5)
    cos = (z * glide).sum(-1) / (z.norm(dim=-1) * glide.norm(dim=-1))
    angle = torch.acos(cos.clamp(-1, 1)).reshape(len(p), -1).max(dim=1).values.numpy()
    between = (np.arange(len(p)) > 60) & (np.arange(len(p)) < 228)  # well inside the first break
    print(f"walk angle between lines 1 and 2: median {np.median(angle[between]):.2f} rad")
    assert np.all(angle[between] > 0.02) and np.all(angle <= np.pi / 2 + 1e-5)


def test_any_excerpt_gives_the_same_latents_as_the_whole_song():
    src = source(title=True, zshape=(3, 16))
    z, c = src.latents(0, len(src))
    for lo, hi in [(0, 1), (5, 13), (47, 49), (239, 481), (700, 720), (719, 720), (100, 108)]:
        zz, cc = src.latents(lo, hi)
        assert torch.equal(zz, z[lo:hi]) and torch.equal(cc, c[lo:hi]), (lo, hi)


def test_the_walk_is_the_same_from_the_same_seed_and_differs_from_another():
    a, _ = source(seed=0).latents(100, 200)
    b, _ = source(seed=0).latents(100, 200)
    c, _ = source(seed=1).latents(100, 200)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_reactivity_zero_is_the_pure_glide_of_before():
    """No walk, no title, no intro drift: the plan and the latents are the plain glide's."""
    from musivid.config import ScheduleConfig

    src = source(ScheduleConfig(reactivity=0.0), title=False)
    assert src.plan.walk is None and src.plan.pace is None
    kfs = [Keyframe(i, t, True) for i, t in enumerate((2.0, 10.0, 20.0))]
    old = plan(kfs, 720, FPS, music(720)[0], reactivity=0.0)
    assert np.array_equal(old.u, src.plan.u) and np.array_equal(old.left, src.plan.left)
    z, _ = src.latents(0, 720)
    assert torch.equal(z[:49], src.kz[0].expand(49, -1))  # the first image holds until its keyframe
    assert torch.equal(z[480:], src.kz[2].expand(240, -1))  # and the last one after


def test_intro_and_outro_options():
    """drift: the intro starts far from the first line's image and comes back; the outro wanders
    ever further. none: both hold the image still."""
    from musivid.config import ScheduleConfig

    def angle_to(z, ref):
        return torch.acos(((z * ref).sum(-1) / (z.norm(dim=-1) * ref.norm())).clamp(-1, 1)).numpy()

    src = source(ScheduleConfig(intro="drift", outro="drift"), times=(6.0, 10.0, 14.0))
    z, _ = src.latents(0, 720)
    intro, outro = angle_to(z[:145], src.kz[0]), angle_to(z[336:], src.kz[2])  # key frames 144 and 336
    print(f"drift: intro angle at 0 {intro[0]:.2f} -> 0 at the line; outro {outro[24]:.2f} -> {outro[-1]:.2f}")
    assert intro[0] > 0.5 and intro[-1] < 1e-3 and intro[-12:].mean() < 0.5 * intro[:12].mean()
    assert outro[-24:].mean() > 2 * outro[12:36].mean()
    still = source(ScheduleConfig(intro="none", outro="none"), times=(6.0, 10.0, 14.0))
    z, _ = still.latents(0, 720)
    assert torch.equal(z[:145], still.kz[0].expand(145, -1)) and torch.equal(z[336:], still.kz[2].expand(384, -1))
    assert still.plan.walk[150:330].max() > 0  # the breaks between lines still walk


def test_the_walk_moves_on_the_hits():
    """Latent change per frame is larger on the frames with a hit than between them."""
    src = source()
    z, _ = src.latents(0, 720)
    d = (z[1:] - z[:-1]).norm(dim=-1).numpy()  # d[i-1]: frame i against frame i-1
    hit = np.zeros(720, bool)
    hit[::12] = True
    inside = np.zeros(720, bool)
    inside[60:470] = True
    on, off = d[(hit & inside)[1:]].mean(), d[(~hit & inside)[1:]].mean()
    print(f"latent change on hits {on:.3f}, between {off:.3f}")
    assert on > 3 * off


def test_the_walk_is_smaller_in_silence_and_grows_with_energy():
    from musivid.config import ScheduleConfig

    quiet = source(quiet=(250, 450)).plan.walk
    assert quiet[300:400].max() < 0.6 * quiet[100:200].max()
    flat = source(ScheduleConfig(energy=0.0), quiet=(250, 450)).plan.walk
    assert np.allclose(flat[300:400].max(), flat[100:200].max())
    assert np.all(source(ScheduleConfig(energy=1.0), quiet=(250, 450)).plan.walk[300:400] == 0)
