"""Frozen CLIP (open_clip): text and image embeddings, images given in [0, 1].

`FastViT` is the image tower the optimizer runs, built once per dtype from open_clip's
VisionTransformer (equal to it within rounding: tests/test_fast_models.py): weights stored in the
compute dtype (bf16 on CUDA: no per-forward casts, LayerNorm in and out in bf16), the input
normalisation folded into the patch-embedding conv, batch-first blocks with one fused QKV matrix
product and scaled_dot_product_attention (flash attention on CUDA; no nn.MultiheadAttention
transposes, copies or zero-filled q/k/v gradients), QuickGELU as one SiLU kernel (its 1.702 folded
into the neighbouring linear layers: x*sigmoid(1.702x) = silu(1.702x)/1.702), and the last block
computing only the class token, the only one the embedding reads.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

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


class _Norm(torch.nn.Module):
    """A LayerNorm's frozen weights in the compute dtype; F.layer_norm keeps that dtype (no autocast)."""

    def __init__(self, ln: torch.nn.LayerNorm, dtype: torch.dtype) -> None:
        super().__init__()
        self.register_buffer("w", ln.weight.detach().to(dtype))
        self.register_buffer("b", ln.bias.detach().to(dtype))
        self.eps = ln.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:], self.w, self.b, self.eps)


class _Block(torch.nn.Module):
    """open_clip's ResidualAttentionBlock, batch first, fused QKV, SDPA, QuickGELU as one SiLU."""

    def __init__(self, b: torch.nn.Module, dtype: torch.dtype, quick_gelu: bool) -> None:
        super().__init__()
        k = 1.702 if quick_gelu else 1.0  # x*sigmoid(1.702x) == silu(1.702x)/1.702: fold both factors
        self.ln_1, self.ln_2 = _Norm(b.ln_1, dtype), _Norm(b.ln_2, dtype)
        self.heads, self.quick_gelu = b.attn.num_heads, quick_gelu
        for name, v in (("qkv_w", b.attn.in_proj_weight), ("qkv_b", b.attn.in_proj_bias),
                        ("out_w", b.attn.out_proj.weight), ("out_b", b.attn.out_proj.bias),
                        ("fc_w", b.mlp.c_fc.weight * k), ("fc_b", b.mlp.c_fc.bias * k),
                        ("proj_w", b.mlp.c_proj.weight / k), ("proj_b", b.mlp.c_proj.bias)):
            self.register_buffer(name, v.detach().float().to(dtype))

    def forward(self, x: torch.Tensor, cls_only: bool = False) -> torch.Tensor:
        """(B, L, D) -> (B, L, D); with cls_only, the class token's row alone: (B, 1, D)."""
        b, n, d = x.shape
        hd = d // self.heads
        h = self.ln_1(x)
        if cls_only:  # keys and values from every token, the query of the class token only
            q = F.linear(h[:, :1], self.qkv_w[:d], self.qkv_b[:d]).view(b, 1, self.heads, hd)
            k, v = F.linear(h, self.qkv_w[d:], self.qkv_b[d:]).view(b, n, 2, self.heads, hd).unbind(2)
            x = x[:, :1]
        else:  # unbind on the packed dim: the gradients stack back into the packed layout, no copy
            q, k, v = F.linear(h, self.qkv_w, self.qkv_b).view(b, n, 3, self.heads, hd).unbind(2)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        x = x + F.linear(o.transpose(1, 2).reshape(b, -1, d), self.out_w, self.out_b)
        h = F.linear(self.ln_2(x), self.fc_w, self.fc_b)
        h = F.silu(h) if self.quick_gelu else F.gelu(h)
        return x + F.linear(h, self.proj_w, self.proj_b)


