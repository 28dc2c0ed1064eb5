"""Frozen CLIP (open_clip): text and image embeddings, images given in [0, 1]."""
from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
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


def build(arch: str | None, *, untrained: bool, quick_gelu: bool = True,
          hf_dir: Path | None = None) -> tuple[torch.nn.Module, object, int]:
    """An open_clip model (random weights) and its tokenizer; weights are loaded by the caller.
    `arch` "musivid-tiny" (or None with untrained) is the tiny test config; "musivid-tiny-multilingual"
    its multilingual twin. An HF-text-tower architecture needs `hf_dir` (see write_hf_dir)."""
    open_clip = import_open_clip()
    if arch == "musivid-tiny-multilingual":
        return build_tiny_multilingual()
    if arch == "musivid-tiny" or (untrained and arch is None):
        from open_clip.model import CLIP

        model = CLIP(**TINY_CLIP_CFG, quick_gelu=True)
        tokenizer = open_clip.get_tokenizer("ViT-B-32")
        return model, tokenizer, TINY_CLIP_CFG["vision_cfg"]["image_size"]
    assert arch is not None
    if is_hf_arch(arch):
        if hf_dir is None:
            raise ValueError(f"{arch}: a Hugging Face text tower needs its local directory (hf_dir)")
        model, tokenizer = build_hf_clip(open_clip.get_model_config(arch), hf_dir, quick_gelu)
    else:
        model = open_clip.create_model(arch, pretrained=None, force_quick_gelu=quick_gelu)
        tokenizer = open_clip.get_tokenizer(arch)
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    return model, tokenizer, int(size)
