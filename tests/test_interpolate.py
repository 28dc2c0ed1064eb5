import numpy as np
import torch

from musivid.interpolate import frame_count, frame_latents, mix_classes, plan, slerp
from musivid.schedule import Keyframe


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