class FastViT(torch.nn.Module):
    """open_clip's VisionTransformer (standard blocks, class-token or mean pooling) rewritten for
    speed; forward((B, 3, S, S) images in [0, 1], any float dtype) -> (B, D) unit-norm float32."""

    def __init__(self, visual: torch.nn.Module, dtype: torch.dtype = torch.float32,
                 mean: Sequence[float] = OPENAI_MEAN, std: Sequence[float] = OPENAI_STD,
                 memory_format: torch.memory_format = torch.contiguous_format) -> None:
        super().__init__()
        from open_clip.transformer import QuickGELU

        self.dtype, self.memory_format = dtype, memory_format
        w = visual.conv1.weight.detach().float()  # (D, 3, P, P), no bias
        m = torch.tensor(mean, device=w.device).view(1, 3, 1, 1)
        sd = torch.tensor(std, device=w.device).view(1, 3, 1, 1)
        # conv((x - m) / s) == conv(x) with weights / s, plus the bias -sum(weights * m / s)
        self.register_buffer("patch_w", (w / sd).to(dtype=dtype, memory_format=memory_format))
        self.register_buffer("patch_b", (-(w * (m / sd)).sum((1, 2, 3))).to(dtype))
        self.patch = int(visual.conv1.stride[0])
        pos = visual.positional_embedding.detach().float()  # (L, D)
        self.register_buffer("first", (visual.class_embedding.detach().float() + pos[0]).to(dtype))
        self.register_buffer("pos", pos[1:].to(dtype))
        no_norm = torch.nn.Identity()
        self.pre = _Norm(visual.ln_pre, dtype) if isinstance(visual.ln_pre, torch.nn.LayerNorm) else no_norm
        self.post = _Norm(visual.ln_post, dtype)
        self.register_buffer("proj", visual.proj.detach().to(dtype) if visual.proj is not None else None)
        if getattr(visual, "attn_pool", None) is not None or visual.pool_type not in ("tok", "avg") or not all(
                type(b).__name__ == "ResidualAttentionBlock" and isinstance(b.ls_1, torch.nn.Identity)
                for b in visual.transformer.resblocks):
            raise NotImplementedError("FastViT covers standard ViT towers (class-token or mean pooling)")
        self.mean_pool = visual.pool_type == "avg"
        self.ln_after_pool = bool(getattr(visual, "final_ln_after_pool", False))
        quick = isinstance(visual.transformer.resblocks[0].mlp.gelu, QuickGELU)
        self.blocks = torch.nn.ModuleList(_Block(b, dtype, quick) for b in visual.transformer.resblocks)
        self.requires_grad_(False)

    def forward(self, images: torch.Tensor, stacked: int = 1) -> torch.Tensor:
        """images (B, 3, S, S), or (B, 3, k·S, S) with `stacked`=k images stacked along the height
        (cutouts.stacked_cutouts: no patch crosses two of them) → (B·k, D) embeddings."""
        x = images.to(self.dtype, memory_format=self.memory_format)  # one cast, in the conv's layout
        x = F.conv2d(x, self.patch_w, self.patch_b, stride=self.patch)  # (B, D, k·g, g)
        b, d, kg, g = x.shape
        # (B, D, k, g, g) → (B·k, g·g, D): a view when the conv wrote channels-last
        x = x.unflatten(2, (stacked, kg // stacked)).permute(0, 2, 3, 4, 1).reshape(b * stacked, -1, d)
        b = x.shape[0]
        x = torch.cat([self.first.expand(b, 1, d), x + self.pos], 1)  # (B·k, L, D)
        x = self.pre(x)
        for i, blk in enumerate(self.blocks):
            x = blk(x, cls_only=i == len(self.blocks) - 1 and not self.mean_pool)
        if self.mean_pool:
            pooled = self.post(x[:, 1:].mean(1)) if self.ln_after_pool else self.post(x[:, 1:]).mean(1)
        else:
            pooled = self.post(x[:, 0])  # the norm is per token: norm then pick == pick then norm
        if self.proj is not None:
            pooled = pooled @ self.proj
        return F.normalize(pooled.float(), dim=-1)


class _AutocastImages(torch.nn.Module):
    """open_clip's own image forward under autocast to `dtype`: for towers FastViT does not cover."""

    def __init__(self, clip: "Clip", dtype: torch.dtype) -> None:
        super().__init__()
        self.clip, self.dtype = clip, dtype

    def forward(self, images: torch.Tensor, stacked: int = 1) -> torch.Tensor:
        b, ch, h, w = images.shape
        x = images.float().view(b, ch, stacked, h // stacked, w).transpose(1, 2).reshape(-1, ch, h // stacked, w)
        with torch.autocast(images.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32):
            return self.clip.encode_image(x)


@dataclass
class Clip:
    """A frozen CLIP model. `encode_image` takes (B, 3, S, S) in [0, 1] with S == image_size
    (open_clip's own forward: the reference loop's); `embed_images` runs `fast(dtype)`."""

    model: torch.nn.Module
    tokenizer: object
    image_size: int
    name: str
    untrained: bool
    dtype: torch.dtype = torch.float32  # the fast image tower's weights and compute dtype
    _fast: dict = field(default_factory=dict, repr=False)

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
        """(B, D) unit-norm image embeddings by open_clip's forward; differentiable w.r.t. `images`."""
        x = (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)
        return F.normalize(self.model.encode_image(x).float(), dim=-1)

    def fast(self, dtype: torch.dtype | None = None, memory_format: torch.memory_format | None = None):
        """The fast image tower (FastViT) with weights in `dtype` (default: this model's), built
        once per dtype; its patch conv channels-last on CUDA unless `memory_format` says."""
        dtype = dtype or self.dtype
        if dtype not in self._fast:
            cl = self.device.type == "cuda"
            fmt = memory_format or (torch.channels_last if cl else torch.contiguous_format)
            try:
                self._fast[dtype] = FastViT(self.model.visual, dtype, memory_format=fmt)
            except NotImplementedError:  # another tower (e.g. a ResNet): open_clip's forward under autocast
                self._fast[dtype] = _AutocastImages(self, dtype)
        return self._fast[dtype]

    def embed_images(self, images: torch.Tensor, dtype: torch.dtype | None = None, stacked: int = 1) -> torch.Tensor:
        """(B·stacked, D) unit-norm float32 embeddings of (B, 3, stacked·S, S) images in [0, 1]
        (`stacked` images along the height each) by `fast(dtype)`."""
        return self.fast(dtype)(images, stacked)

# XLM-RoBERTa text towers (open_clip's HFTextEncoder): the configs written beside the tokenizer so
# transformers builds them from a local directory, never from the Hugging Face hub.
XLMR_BASE_CFG = dict(model_type="xlm-roberta", vocab_size=250002, hidden_size=768, num_hidden_layers=12,
                     num_attention_heads=12, intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1,
                     layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2, hidden_act="gelu")
TINY_XLMR_CFG = dict(XLMR_BASE_CFG, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                     max_position_embeddings=80)  # vocab_size: the tiny tokenizer's
TOKENIZER_FILE = "sentencepiece.bpe.model"  # XLM-RoBERTa's SentencePiece model, as Hugging Face names it
# text the tiny multilingual tokenizer is trained on: the letters and common words of the lyrics'
# languages musivid recognises, so a preview tokenizes into pieces rather than <unk>
TINY_CORPUS = [
    "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 .,!?;:'\"()-",
    "àâäáãåçéèêëíìîïñóòôöõúùûüýÿßæœøÀÂÄÁÇÉÈÊËÎÏÑÓÔÖÚÙÛÜ¿¡«»",
    "the violin is playing in the dark forest and I am waiting for you my love",
    "über den Wolken muss die Freiheit wohl grenzenlos sein und ich bin nicht allein",
    "où es-tu mon cœur je ne sais pas où tu es dans la nuit",
    "la luna brilla en el mar y yo te espero con el corazón",
    "月亮代表我的心 你问我爱你有多深 我爱你有几分 夜空にきらめく星のように 사랑해요 당신을",
]


def write_hf_dir(directory: Path, config: dict | None, spm_model: Path | None = None) -> Path:
    """A local Hugging Face directory for an XLM-RoBERTa text tower: config.json (unless None), the
    tokenizer's config and (copied in) its SentencePiece model."""
    directory.mkdir(parents=True, exist_ok=True)
    if config is not None:
        (directory / "config.json").write_text(json.dumps(config))
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "XLMRobertaTokenizer", "model_max_length": 512}))
    if spm_model is not None and spm_model.resolve() != (directory / TOKENIZER_FILE).resolve():
        shutil.copyfile(spm_model, directory / TOKENIZER_FILE)
    return directory


