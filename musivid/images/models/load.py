"""Load frozen CLIP and BigGAN from the registry (or as tiny random-init models)."""
from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from ...config import AUTO_CLIP, DEFAULT_CLIP, MULTILINGUAL_CLIP, ModelConfig
from ...errors import InputError, ModelUnavailableError, WeightsMismatchError
from . import biggan as biggan_mod
from . import clip as clip_mod
from .registry import FetchOptions, cache_dir, get_entry, offline_from_env, resolve, resolve_all, resolve_file

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


@dataclass(frozen=True)
class ClipChoice:
    """The CLIP a run uses and why, for the user."""

    models: ModelConfig  # with clip resolved to a registry name ("auto" only while the words are unknown)
    reason: str


def choose_clip(cfg: ModelConfig, texts: Sequence[str] | None) -> ClipChoice:
    """Resolve clip "auto" from the lyrics' languages: ViT-B-32/openai reads English only, so
    lyrics with any line in another language (its script or words: `text.line_languages`) get the
    multilingual CLIP, and the reason names that line once ("line 4 is Chinese (zh)"), or the
    lyrics' language when all their lines tell the same. The config keeps a registry name that
    was given. texts None (the song is still to be transcribed): unchanged."""
    if cfg.clip != AUTO_CLIP or texts is None:
        return ClipChoice(cfg, f"CLIP {cfg.model_name('clip')}")
    if cfg.clip_path:  # an own weight file: the default architecture, as before "auto"
        cfg = dataclasses.replace(cfg, clip=DEFAULT_CLIP)
        return ClipChoice(cfg, f"CLIP {cfg.model_name('clip')} ({DEFAULT_CLIP} architecture)")
    from ...song.lyrics import guess_language
    from ...text import language_name, line_languages

    texts = list(texts)
    per = line_languages(texts)
    known = {lang for lang in per if lang}
    foreign = [(k, lang) for k, lang in enumerate(per) if lang not in (None, "en")]
    lang = guess_language(texts)
    tiny = " (tiny, untrained, same classes)" if cfg.untrained else ""
    if foreign and known != {foreign[0][1]}:
        k, other = foreign[0]
        return ClipChoice(dataclasses.replace(cfg, clip=MULTILINGUAL_CLIP),
                          f"CLIP {MULTILINGUAL_CLIP}{tiny}: line {k + 1} is {language_name(other)} ({other}) and "
                          f"{DEFAULT_CLIP} reads English only (--clip chooses another)")
    if foreign:
        lang = foreign[0][1]
    if lang in (None, "en"):
        why = "the lyrics look English" if lang else "the lyrics' language is unclear: the English default"
        return ClipChoice(dataclasses.replace(cfg, clip=DEFAULT_CLIP),
                          f"CLIP {DEFAULT_CLIP}{tiny}: {why} (--clip chooses another)")
    return ClipChoice(dataclasses.replace(cfg, clip=MULTILINGUAL_CLIP),
                      f"CLIP {MULTILINGUAL_CLIP}{tiny}: the lyrics look {language_name(lang)} ({lang}) and "
                      f"{DEFAULT_CLIP} reads English only (--clip chooses another)")


def load_clip(cfg: ModelConfig, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
              progress: bool = False) -> clip_mod.Clip:
    """The CLIP of `cfg` (resolve "auto" with choose_clip first; unresolved it is the default) on
    `device`; `dtype` (default float32) is the dtype its fast image tower stores its weights and
    computes in (bf16 on CUDA); open_clip's own model (text, reference) stays float32."""
    dtype = dtype or torch.float32
    name = DEFAULT_CLIP if cfg.clip == AUTO_CLIP else cfg.clip
    if cfg.untrained:
        torch.manual_seed(0)
        multilingual = clip_mod.is_hf_arch(get_entry(name).arch)
        if multilingual:
            _require(get_entry(name))
        model, tok, size = clip_mod.build("musivid-tiny-multilingual" if multilingual else None, untrained=True)
        label = "tiny-multilingual-clip (untrained)" if multilingual else "tiny-clip (untrained)"
        return clip_mod.Clip(model.to(device), tok, size, label, True, dtype)
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
    return clip_mod.Clip(model.to(device), tok, size, entry.name, False, dtype)


