"""Counter-based random numbers: value = hash(seed, stream, step, index), computed on the device.

Each (segment, variant) latent has its own seed, so the random numbers it sees (initial latents,
cutout boxes, flips) do not depend on which other latents share its batch, on micro-batching or
on the device's RNG state. This is what lets a batched run equal N separate runs, a re-rolled line
leave the others bit-identical, and the step run without a host sync or a Python loop per line.
"""
from __future__ import annotations

import hashlib
import math

import torch

_M32 = 0xFFFFFFFF


def seed_for(run_seed: int, text: str, variant: int) -> int:
    """A 31-bit seed for one (line text, variant) of a run."""
    digest = hashlib.sha256(f"{run_seed}\x00{variant}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _mix(x: torch.Tensor) -> torch.Tensor:
    # 32-bit integer finaliser (Wang/Mueller hash) in int64 arithmetic; no overflow: the constant
    # is < 2^27 and x < 2^32.
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _M32
    x = (((x >> 16) ^ x) * 0x45D9F3B) & _M32
    return (x >> 16) ^ x


def uniform(seeds: torch.Tensor, stream: int | torch.Tensor, count: int) -> torch.Tensor:
    """(N, count) uniforms in (0, 1). seeds: (N,) int64; stream: int or 0-d int64 tensor."""
    s = _mix(seeds.long() & _M32)
    s = _mix(s ^ (torch.as_tensor(stream, device=seeds.device, dtype=torch.long) & _M32))
    idx = torch.arange(count, device=seeds.device, dtype=torch.long)
    h = _mix(_mix(s[:, None] ^ idx[None, :]) + 0x9E3779B)
    return (h.to(torch.float64) + 0.5).div(2.0**32).to(torch.float32)


def box_muller(u1: torch.Tensor, u2: torch.Tensor) -> torch.Tensor:
    """Standard normals from two tensors of uniforms in (0, 1) (the cosine branch)."""
    return torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(2.0 * math.pi * u2)


def normal(seeds: torch.Tensor, stream: int, count: int) -> torch.Tensor:
    """(N, count) standard normals (Box-Muller on two uniform streams)."""
    return box_muller(uniform(seeds, 2 * stream + 1_000_003, count), uniform(seeds, 2 * stream + 1_000_004, count))
