"""Load frozen CLIP and BigGAN from the registry (or as tiny random-init models)."""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Sequence

import torch

from ..config import AUTO_CLIP, DEFAULT_CLIP, MULTILINGUAL_CLIP, ModelConfig
from ..errors import ModelUnavailableError, WeightsMismatchError
from . import biggan as biggan_mod
from . import clip as clip_mod
from .registry import FetchOptions, cache_dir, get_entry, offline_from_env, resolve, resolve_file

log = logging.getLogger(__name__)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors only: safetensors, or torch.load(weights_only=True) (no pickled code runs)."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file
        raise WeightsMismatchError(
            f"{path}: not a readable weight file ({type(e).__name__}: {str(e)[:100]}): "
            "delete it and fetch it again"
        ) from None
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise WeightsMismatchError(f"{path}: holds no state dict: fetch the file again")
    return sd


def load_strict(model: torch.nn.Module, sd: dict[str, torch.Tensor], path: Path) -> None:
    """load_state_dict(strict=True), with a one-line error naming what does not match."""
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    shapes = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s) e.g. {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s) e.g. {unexpected[0]}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es) e.g. {shapes[0]}")
        raise WeightsMismatchError(
            f"{path}: does not match the architecture ({'; '.join(parts)}): "
            "is it the right file for this model? delete it and fetch it again"
        )
    model.load_state_dict(sd, strict=True)


def _opts(cfg: ModelConfig, progress: bool) -> FetchOptions:
    return FetchOptions(offline=cfg.offline or offline_from_env(), progress=progress)


def choose_clip(cfg: ModelConfig, texts: Sequence[str] | None) -> tuple[ModelConfig, str]:
    """Resolve clip "auto" from the lyrics' language: ViT-B-32/openai reads English only, so
    lyrics in another language get the multilingual CLIP. Returns the config with a registry name
    (unchanged when one was given) and why it was chosen, for the user. texts None (the song is
    still to be transcribed): unchanged."""
    if cfg.clip != AUTO_CLIP or texts is None:
        return cfg, f"CLIP {cfg.clip_path or cfg.clip}" + (" (tiny, untrained)" if cfg.untrained else "")
    if cfg.clip_path:  # an own weight file: the default architecture, as before "auto"
        return dataclasses.replace(cfg, clip=DEFAULT_CLIP), f"CLIP {cfg.clip_path} ({DEFAULT_CLIP} architecture)"
    from ..lyrics import guess_language

    lang = guess_language(list(texts))
    tiny = " (tiny, untrained, same classes)" if cfg.untrained else ""
    if lang in (None, "en"):
        why = "the lyrics look English" if lang else "the lyrics' language is unclear: the English default"
        return dataclasses.replace(cfg, clip=DEFAULT_CLIP), f"CLIP {DEFAULT_CLIP}{tiny}: {why} (--clip chooses another)"
    return (dataclasses.replace(cfg, clip=MULTILINGUAL_CLIP),
            f"CLIP {MULTILINGUAL_CLIP}{tiny}: the lyrics look {LANGUAGES.get(lang, lang)} ({lang}) and {DEFAULT_CLIP} "
            "reads English only (--clip chooses another)")


LANGUAGES = {"de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese", "nl": "Dutch",
             "zh": "Chinese", "ja": "Japanese", "ko": "Korean", "ru": "Russian", "ar": "Arabic", "he": "Hebrew",
             "el": "Greek", "th": "Thai", "hi": "Hindi"}


