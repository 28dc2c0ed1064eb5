"""Frozen BigGAN-deep (pytorch-pretrained-biggan's classes), prepared for fast optimization.

Preparation (`prepare`): spectral norm is baked into plain weights (no power iteration or sigma
computation per forward), and the final conv computes only the 3 RGB channels it keeps (the
original computes `channel_width` channels and drops all but 3: 21-51 % of the generator FLOPs).

`FastBigGAN` is the forward the optimizer and the renderer run, built once per dtype from a
prepared model (equal to it within rounding: tests/test_fast_models.py). Its weights are stored in
the compute dtype (bf16 on CUDA: no per-forward casts) and its activations stay in it:
- batch norm with frozen statistics is a per-sample scale and shift, computed once per forward for
  all 48 conditional BNs with ONE matrix product (the original: 96 small ones), then applied with
  the ReLU as addcmul + relu_ in the activation dtype (the original promotes to fp32 on the fp32
  running statistics and runs sub/div/mul/add/relu there);
- self-attention is one scaled_dot_product_attention call (a fused kernel on CUDA: no 4096x1024
  attention map in memory); its softmax temperature 1 and gamma are folded into weights;
- the generator's first linear layer writes channels-first order directly (no permute copy), and
  (tanh(x) + 1) / 2 = sigmoid(2x) folds into the RGB conv;
- one z per generator block (big-sleep's per-layer latents) is accepted.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


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


class FastBigGAN(nn.Module):
    """The generator of a prepared BigGAN-deep, rewritten for speed (see the module docstring).
    forward(z (N, z_dim) or (N, rows, z_dim), class vectors (N, classes), truncation) -> (N, 3, R, R)
    float32 images in [0, 1]."""

    def __init__(self, model: nn.Module, dtype: torch.dtype = torch.float32,
                 memory_format: torch.memory_format = torch.contiguous_format) -> None:
        super().__init__()
        from pytorch_pretrained_biggan.model import GenBlock

        cfg, g = model.config, model.generator
        self.dtype, self.memory_format = dtype, memory_format
        self.step_size = 1.0 / (cfg.n_stats - 1)  # as BigGANBatchNorm interpolates its statistics
        self.eps = g.bn.eps

        def f32(t: torch.Tensor) -> torch.Tensor:
            return t.detach().float()

        def conv(old: nn.Conv2d, weight=None, bias=None) -> nn.Conv2d:
            new = copy.deepcopy(old)
            with torch.no_grad():
                if weight is not None:
                    new.weight = nn.Parameter(weight)
                if bias is not None:
                    new.bias = nn.Parameter(bias)
            return new.to(dtype=dtype, memory_format=memory_format).requires_grad_(False)

        self.register_buffer("embed", f32(model.embeddings.weight).to(dtype))  # (z_dim, classes)
        c16 = 16 * cfg.channel_width
        w = f32(g.gen_z.weight)  # rows in (h, w, c) order; reorder to (c, h, w): no permute per forward
        self.register_buffer("gen_w", w.view(4, 4, c16, -1).permute(2, 0, 1, 3).reshape(w.shape).to(dtype))
        self.register_buffer("gen_b", f32(g.gen_z.bias).view(4, 4, c16).permute(2, 0, 1).reshape(-1).to(dtype))
        self.plan: list[tuple] = []  # ("block", up_sample, drop_channels, first conv index) | ("attn",)
        self.convs = nn.ModuleList()
        self.bn_sizes: list[int] = []  # channels of each conditional BN, in order
        scales, offsets, means, variances, rows = [], [], [], [], []
        k = 1
        for layer in g.layers:
            if not isinstance(layer, GenBlock):
                w_q = f32(layer.snconv1x1_theta.weight)
                w_kv = torch.cat([f32(layer.snconv1x1_phi.weight), f32(layer.snconv1x1_g.weight)])
                self.attn_q = conv(layer.snconv1x1_theta)
                self.attn_kv = conv(layer.snconv1x1_phi, w_kv)
                self.attn_out = conv(layer.snconv1x1_o_conv, f32(layer.snconv1x1_o_conv.weight) * f32(layer.gamma))
                self.attn_c8, self.attn_c2 = w_q.shape[0], layer.snconv1x1_g.weight.shape[0]
                self.plan.append(("attn",))
                continue
            for bn in (layer.bn_0, layer.bn_1, layer.bn_2, layer.bn_3):
                c = bn.num_features
                scales.append(f32(bn.scale.weight))
                offsets.append(f32(bn.offset.weight))
                means.append(f32(bn.running_means))
                variances.append(f32(bn.running_vars))
                rows += [k] * c
                self.bn_sizes.append(c)
            first = len(self.convs)
            self.convs.extend(conv(c) for c in (layer.conv_0, layer.conv_1, layer.conv_2, layer.conv_3))
            self.plan.append(("block", layer.up_sample, layer.drop_channels, first))
            k += 1
        self.channels = sum(self.bn_sizes)
        # all conditional BNs' scale and offset projections as one (2 x channels, cond) matrix
        self.register_buffer("bn_w", torch.cat(scales + offsets).to(dtype))
        self.register_buffer("bn_mean", torch.cat(means, 1))  # (n_stats, channels) fp32
        self.register_buffer("bn_var", torch.cat(variances, 1))
        self.register_buffer("bn_row", torch.tensor(rows + rows, dtype=torch.long, device=w.device).view(1, 1, -1))
        fb = g.bn
        self.register_buffer("out_mean", f32(fb.running_means))
        self.register_buffer("out_var", f32(fb.running_vars))
        self.register_buffer("out_w", f32(fb.weight))
        self.register_buffer("out_b", f32(fb.bias))
        rgb = g.conv_to_rgb  # (tanh(x) + 1) / 2 == sigmoid(2x): the 2 goes into the weights
        self.to_rgb = conv(rgb, 2 * f32(rgb.weight)[:3], 2 * f32(rgb.bias)[:3] if rgb.bias is not None else None)
        self.requires_grad_(False)

    def _stats(self, mean: torch.Tensor, var: torch.Tensor, truncation: float):
        """Running statistics at this truncation, interpolated exactly as BigGANBatchNorm does."""
        coef, start = math.modf(truncation / self.step_size)
        start = int(start)
        if coef != 0.0:
            return (mean[start] * coef + mean[start + 1] * (1 - coef),
                    var[start] * coef + var[start + 1] * (1 - coef))
        return mean[start], var[start]

    def forward(self, z: torch.Tensor, classes: torch.Tensor, truncation: float) -> torch.Tensor:
        dt, n = self.dtype, z.shape[0]
        embed = F.linear(classes.to(dt), self.embed)  # (N, z_dim)
        zz = z.to(dt)
        if zz.dim() == 2:
            cond = torch.cat((zz, embed), 1)  # (N, 2 z_dim), the same for every block
            so = F.linear(cond, self.bn_w)  # (N, 2 channels): every BN's scale and offset at once
            first = cond
        else:  # per-layer z: row k conditions block k; each column takes its block's row
            cond = torch.cat((zz, embed[:, None].expand(-1, zz.shape[1], -1)), 2)  # (N, rows, 2 z_dim)
            so = F.linear(cond, self.bn_w).gather(1, self.bn_row.expand(n, 1, -1)).squeeze(1)
            first = cond[:, 0]
        mean, var = self._stats(self.bn_mean, self.bn_var, truncation)  # (channels,)
        inv = torch.rsqrt(var + self.eps)
        s, o = so.float().split(self.channels, 1)
        scale = (1 + s) * inv  # (N, channels): (x - mean) / std * (1 + s) + o == x * scale + shift
        shift = o - mean * scale
        # one piece per BN by split (its backward is one cat, not a zero-filled slice per BN)
        scales = iter(scale.to(dt)[:, :, None, None].split(self.bn_sizes, 1))
        shifts = iter(shift.to(dt)[:, :, None, None].split(self.bn_sizes, 1))
        x = F.linear(first, self.gen_w, self.gen_b).view(n, -1, 4, 4).contiguous(memory_format=self.memory_format)
        for step in self.plan:
            if step[0] == "attn":
                x = self._attention(x)
                continue
            _, up, drop, c0 = step
            h = x
            for j in range(4):
                h = torch.addcmul(next(shifts), h, next(scales)).relu_()
                if j == 1 and up:
                    h = F.interpolate(h, scale_factor=2, mode="nearest")
                h = self.convs[c0 + j](h)
            x0 = x[:, : x.shape[1] // 2] if drop else x
            if up:  # h + nearest-upsampled x0 as one broadcast add (no upsampled copy of x0)
                n, c, hh, ww = x0.shape
                x = (h.view(n, c, hh, 2, ww, 2) + x0[:, :, :, None, :, None]).view(h.shape)
            else:
                x = h + x0
        mean, var = self._stats(self.out_mean, self.out_var, truncation)
        scale = self.out_w * torch.rsqrt(var + self.eps)
        shift = (self.out_b - mean * scale).to(dt)[:, None, None]
        x = torch.addcmul(shift, x, scale.to(dt)[:, None, None]).relu_()
        return torch.sigmoid(self.to_rgb(x).float())  # (N, 3, R, R) in [0, 1]

    def _attention(self, x: torch.Tensor) -> torch.Tensor:
        """BigGAN's self-attention (softmax(theta^T phi) without scaling, phi and g max-pooled)."""
        n, _, h, w = x.shape
        q = self.attn_q(x).flatten(2).transpose(1, 2)[:, None]  # (N, 1, hw, c/8)
        k, v = F.max_pool2d(self.attn_kv(x), 2).flatten(2).transpose(1, 2).split(
            [self.attn_c8, self.attn_c2], 2)  # (N, hw/4, c/8), (N, hw/4, c/2)
        o = F.scaled_dot_product_attention(q, k[:, None], v[:, None], scale=1.0)  # (N, 1, hw, c/2)
        o = o[:, 0].transpose(1, 2).reshape(n, -1, h, w)
        return x + self.attn_out(o)


