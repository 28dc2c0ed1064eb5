"""Frozen CLIP (open_clip): text and image embeddings, images given in [0, 1]."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from .compat import import_open_clip

OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)

# A tiny config of the same classes as ViT-B-32 for tests and --untrained previews: the real
# tokenizer (same vocab), a 2-layer ViT on 32x32 images, 32-d embeddings.
TINY_CLIP_CFG = dict(
    embed_dim=32,
    vision_cfg=dict(image_size=32, layers=2, width=32, head_width=16, patch_size=8),
    text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2),
)


@dataclass
class Clip:
    """A frozen CLIP model. `encode_image` takes (B, 3, S, S) in [0, 1] with S == image_size."""

    model: torch.nn.Module
    tokenizer: object
    image_size: int
    name: str
    untrained: bool

    def __post_init__(self) -> None:
        self.model.eval().requires_grad_(False)
        p = next(self.model.parameters())
        self.mean = torch.tensor(OPENAI_MEAN, device=p.device).view(1, 3, 1, 1)
        self.std = torch.tensor(OPENAI_STD, device=p.device).view(1, 3, 1, 1)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """(N, D) unit-norm text embeddings, float32."""
        tokens = self.tokenizer(list(texts)).to(self.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        """(B, D) unit-norm image embeddings; differentiable w.r.t. `images`."""
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        return F.normalize(self.model.encode_image(x).float(), dim=-1)


def build(arch: str | None, *, untrained: bool, quick_gelu: bool = True,
          device: str | torch.device = "cpu") -> tuple[torch.nn.Module, object, int]:
    """An open_clip model (random weights) and its tokenizer; weights are loaded by the caller.
    `arch` "musivid-tiny" (or None with untrained) is the tiny test config. On device "meta" the
    model has shapes and no weights (the cost census)."""
    open_clip = import_open_clip()
    if arch == "musivid-tiny" or (untrained and arch is None):
        from open_clip.model import CLIP

        with torch.device(device):
            model = CLIP(**TINY_CLIP_CFG, quick_gelu=True)
        tokenizer = open_clip.get_tokenizer("ViT-B-32")
        return model, tokenizer, TINY_CLIP_CFG["vision_cfg"]["image_size"]
    assert arch is not None
    model = open_clip.create_model(arch, pretrained=None, force_quick_gelu=quick_gelu, device=device)
    tokenizer = open_clip.get_tokenizer(arch)
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    return model, tokenizer, int(size)
