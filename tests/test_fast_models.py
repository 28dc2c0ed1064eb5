"""The fast forwards (FastBigGAN, FastViT) against the original pytorch-pretrained-biggan and
open_clip modules on the same random weights: outputs and input gradients in float32 (tolerance
1e-5 absolute on [0, 1] images / unit embeddings, 1e-4 relative on gradients), and in bfloat16 no
further from float32 than the original modules under bf16 autocast (within 1.5x, +1e-3)."""
import copy

import pytest
import torch

from musivid.images import cutouts as cut
from musivid.images.models import biggan as bg
from musivid.images.models import clip as cm


def _biggan(config, seed=0):
    torch.manual_seed(seed)
    raw = bg.new_model(config).eval()
    with torch.no_grad():  # real statistics differ per truncation: make the interpolation matter
        for m in raw.modules():
            if hasattr(m, "running_means"):
                m.running_means.normal_(0, 0.5)
                m.running_vars.uniform_(0.5, 2.0)
            if type(m).__name__ == "SelfAttn":
                m.gamma.fill_(0.7)  # 0 at init would hide the attention branch
    return raw, bg.prepare(copy.deepcopy(raw))


def _inputs(n, z_dim, seed=1):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, z_dim, generator=g)
    c = torch.softmax(3 * torch.randn(n, 1000, generator=g), 1)
    return z, c


def _grads(f, *xs):
    xs = [x.clone().requires_grad_(True) for x in xs]
    out = f(*xs)
    w = torch.linspace(-1, 1, out.numel()).view(out.shape)  # a loss that weights every output differently
    (out * w).sum().backward()
    return out.detach(), [x.grad for x in xs]


def _close(a, b, rel):
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12)) <= rel


@pytest.mark.parametrize("truncation", [1.0, 0.4])
def test_fast_biggan_equals_the_original(truncation):
    raw, prep = _biggan(bg.tiny_config())
    fast = bg.FastBigGAN(prep)
    z, c = _inputs(3, 16)
    ref, (gz_ref, gc_ref) = _grads(lambda z, c: (raw(z, c, truncation) + 1) / 2, z, c)
    out, (gz, gc) = _grads(lambda z, c: fast(z, c, truncation), z, c)
    print(f"max |fast - original| {float((out - ref).abs().max()):.2e}")
    assert out.dtype == torch.float32 and torch.allclose(out, ref, atol=1e-5)
    assert _close(gz, gz_ref, 1e-4) and _close(gc, gc_ref, 1e-4)


def _per_layer_reference(prep, z, c, truncation):
    """One z per block, written with the original modules (the old Generator.__call__)."""
    from pytorch_pretrained_biggan.model import GenBlock

    g = prep.generator
    embed = prep.embeddings(c)
    conds = [torch.cat((z[:, i], embed), dim=1) for i in range(z.shape[1])]
    x = g.gen_z(conds[0]).view(-1, 4, 4, 16 * g.config.channel_width).permute(0, 3, 1, 2)
    k = 1
    for layer in g.layers:
        if isinstance(layer, GenBlock):
            x = layer(x, conds[k], truncation)
            k += 1
        else:
            x = layer(x)
    x = g.conv_to_rgb(g.relu(g.bn(x, truncation)))[:, :3]
    return (torch.tanh(x) + 1) / 2


def test_fast_biggan_per_layer_z_equals_the_original():
    raw, prep = _biggan(bg.tiny_config())
    gen = bg.Generator(prep, "t", True)
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2, gen.n_z_rows, 16, generator=g)
    _, c = _inputs(2, 16)
    ref, (gz_ref,) = _grads(lambda z: _per_layer_reference(prep, z, c, 0.7), z)
    out, (gz,) = _grads(lambda z: gen(z, c, 0.7), z)
    assert torch.allclose(out, ref, atol=1e-5) and _close(gz, gz_ref, 1e-4)


def _tiny_clip():
    torch.manual_seed(0)
    model, tok, size = cm.build(None, untrained=True)
    return cm.Clip(model, tok, size, "tiny", True)


def test_fast_vit_equals_open_clip():
    clip = _tiny_clip()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    ref, (g_ref,) = _grads(clip.encode_image, x)
    out, (g,) = _grads(clip.embed_images, x)
    print(f"max |fast - open_clip| {float((out - ref).abs().max()):.2e}")
    assert torch.allclose(out, ref, atol=1e-5) and _close(g, g_ref, 1e-4)


def test_stacked_cutouts_give_the_same_embeddings():
    """The optimizer feeds each image's cutouts stacked along the height (no reshaping copy)."""
    clip = _tiny_clip()
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    boxes = cut.sample_boxes(torch.tensor([5, 6]), 0, 3, resolution=64)
    stacked = cut.stacked_cutouts(images, boxes, 32)
    assert stacked.shape == (2, 3, 3 * 32, 32) and stacked.dtype == torch.float32
    a = clip.embed_images(stacked, stacked=3)
    b = clip.embed_images(cut.make_cutouts(images, boxes, 32))
    assert torch.allclose(a, b, atol=1e-6)