def load_clip(cfg: ModelConfig, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
              progress: bool = False) -> clip_mod.Clip:
    """The CLIP of `cfg` (resolve "auto" with choose_clip first; unresolved it is the default)."""
    name = DEFAULT_CLIP if cfg.clip == AUTO_CLIP else cfg.clip
    if cfg.untrained:
        torch.manual_seed(0)
        multilingual = clip_mod.is_hf_arch(get_entry(name).arch)
        if multilingual:
            _require(get_entry(name))
        model, tok, size = clip_mod.build("musivid-tiny-multilingual" if multilingual else None, untrained=True)
        label = "tiny-multilingual-clip (untrained)" if multilingual else "tiny-clip (untrained)"
        return clip_mod.Clip(model.to(device, dtype), tok, size, label, True)
    entry = get_entry(name)
    if entry.kind != "clip":
        raise ModelUnavailableError(f"{name!r} is not a CLIP model: see `musivid models list`")
    _require(entry)
    if cfg.clip_path:
        path = Path(cfg.clip_path).expanduser()
        if not path.is_file():
            raise ModelUnavailableError(f"{path}: no such CLIP weight file (--clip): check the path")
    else:
        path = resolve_file(entry.weights, cache_dir(cfg.cache_dir), _opts(cfg, progress))
    hf_dir = None
    if clip_mod.is_hf_arch(entry.arch):  # the text tower's config and tokenizer, in a local directory
        spm = resolve_file(entry.files[1], cache_dir(cfg.cache_dir), _opts(cfg, progress))
        hf_dir = clip_mod.write_hf_dir(cache_dir(cfg.cache_dir) / f"{entry.arch}-text", clip_mod.XLMR_BASE_CFG, spm)
    model, tok, size = clip_mod.build(entry.arch, untrained=False, quick_gelu=entry.quick_gelu, hf_dir=hf_dir)
    sd = read_state_dict(path)
    for k in [k for k in sd if k.endswith("embeddings.position_ids")]:
        if k not in model.state_dict():  # a buffer newer transformers no longer saves (open_clip drops it too)
            del sd[k]
    load_strict(model, sd, path)
    return clip_mod.Clip(model.to(device, dtype), tok, size, entry.name, False)


def _require(entry) -> None:
    for pkg in entry.requires:
        try:
            __import__(pkg)
        except ImportError:
            raise ModelUnavailableError(
                f"{entry.name} needs the Python package {pkg!r}: pip install 'musivid[multilingual]' "
                f"(or pass --clip {DEFAULT_CLIP})") from None


def load_biggan(cfg: ModelConfig, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32,
                progress: bool = False) -> biggan_mod.Generator:
    if cfg.untrained:
        torch.manual_seed(0)
        model = biggan_mod.new_model(biggan_mod.tiny_config())
        return biggan_mod.Generator(biggan_mod.prepare(model).to(device, dtype), "tiny-biggan (untrained)", True)
    entry = get_entry(cfg.biggan)
    if entry.kind != "biggan":
        raise ModelUnavailableError(f"{cfg.biggan!r} is not a BigGAN model: see `musivid models list`")
    if cfg.biggan_path:
        p = Path(cfg.biggan_path).expanduser()
        if p.is_dir():  # a pytorch-pretrained-biggan directory: pytorch_model.bin + config.json
            weights, cfg_file = p / "pytorch_model.bin", p / "config.json"
        else:
            weights, cfg_file = p, None
        if not weights.is_file():
            raise ModelUnavailableError(f"{weights}: no such BigGAN weight file (--biggan): check the path")
    else:
        weights, cfg_file = resolve(entry, cache_dir(cfg.cache_dir), _opts(cfg, progress))
    if cfg_file is not None and cfg_file.is_file():
        from pytorch_pretrained_biggan import BigGANConfig

        try:
            config = BigGANConfig.from_dict(json.loads(cfg_file.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise WeightsMismatchError(f"{cfg_file}: not a BigGAN config ({e}): fetch it again") from None
    else:  # a bare weight file: the published config for the entry's resolution
        config = biggan_mod.full_config(int(entry.arch.rsplit("-", 1)[1]))
    from pytorch_pretrained_biggan import BigGAN

    model = BigGAN(config)
    load_strict(model, read_state_dict(weights), weights)
    model = biggan_mod.prepare(model)
    return biggan_mod.Generator(model.to(device, dtype), entry.name, False)


def ensure_weights(cfg: ModelConfig, progress: bool = False) -> None:
    """Make sure every weight file the run needs is local and verified (downloading if allowed),
    before any slow work starts: a missing model fails in a second, not after the audio analysis."""
    if cfg.untrained:
        return
    opts = _opts(cfg, progress)
    cache = cache_dir(cfg.cache_dir)
    if cfg.clip != AUTO_CLIP:  # auto: fetched when the lyrics' language is known (choose_clip)
        entry = get_entry(cfg.clip)
        for wf in entry.files[1:] if cfg.clip_path else entry.files:
            resolve_file(wf, cache, opts)
    if not cfg.biggan_path:
        resolve(get_entry(cfg.biggan), cache, opts)
