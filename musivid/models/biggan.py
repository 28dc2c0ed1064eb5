"""Frozen BigGAN-deep (pytorch-pretrained-biggan's classes), prepared for fast optimization.

Preparation (`prepare`): spectral norm is baked into plain weights (no power iteration or sigma
computation per forward), and the final conv computes only the 3 RGB channels it keeps (the
original computes `channel_width` channels and drops all but 3: 21-51 % of the generator FLOPs).
The forward below also accepts one z per generator block (big-sleep's per-layer latents).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


def tiny_config():
    """A small BigGANConfig of the same classes: 64x64 output, channel width 4."""
    from pytorch_pretrained_biggan import BigGANConfig

    return BigGANConfig(
        output_dim=64, z_dim=16, class_embed_dim=16, channel_width=4, num_classes=1000,
        layers=[(True, 16, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2), (True, 2, 1)],
        attention_layer_position=2, eps=1e-4, n_stats=51,
    )


def full_config(resolution: int):
    """The published BigGAN-deep configs (importable without TensorFlow)."""
    from pytorch_pretrained_biggan import convert_tf_to_pytorch as c

    return {128: c.BigGAN128, 256: c.BigGAN256, 512: c.BigGAN512}[resolution]


def new_model(config) -> nn.Module:
    """A BigGAN with freshly initialised weights that produce finite images.

    Fresh spectral-norm vectors are random (sigma wrong, outputs NaN in eval mode: DESIGN.md §6)
    and the unconditional final batch norm's affine parameters are uninitialised memory.
    """
    from pytorch_pretrained_biggan import BigGAN
    from pytorch_pretrained_biggan.model import BigGANBatchNorm

    model = BigGAN(config)
    for m in model.modules():
        if isinstance(m, BigGANBatchNorm) and not m.conditional:
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    with torch.no_grad():
        for module, hook in _sn_hooks(model):
            for _ in range(30):
                hook.compute_weight(module, do_power_iteration=True)
    return model


def _sn_hooks(model: nn.Module):
    from torch.nn.utils.spectral_norm import SpectralNorm

    for module in model.modules():
        for hook in list(module._forward_pre_hooks.values()):
            if isinstance(hook, SpectralNorm):
                yield module, hook


def prepare(model: nn.Module) -> nn.Module:
    """Bake spectral norm into the weights, keep only RGB in the last conv, freeze, eval."""
    from torch.nn.utils import remove_spectral_norm

    model.eval()
    with torch.no_grad():
        for module, hook in list(_sn_hooks(model)):
            remove_spectral_norm(module, name=hook.name)
        gen = model.generator
        old = gen.conv_to_rgb
        if old.out_channels != 3:
            new = nn.Conv2d(old.in_channels, 3, old.kernel_size, old.stride, old.padding,
                            bias=old.bias is not None, device=old.weight.device, dtype=old.weight.dtype)
            new.weight.copy_(old.weight[:3])
            if old.bias is not None:
                new.bias.copy_(old.bias[:3])
            gen.conv_to_rgb = new
    return model.requires_grad_(False)


@dataclass
class Generator:
    """A frozen, prepared BigGAN-deep: (z, class vector) → images in [0, 1]."""

    model: nn.Module
    name: str
    untrained: bool

    def __post_init__(self) -> None:
        from pytorch_pretrained_biggan.model import GenBlock

        cfg = self.model.config
        self.z_dim: int = cfg.z_dim
        self.num_classes: int = cfg.num_classes
        self.resolution: int = cfg.output_dim
        self.n_blocks = sum(isinstance(l, GenBlock) for l in self.model.generator.layers)
        self.n_z_rows = 1 + self.n_blocks  # rows of per-layer z: gen_z + one per block

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def __call__(self, z: torch.Tensor, classes: torch.Tensor, truncation: float) -> torch.Tensor:
        """z: (N, z_dim) shared or (N, n_z_rows, z_dim) per layer; classes: (N, num_classes)
        class vector (probabilities). Returns (N, 3, R, R) in [0, 1]."""
        from pytorch_pretrained_biggan.model import GenBlock

        g = self.model.generator
        embed = self.model.embeddings(classes)  # (N, z_dim)
        if z.dim() == 2:
            conds = [torch.cat((z, embed), dim=1)] * self.n_z_rows
        else:
            conds = [torch.cat((z[:, i], embed), dim=1) for i in range(self.n_z_rows)]
        x = g.gen_z(conds[0])
        x = x.view(-1, 4, 4, 16 * g.config.channel_width).permute(0, 3, 1, 2).contiguous()
        k = 1
        for layer in g.layers:
            if isinstance(layer, GenBlock):
                x = layer(x, conds[k], truncation)
                k += 1
            else:
                x = layer(x)
        x = g.relu(g.bn(x, truncation))
        x = g.conv_to_rgb(x)[:, :3]
        return (torch.tanh(x) + 1) * 0.5

    @torch.no_grad()
    def images_uint8(self, z: torch.Tensor, classes: torch.Tensor, truncation: float, size: int | None = None,
                     amp_dtype: torch.dtype | None = None):
        """Frames for display: (N, size, size, 3) uint8 numpy array, resized on the device (bicubic,
        antialiased when shrinking) and quantised there, so only bytes cross to the host."""
        import torch.nn.functional as F

        dev = self.device
        with torch.autocast(dev.type, dtype=amp_dtype or torch.bfloat16, enabled=amp_dtype is not None):
            img = self(z.to(dev, self.dtype), classes.to(dev, self.dtype), truncation)  # (N, 3, R, R) in [0, 1]
        img = img.float()
        if size is not None and img.shape[-1] != size:
            img = F.interpolate(img, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
        img = (img.clamp(0, 1) * 255).round().to(torch.uint8)
        return img.permute(0, 2, 3, 1).contiguous().cpu().numpy()