def train_tiny_tokenizer(directory: Path, corpus: Sequence[str] = TINY_CORPUS, vocab_size: int = 400) -> Path:
    """Train a tiny SentencePiece unigram model (XLM-RoBERTa's tokenizer format) on `corpus` into
    `directory` (well under a second; deterministic: one thread, fixed input). Returns its path."""
    import sentencepiece as spm

    directory.mkdir(parents=True, exist_ok=True)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(list(corpus) * 4), model_prefix=str(directory / "sentencepiece.bpe"),
        vocab_size=vocab_size, hard_vocab_limit=False, model_type="unigram", character_coverage=1.0,
        num_threads=1, minloglevel=2, unk_id=0, bos_id=1, eos_id=2, pad_id=-1)  # XLM-R's spm layout: its
    # tokenizer maps spm pieces from id 3 on after its own <s> <pad> </s> <unk> (fairseq's order)
    (directory / "sentencepiece.bpe.vocab").unlink(missing_ok=True)
    return directory / TOKENIZER_FILE


def build_hf_clip(arch_cfg: dict, hf_dir: Path, quick_gelu: bool = False):
    """open_clip's CustomTextCLIP with an HF text tower from the local `hf_dir` (config.json,
    tokenizer files), and its HFTokenizer; random weights (the caller loads them)."""
    import_open_clip()  # the torchvision shim first
    from open_clip.model import CustomTextCLIP
    from open_clip.tokenizer import HFTokenizer

    text_cfg = dict(arch_cfg["text_cfg"], hf_model_name=str(hf_dir), hf_tokenizer_name=str(hf_dir),
                    hf_model_pretrained=False)
    model = CustomTextCLIP(embed_dim=arch_cfg["embed_dim"], vision_cfg=arch_cfg["vision_cfg"], text_cfg=text_cfg,
                           quick_gelu=quick_gelu)
    tokenizer = HFTokenizer(str(hf_dir), context_length=arch_cfg["text_cfg"].get("context_length", 77))
    return model, tokenizer