@dataclass
class Generator:
    """A frozen, prepared BigGAN-deep: (z, class vector) → images in [0, 1].

    `model` is the prepared pytorch-pretrained-biggan module (as loaded); `dtype` is the dtype the
    fast forward stores its weights and computes in (bf16 on CUDA). Calls run `fast(dtype)`."""

    model: nn.Module
    name: str
    untrained: bool
    dtype: torch.dtype = torch.float32
    _fast: dict = field(default_factory=dict, repr=False)

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

    def fast(self, dtype: torch.dtype | None = None, memory_format: torch.memory_format | None = None) -> FastBigGAN:
        """The fast forward with weights in `dtype` (default: this generator's), built once per
        dtype; convolutions channels-last on CUDA (faster there) unless `memory_format` says."""
        dtype = dtype or self.dtype
        if dtype not in self._fast:
            cl = self.device.type == "cuda"
            fmt = memory_format or (torch.channels_last if cl else torch.contiguous_format)
            self._fast[dtype] = FastBigGAN(self.model, dtype, fmt)
        return self._fast[dtype]

    def __call__(self, z: torch.Tensor, classes: torch.Tensor, truncation: float,
                 dtype: torch.dtype | None = None) -> torch.Tensor:
        """z: (N, z_dim) shared or (N, n_z_rows, z_dim) per layer; classes: (N, num_classes)
        class vector (probabilities). Returns (N, 3, R, R) float32 in [0, 1], computed in `dtype`."""
        return self.fast(dtype)(z, classes, truncation)

    @torch.no_grad()
    def frames(self, z: torch.Tensor, classes: torch.Tensor, truncation: float, size: int | None = None,
               dtype: torch.dtype | None = None) -> torch.Tensor:
        """Frames for display, on the device: (N, size, size, 3) uint8, resized there (bicubic,
        antialiased when shrinking) and quantised there, so only bytes leave the device."""
        dev = self.device
        img = self(z.to(dev), classes.to(dev), truncation, dtype)  # (N, 3, R, R) in [0, 1], float32
        if size is not None and img.shape[-1] != size:
            img = F.interpolate(img, size=(size, size), mode="bicubic", align_corners=False,
                                antialias=size < img.shape[-1])
        img = (img.clamp(0, 1) * 255).round().to(torch.uint8)
        return img.permute(0, 2, 3, 1).contiguous()

    def images_uint8(self, z: torch.Tensor, classes: torch.Tensor, truncation: float, size: int | None = None,
                     amp_dtype: torch.dtype | None = None):
        """`frames` as a numpy array on the host."""
        return self.frames(z, classes, truncation, size, amp_dtype).cpu().numpy()