def test_bf16_fast_paths_are_as_close_to_fp32_as_autocast():
    """Weights stored in bf16 (the CUDA path) vs the originals under bf16 autocast, both against
    float32: the fast path must not be less precise than what it replaces."""
    raw, prep = _biggan(bg.tiny_config())
    z, c = _inputs(4, 16)
    with torch.no_grad():
        ref = (raw(z, c, 1.0) + 1) / 2
        with torch.autocast("cpu", dtype=torch.bfloat16):
            amp = (raw(z, c, 1.0).float() + 1) / 2
        fast = bg.FastBigGAN(prep, torch.bfloat16)(z, c, 1.0)
    e_fast, e_amp = float((fast - ref).abs().max()), float((amp - ref).abs().max())
    print(f"BigGAN bf16: fast {e_fast:.2e}, autocast {e_amp:.2e}")
    assert e_fast <= 1.5 * e_amp + 1e-3
    clip = _tiny_clip()
    x = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = clip.encode_image(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            amp = clip.encode_image(x)
        fast = clip.embed_images(x, torch.bfloat16)
    e_fast, e_amp = float((fast - ref).abs().max()), float((amp - ref).abs().max())
    print(f"CLIP bf16: fast {e_fast:.2e}, autocast {e_amp:.2e}")
    assert fast.dtype == torch.float32 and e_fast <= 1.5 * e_amp + 1e-3
    assert next(iter(clip.fast(torch.bfloat16).buffers())).dtype == torch.bfloat16  # stored in bf16


@pytest.mark.slow
def test_full_size_fast_models_equal_the_originals():
    """BigGAN-deep-256 (one image) and ViT-B/32 (two images), random weights, float32, CPU."""
    raw, prep = _biggan(bg.full_config(256))
    z, c = _inputs(1, 128)
    with torch.no_grad():
        ref = (raw(z, c, 1.0) + 1) / 2
        out = bg.FastBigGAN(prep)(z, c, 1.0)
    print(f"BigGAN-deep-256: max diff {float((out - ref).abs().max()):.2e}")
    assert torch.allclose(out, ref, atol=1e-4)
    torch.manual_seed(0)
    model, tok, size = cm.build("ViT-B-32", untrained=False)
    clip = cm.Clip(model, tok, size, "ViT-B-32 (random)", True)
    x = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        ref, out = clip.encode_image(x), clip.embed_images(x)
    print(f"ViT-B/32: max diff {float((out - ref).abs().max()):.2e}")
    assert torch.allclose(out, ref, atol=1e-5)


def _old_step(gen, clip, cfg, z, cls, text, seeds, step, amp=None):
    """The step as it was before the fast forwards (commit a1f2591): the original modules under
    autocast, cutouts reshaped, open_clip's encode_image."""
    from musivid.images.optimize import STREAM_CUT, clip_loss, latent_loss

    with torch.autocast("cpu", dtype=amp or torch.bfloat16, enabled=amp is not None):
        if z.dim() == 2:
            img = (gen.model(z, torch.sigmoid(cls), cfg.truncation) + 1) / 2
        boxes = cut.sample_boxes(seeds, step + STREAM_CUT, cfg.cutouts, size_min=cfg.cutout_min,
                                 size_max=cfg.cutout_max, resolution=img.shape[-1])
        pieces = cut.make_cutouts(img, boxes, clip.image_size)
        emb = clip.encode_image(pieces).view(z.shape[0], cfg.cutouts, -1)
    loss, _ = clip_loss(emb.float(), text)
    return loss + latent_loss(z.float(), cls.float(), cfg)


def _trajectory(step_fn, z0, c0, steps=6):
    z, c = z0.clone().requires_grad_(True), c0.clone().requires_grad_(True)
    opt = torch.optim.Adam([z, c], lr=0.07)
    out = []
    for s in range(steps):
        loss = step_fn(z, c, torch.tensor(s))
        out.append(loss.detach())
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
    return torch.stack(out)  # (steps, N)


def test_new_step_follows_the_old_step():
    """The optimizer step with the fast forwards against the step as it was (original modules),
    same latents, seeds and Adam, tiny random models on the CPU: fp32 losses within 1e-4
    (relative) at every step; bf16 (weights in bf16) within 0.5 % of fp32 at every step, as the
    old bf16 autocast path is (tests/test_optimize.py's tolerance)."""
    from musivid.config import OptimizeConfig
    from musivid.images.optimize import Objective, init_state, text_embeddings
    from musivid.rng import seed_for

    raw, prep = _biggan(bg.tiny_config())
    gen = bg.Generator(prep, "t", True)
    clip = _tiny_clip()
    cfg = OptimizeConfig(cutouts=8)
    texts = ["a red fox in the snow", "a lighthouse in a storm", "fireworks over a city"]
    seeds = [seed_for(0, t, 0) for t in texts]
    st = init_state(seeds, gen.z_dim, gen.num_classes, cfg)
    text = text_embeddings(clip, texts)
    new = Objective(gen, clip, cfg)
    new16 = Objective(gen, clip, cfg, torch.bfloat16)
    old = _trajectory(lambda z, c, s: _old_step(gen, clip, cfg, z, c, text, st.seeds, s), st.z, st.cls)
    old16 = _trajectory(lambda z, c, s: _old_step(gen, clip, cfg, z, c, text, st.seeds, s, torch.bfloat16), st.z, st.cls)
    fp32 = _trajectory(lambda z, c, s: new(z, c, text, st.seeds, s)[0], st.z, st.cls)
    bf16 = _trajectory(lambda z, c, s: new16(z, c, text, st.seeds, s)[0], st.z, st.cls)
    rel = ((fp32 - old).abs() / old.abs()).max()
    rel16 = ((bf16 - old).abs() / old.abs()).max()
    rel16_old = ((old16 - old).abs() / old.abs()).max()
    print(f"fp32 new vs old: {rel:.2e}; bf16 new vs fp32 old: {rel16:.2e} (old bf16 autocast: {rel16_old:.2e})")
    assert rel < 1e-4
    assert rel16 < 5e-3