def build_tiny_multilingual(corpus: Sequence[str] = TINY_CORPUS) -> tuple[torch.nn.Module, object, int]:
    """A tiny random model of the multilingual CLIP's classes (CustomTextCLIP + an XLM-RoBERTa
    HFTextEncoder + an XLM-RoBERTa tokenizer trained here on `corpus`): tests and --untrained."""
    import_open_clip()  # the torchvision shim before transformers imports torchvision
    with tempfile.TemporaryDirectory(prefix="musivid-tiny-xlmr-") as tmp:
        d = Path(tmp)
        train_tiny_tokenizer(d, corpus)
        write_hf_dir(d, None)
        from transformers import AutoTokenizer

        vocab = len(AutoTokenizer.from_pretrained(str(d)))  # the pieces, XLM-R's specials and <mask>
        write_hf_dir(d, dict(TINY_XLMR_CFG, vocab_size=vocab))
        cfg = dict(embed_dim=TINY_CLIP_CFG["embed_dim"], vision_cfg=TINY_CLIP_CFG["vision_cfg"],
                   text_cfg=dict(hf_pooler_type="mean_pooler", hf_proj_type="mlp"))
        model, tokenizer = build_hf_clip(cfg, d)
    return model, tokenizer, TINY_CLIP_CFG["vision_cfg"]["image_size"]


def is_hf_arch(arch: str) -> bool:
    """Whether the open_clip architecture has a Hugging Face text tower (needs transformers)."""
    cfg = import_open_clip().get_model_config(arch) or {}
    return bool(cfg.get("text_cfg", {}).get("hf_model_name"))


class _NotOpenClipInfo(logging.Filter):
    """Drops open_clip's own lines below ERROR ("Loaded ViT-B-32 model config.", "No pretrained
    weights loaded": musivid loads them next), logged to the root logger: under a program's
    `logging.basicConfig(level=INFO)` they would read as musivid's messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR or f"{os.sep}open_clip{os.sep}" not in record.pathname


@contextmanager
def _open_clip_quiet() -> Iterator[None]:
    root, keep_out = logging.getLogger(), _NotOpenClipInfo()
    root.addFilter(keep_out)
    try:
        yield
    finally:
        root.removeFilter(keep_out)


def build(arch: str | None, *, untrained: bool, quick_gelu: bool = True, hf_dir: Path | None = None,
          device: str | torch.device = "cpu") -> tuple[torch.nn.Module, object, int]:
    """An open_clip model (random weights) and its tokenizer; weights are loaded by the caller.
    `arch` "musivid-tiny" (or None with untrained) is the tiny test config; "musivid-tiny-multilingual"
    its multilingual twin. An HF-text-tower architecture needs `hf_dir` (see write_hf_dir). On
    device "meta" the model has shapes and no weights (the cost census)."""
    with _open_clip_quiet():
        return _build(arch, untrained=untrained, quick_gelu=quick_gelu, hf_dir=hf_dir, device=device)


def _build(arch: str | None, *, untrained: bool, quick_gelu: bool, hf_dir: Path | None,
           device: str | torch.device) -> tuple[torch.nn.Module, object, int]:
    open_clip = import_open_clip()
    if arch == "musivid-tiny-multilingual":
        return build_tiny_multilingual()
    if arch == "musivid-tiny" or (untrained and arch is None):
        from open_clip.model import CLIP

        with torch.device(device):
            model = CLIP(**TINY_CLIP_CFG, quick_gelu=True)
        tokenizer = open_clip.get_tokenizer("ViT-B-32")
        return model, tokenizer, TINY_CLIP_CFG["vision_cfg"]["image_size"]
    assert arch is not None
    if is_hf_arch(arch):
        if hf_dir is None:
            raise ValueError(f"{arch}: a Hugging Face text tower needs its local directory (hf_dir)")
        model, tokenizer = build_hf_clip(open_clip.get_model_config(arch), hf_dir, quick_gelu)
    else:
        model = open_clip.create_model(arch, pretrained=None, force_quick_gelu=quick_gelu, device=device)
        tokenizer = open_clip.get_tokenizer(arch)
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    return model, tokenizer, int(size)
