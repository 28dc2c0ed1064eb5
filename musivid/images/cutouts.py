"""Batched random cutouts: all N images × C cutouts in one `grid_sample`, static shapes.

A cutout is a square box of side s·R (s drawn like big-sleep: normal(0.8, 0.3) clipped to
[cutout_min, cutout_max]) at a uniform offset inside the image, optionally mirrored, resampled
bilinearly to CLIP's input size. Sampling the box with an affine grid reads the same pixel
positions as big-sleep's crop + F.interpolate(bilinear, align_corners=False); only the half-pixel
rim differs (the crop clamps at its own edge, the grid reads the neighbouring pixel).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import rng


def sample_boxes(seeds: torch.Tensor, step: int | torch.Tensor, cutouts: int, *, size_mean: float = 0.8,
                 size_std: float = 0.3, size_min: float = 0.5, size_max: float = 0.95,
                 flip: bool = True, resolution: int | None = None) -> torch.Tensor:
    """(N, C, 4) boxes [side, x0, y0, mirror] as fractions of the image side, mirror in {1, -1}.

    Deterministic in (seed, step, cutout index). With `resolution`, boxes snap to whole pixels
    (as the reference tools' integer crops do).
    """
    u = rng.uniform(seeds, step, cutouts * 5).view(-1, cutouts, 5)  # (N, C, 5)
    n = rng.box_muller(u[..., 0], u[..., 1])  # normal(size_mean, size_std) from two of the uniforms
    side = (size_mean + size_std * n).clamp(size_min, size_max)
    if resolution:
        side = torch.round(side * resolution).clamp_min(1) / resolution
    x0 = u[..., 2] * (1.0 - side)
    y0 = u[..., 3] * (1.0 - side)
    if resolution:
        x0 = torch.floor(x0 * resolution) / resolution
        y0 = torch.floor(y0 * resolution) / resolution
    mirror = torch.where(u[..., 4] < 0.5, -1.0, 1.0) if flip else torch.ones_like(side)
    return torch.stack((side, x0, y0, mirror), dim=-1)


def grids(boxes: torch.Tensor, out_size: int) -> torch.Tensor:
    """(N, C·S, S, 2) sampling grid for `boxes` (N, C, 4): the C cutouts stacked along height."""
    n, c, _ = boxes.shape
    side, x0, y0, mirror = boxes.unbind(-1)  # each (N, C)
    # pixel-centre positions within a unit box, in [-1, 1] normalised image coordinates
    t = (torch.arange(out_size, device=boxes.device, dtype=boxes.dtype) + 0.5) / out_size  # (S,)
    cx = x0[..., None] + side[..., None] * t  # (N, C, S) in [0, 1] image fractions
    cx = torch.where(mirror[..., None] < 0, x0[..., None] + side[..., None] * (1 - t), cx)
    cy = y0[..., None] + side[..., None] * t  # (N, C, S)
    gx = (cx * 2 - 1)[:, :, None, :].expand(n, c, out_size, out_size)
    gy = (cy * 2 - 1)[:, :, :, None].expand(n, c, out_size, out_size)
    return torch.stack((gx, gy), dim=-1).reshape(n, c * out_size, out_size, 2)


def stacked_cutouts(images: torch.Tensor, boxes: torch.Tensor, out_size: int) -> torch.Tensor:
    """images (N, 3, R, R), boxes (N, C, 4) → float32 cutouts (N, 3, C·S, S): each image's C
    cutouts stacked along the height, as one grid_sample call writes them (no copy)."""
    # float32 sampling positions and pixels: in bf16 a position near the far edge of a 256-px image
    # (|x| ~ 1, bf16 step 2^-8) moves by up to ~0.25 px
    g = grids(boxes.to(torch.float32), out_size)
    return F.grid_sample(images.float(), g, mode="bilinear", padding_mode="border", align_corners=False)


def make_cutouts(images: torch.Tensor, boxes: torch.Tensor, out_size: int) -> torch.Tensor:
    """images (N, 3, R, R), boxes (N, C, 4) → float32 cutouts (N·C, 3, S, S), one grid_sample call."""
    n, ch = images.shape[:2]
    c = boxes.shape[1]
    out = stacked_cutouts(images, boxes, out_size)
    # (N, 3, C·S, S) → (N, C, 3, S, S) → (N·C, 3, S, S)
    return out.view(n, ch, c, out_size, out_size).transpose(1, 2).reshape(n * c, ch, out_size, out_size)


def crop_resize_reference(image: torch.Tensor, box: torch.Tensor, out_size: int) -> torch.Tensor:
    """One cutout the way the reference tools cut it (crop, then F.interpolate). Used by the
    reference loop in benchmarks/ and by tests; musivid itself never loops over cutouts."""
    r = image.shape[-1]
    side, x0, y0, mirror = (float(v) for v in box)
    s = max(1, int(round(side * r)))
    ox = min(int(round(x0 * r)), r - s)
    oy = min(int(round(y0 * r)), r - s)
    crop = image[:, :, oy:oy + s, ox:ox + s]
    if mirror < 0:
        crop = crop.flip(-1)
    return F.interpolate(crop, (out_size, out_size), mode="bilinear", align_corners=False)