def _require(entry) -> None:
    for pkg in entry.requires:
        try:
            __import__(pkg)
        except ImportError:
            raise ModelUnavailableError(
                f"{entry.name} needs the Python package {pkg!r}: pip install 'musivid[multilingual]' "
                f"(or pass --clip {DEFAULT_CLIP})") from None


def load_biggan(cfg: ModelConfig, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
                progress: bool = False) -> biggan_mod.Generator:
    """BigGAN on `device`; `dtype` (default float32) is the dtype its fast forward stores its
    weights and computes in (bf16 on CUDA); the prepared original stays float32."""
    dtype = dtype or torch.float32
    if cfg.untrained:
        torch.manual_seed(0)
        model = biggan_mod.new_model(biggan_mod.tiny_config())
        return biggan_mod.Generator(biggan_mod.prepare(model).to(device), "tiny-biggan (untrained)", True, dtype)
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
    return biggan_mod.Generator(model.to(device), entry.name, False, dtype)


def model_problems(cfg: ModelConfig) -> tuple[list[str], bool]:
    """What is wrong with the models asked for, without touching the network or the cache: unknown
    names, a name of the wrong kind, a missing package, and local paths (--clip/--biggan) that do
    not exist. Returns (problems, whether any is a bad path)."""
    import importlib.util

    problems, bad_path = [], False
    for kind, name, path in (("clip", cfg.clip, cfg.clip_path), ("biggan", cfg.biggan, cfg.biggan_path)):
        label = "CLIP" if kind == "clip" else "BigGAN"
        try:
            entry = get_entry(DEFAULT_CLIP if name == AUTO_CLIP else name)  # auto: the default or, for
            # lyrics in another language, the multilingual CLIP (its package is checked when chosen)
        except ModelUnavailableError as e:
            problems.append(str(e))
            continue
        if entry.kind != kind:
            problems.append(f"{name!r} is not a {label} model: see `musivid models list`")
        problems += [f"{entry.name} needs the Python package {pkg!r}: pip install {pkg}"
                     for pkg in entry.requires if importlib.util.find_spec(pkg) is None]
        if path:
            p = Path(path).expanduser()
            weights = p / "pytorch_model.bin" if kind == "biggan" and p.is_dir() else p
            if not weights.is_file():
                bad_path = True
                what = "holds no pytorch_model.bin" if weights != p else "is a directory" if p.is_dir() else "no such file"
                problems.append(f"--{kind} {path}: {what}: give the path of a {label} weight file"
                                + (" or of a directory with pytorch_model.bin and config.json" if kind == "biggan" else ""))
    return problems, bad_path


def check_models(cfg: ModelConfig, progress: bool = False, *, fetch: bool = True) -> None:
    """Before any work: every model the run needs can be had. Bad local paths, unknown names and
    missing packages are reported together (InputError when a path is wrong); then every weight
    file not given as a path is made local and verified (downloaded if allowed), and those that
    cannot be had are listed in one ModelUnavailableError. With fetch=False nothing is downloaded:
    online, only the names and paths are checked; offline, the cache too."""
    if cfg.untrained:
        return
    problems, bad_path = model_problems(cfg)
    if problems:
        raise (InputError if bad_path else ModelUnavailableError)("; ".join(problems))
    if not fetch and not _opts(cfg, progress).offline:
        return
    entries = []
    if cfg.clip != AUTO_CLIP:  # auto: fetched when the lyrics' language is known (choose_clip)
        entry = get_entry(cfg.clip)
        files = entry.files[1:] if cfg.clip_path else entry.files  # with an own weight file: the tokenizer
        if files:
            entries.append(dataclasses.replace(entry, files=files))
    if not cfg.biggan_path:
        entries.append(get_entry(cfg.biggan))
    resolve_all(entries, cache_dir(cfg.cache_dir), _opts(cfg, progress))

