"""The reference optimization loop, written the way the field's BigGAN+CLIP tools run it.

Settings as in big-sleep (lucidrains/big-sleep) and the BigGAN+CLIP lyric-video notebooks:
one prompt at a time; fp32; the models' weights left trainable (backward computes gradients for
every frozen-in-intent weight too); BigGAN as published (spectral-norm hooks active, the last conv
computing all 128 channels and keeping 3); a Python loop cutting each cutout with a crop and
F.interpolate (bilinear); plain torch.optim.Adam, lr 0.07; sigmoid class vector with the
50x-smallest-999 sparsity penalty; big-sleep's z moment regularizer.

The loss terms are musivid's own (`latent_loss`, `clip_loss`), and the cutout boxes come from
the same per-prompt random numbers, so a test can check that musivid's batched optimizer follows
the same loss trajectory (tests/test_bench.py): the speed-up is not bought with another objective.
"""
from __future__ import annotations

import time

import torch

from . import cutouts as cut
from .optimize import STREAM_CUT, clip_loss, init_state, latent_loss


def reference_optimize(raw_biggan, clip, text: str, seed: int, cfg, steps: int | None = None, device="cpu"):
    """Optimize one prompt. `raw_biggan` is a pytorch_pretrained_biggan.BigGAN (not prepared).
    Returns (per-step losses, per-step scores, seconds)."""
    steps = cfg.steps if steps is None else steps
    raw_biggan.requires_grad_(True)  # as the reference tools leave it
    clip.model.requires_grad_(True)
    st = init_state([seed], raw_biggan.config.z_dim, raw_biggan.config.num_classes, cfg, device=device)
    z = st.z.clone().requires_grad_(True)
    cls = st.cls.clone().requires_grad_(True)
    opt = torch.optim.Adam([z, cls], lr=cfg.lr)
    text_emb = clip.encode_text([text]).float()
    seeds = st.seeds
    losses, scores = [], []
    t0 = time.perf_counter()
    for step in range(steps):
        img = (raw_biggan(z, torch.sigmoid(cls), cfg.truncation) + 1) / 2  # (1, 3, R, R)
        boxes = cut.sample_boxes(seeds, step + STREAM_CUT, cfg.cutouts, size_min=cfg.cutout_min,
                                 size_max=cfg.cutout_max, resolution=img.shape[-1])
        pieces = [cut.crop_resize_reference(img, boxes[0, c], clip.image_size) for c in range(cfg.cutouts)]
        emb = clip.encode_image(torch.cat(pieces)).view(1, cfg.cutouts, -1)
        loss, score = clip_loss(emb, text_emb)
        loss = loss + latent_loss(z, cls, cfg)
        opt.zero_grad()
        loss.sum().backward()
        opt.step()
        losses.append(float(loss.detach()))
        scores.append(float(score.detach()))
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    # drop the weight gradients (~0.6 GB for ViT-B/32 + BigGAN-deep-256) and freeze again, so
    # nothing measured later pays for them
    for m in (raw_biggan, clip.model):
        m.zero_grad(set_to_none=True)
        m.requires_grad_(False)
    return losses, scores, seconds
