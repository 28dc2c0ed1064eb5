"""Model registry: names → weight files, URLs (with mirrors), sha256, architecture.

Resolution order for a weight file (DESIGN.md §4):
explicit local path → verified cache ($MUSIVID_CACHE, default ~/.cache/musivid; no network call
when the file verifies) → download (progress, temp file, sha256, rename), trying each mirror →
a ModelUnavailableError naming the file, the URLs tried and where to put the file by hand.
Offline mode ($MUSIVID_OFFLINE=1 or offline=True) never touches the network.

Checksums: only hashes taken from a published source are pinned (`sha256`). An entry without one is
"unpinned": its first download is accepted, its hash recorded beside the file (trust on first
use) and every later load is checked against that record; the caller is told (warning).
"""
from __future__ import annotations

import hashlib
import logging
import os
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ...errors import ChecksumError, ModelUnavailableError
from ...files import critical, sha256_file, temp_beside
from ...progress import Bar

log = logging.getLogger(__name__)

HF = "https://huggingface.co"
HF_MIRROR = "https://hf-mirror.com"
S3_BIGGAN = "https://s3.amazonaws.com/models.huggingface.co/biggan"


@dataclass(frozen=True)
class WeightFile:
    filename: str  # name in the cache directory
    urls: tuple[str, ...]  # tried in order
    sha256: str | None  # pinned from a published source, or None (trust on first use)
    size: int | None = None  # bytes, where known


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: str  # "clip" | "biggan"
    arch: str  # open_clip model name, or "biggan-deep-<res>"
    files: tuple[WeightFile, ...]  # the first is the weights; BigGAN's second is its config.json, a
    # multilingual CLIP's its tokenizer
    licence: str
    about: str
    requires: tuple[str, ...] = ()  # extra Python packages this entry needs
    quick_gelu: bool = True

    @property
    def weights(self) -> WeightFile:
        return self.files[0]


def _hf(repo: str, rev: str, filename: str) -> tuple[str, ...]:
    return tuple(f"{host}/{repo}/resolve/{rev}/{filename}" for host in (HF, HF_MIRROR))


REGISTRY: dict[str, ModelEntry] = {
    e.name: e
    for e in [
        ModelEntry(
            "ViT-B-32/openai", "clip", "ViT-B-32",
            (WeightFile(
                "clip-vit-b-32-openai.safetensors",
                _hf("timm/vit_base_patch32_clip_224.openai",
                    "a6f597a30f7b82c51704746581f9a4e41421e878", "open_clip_model.safetensors"),
                "e6d1bd7789aa45192b3bf90570a789b478bae1b74ebcce7eddd908e83a2b7c31",
                605_000_000),),
            "MIT (OpenAI CLIP)", "CLIP ViT-B/32 (OpenAI), the default: fast, 224 px, 512-d",
        ),
        ModelEntry(
            "ViT-B-16/openai", "clip", "ViT-B-16",
            (WeightFile("clip-vit-b-16-openai.safetensors",
                        _hf("timm/vit_base_patch16_clip_224.openai", "main",
                            "open_clip_model.safetensors"), None, 599_000_000),),
            "MIT (OpenAI CLIP)", "CLIP ViT-B/16 (OpenAI): 4x the FLOPs of B/32, finer detail",
        ),
        ModelEntry(
            "ViT-L-14/openai", "clip", "ViT-L-14",
            (WeightFile("clip-vit-l-14-openai.safetensors",
                        _hf("timm/vit_large_patch14_clip_224.openai", "main",
                            "open_clip_model.safetensors"), None, 1_710_000_000),),
            "MIT (OpenAI CLIP)", "CLIP ViT-L/14 (OpenAI): the larger model, ~18x B/32's FLOPs",
        ),
        ModelEntry(
            "xlm-roberta-base-ViT-B-32/laion5b_s13b_b90k", "clip", "xlm-roberta-base-ViT-B-32",
            (WeightFile("clip-xlm-roberta-base-vit-b-32-laion5b.safetensors",
                        _hf("laion/CLIP-ViT-B-32-xlm-roberta-base-laion5B-s13B-b90k", "main",
                            "open_clip_model.safetensors"), None, 1_470_000_000),
             # its tokenizer: XLM-RoBERTa's SentencePiece model (the text tower's config is in clip.py)
             WeightFile("xlm-roberta-base-sentencepiece.bpe.model",
                        _hf("FacebookAI/xlm-roberta-base", "main", "sentencepiece.bpe.model"), None, 5_069_051)),
            "MIT (LAION)", "multilingual CLIP (XLM-RoBERTa text tower) for non-English lyrics",
            requires=("transformers", "sentencepiece"), quick_gelu=False,
        ),
        *[
            ModelEntry(
                f"biggan-deep-{res}", "biggan", f"biggan-deep-{res}",
                (WeightFile(f"biggan-deep-{res}.bin",
                            (f"{S3_BIGGAN}/biggan-deep-{res}-pytorch_model.bin",
                             *_hf(f"huggingface/biggan-deep-{res}", "main", "pytorch_model.bin")),
                            wsha, wsize),
                 WeightFile(f"biggan-deep-{res}-config.json",
                            (f"{S3_BIGGAN}/biggan-deep-{res}-config.json",
                             *_hf(f"huggingface/biggan-deep-{res}", "main", "config.json")),
                            csha, 715 if csha else None)),
                "Apache-2.0 (DeepMind BigGAN via TF Hub; converted by Hugging Face)",
                f"BigGAN-deep {res}x{res}, ImageNet classes",
            )
            for res, wsha, wsize, csha in [
                (128, None, 201_000_000, None),
                (256, "5900ef4065047e3aa0d1b66197b7f2664dceb59b27080e414ad57e203c485bc5",
                 234_411_737, "edd106f65ff28ee1638491a978cfa6bc50dfa0344aab70749a7b8eb08bbec677"),
                (512, None, 236_000_000, None),
            ]
        ],
    ]
}


def get_entry(name: str) -> ModelEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ModelUnavailableError(
            f"unknown model {name!r}: choose one of {', '.join(REGISTRY)} "
            "(see `musivid models list`)"
        ) from None


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    if override:
        return Path(override).expanduser()
    env = os.environ.get("MUSIVID_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "musivid"


def offline_from_env() -> bool:
    return os.environ.get("MUSIVID_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _pin_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def expected_sha(wf: WeightFile, path: Path) -> str | None:
    """The pinned hash, else the one recorded at first download, else None."""
    if wf.sha256:
        return wf.sha256
    pin = _pin_path(path)
    if pin.exists():
        return pin.read_text().split()[0]
    return None


def cached_ok(wf: WeightFile, cache: Path) -> Path | None:
    """The cached file if it exists and verifies; a corrupt one is deleted (it will be re-fetched)."""
    path = cache / wf.filename
    if not path.is_file():
        return None
    want = expected_sha(wf, path)
    got = sha256_file(path)
    if want is not None and got != want:
        log.warning("cached %s fails its checksum (sha256 %s..., want %s...): deleted it; it will be fetched "
                    "again", path, got[:12], want[:12])
        path.unlink()
        return None
    return path


@dataclass
class FetchOptions:
    offline: bool = False
    timeout_s: float = 30.0  # per connection/read; bounds a hanging server
    progress: bool = False
    opener: Callable[..., object] = field(default=urllib.request.urlopen)


def resolve_file(wf: WeightFile, cache: Path, opts: FetchOptions) -> Path:
    """A verified local copy of `wf`: from the cache, or downloaded into it."""
    hit = cached_ok(wf, cache)
    if hit is not None:
        return hit
    target = cache / wf.filename
    if opts.offline:
        raise ModelUnavailableError(
            f"{wf.filename} is not in the cache {cache} and offline mode is on: "
            f"run `musivid models fetch` with network access, or place the file at {target} "
            f"(from {wf.urls[0]}), or use --untrained to preview with random weights"
        )
    errors: list[str] = []
    for url in wf.urls:
        try:
            _download(url, target, wf, opts)
            return target
        except ChecksumError as e:
            errors.append(f"{url}: {e}")
        except (urllib.error.URLError, OSError, socket.timeout, ValueError) as e:
            reason = getattr(e, "reason", None) or getattr(e, "code", None) or e
            errors.append(f"{url}: {reason}")
        log.info("download failed: %s", errors[-1])
    raise ModelUnavailableError(
        f"could not download {wf.filename} (tried {len(wf.urls)} URL(s): "
        + "; ".join(errors)
        + f"): download it by hand to {target}, pass its path explicitly, "
        "or use --untrained to preview with random weights"
    )


def _download(url: str, target: Path, wf: WeightFile, opts: FetchOptions) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    req = urllib.request.Request(url, headers={"User-Agent": "musivid"})
    tmp_path = None
    try:
        with critical():  # the temp file is this `finally`'s from the moment it exists
            tmp_path = temp_beside(target)
        h = hashlib.sha256()
        with open(tmp_path, "wb") as out, opts.opener(req, timeout=opts.timeout_s) as resp:
            total = resp.headers.get("Content-Length")
            with Bar(int(total) if total else None, f"downloading {wf.filename}", "B", enabled=opts.progress,
                     unit_scale=True) as bar:
                while block := resp.read(1 << 20):
                    out.write(block)
                    h.update(block)
                    bar.update(len(block))
        got = h.hexdigest()
        if wf.sha256 and got != wf.sha256:
            raise ChecksumError(f"sha256 mismatch: got {got}, want {wf.sha256}")
        os.replace(tmp_path, target)
        if not wf.sha256:
            _pin_path(target).write_text(f"{got}  {wf.filename}  (recorded at first download from {url})\n")
            log.warning("%s: the registry pins no checksum for this file; recorded sha256 %s... at first "
                        "download and will verify against it from now on", wf.filename, got[:16])
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def resolve(entry: ModelEntry, cache: Path, opts: FetchOptions) -> list[Path]:
    """Every file of `entry`, verified and local; one error listing every file that cannot be had."""
    return resolve_all([entry], cache, opts)[entry.name]


def get_entries(names: list[str] | tuple[str, ...]) -> list[ModelEntry]:
    """The registry entries for `names`; one error naming every unknown name."""
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise ModelUnavailableError(f"unknown model{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}: "
                                    f"choose from {', '.join(REGISTRY)} (see `musivid models list`)")
    return [REGISTRY[n] for n in names]


def resolve_all(entries: list[ModelEntry], cache: Path, opts: FetchOptions,
                on_done: Callable[[ModelEntry, list[Path]], None] | None = None) -> dict[str, list[Path]]:
    """Every file of every entry, verified and local (fetching what is missing, if allowed).
    Goes on past a file that cannot be had, then raises one ModelUnavailableError listing all of
    them. `on_done(entry, paths)` for each entry whose files are all there."""
    out: dict[str, list[Path]] = {}
    missing: list[tuple[WeightFile, ModelUnavailableError]] = []
    for entry in entries:
        paths, bad = [], []
        for wf in entry.files:
            try:
                paths.append(resolve_file(wf, cache, opts))
            except ModelUnavailableError as e:
                bad.append((wf, e))
        missing += bad
        if not bad:
            out[entry.name] = paths
            if on_done is not None:
                on_done(entry, paths)
    if len(missing) == 1:
        raise missing[0][1]
    if missing:
        files = ", ".join(f"{wf.filename} (from {wf.urls[0]})" for wf, _ in missing)
        why = (f"not in the cache {cache} and offline mode is on" if opts.offline else
               "could not be downloaded: " + "; ".join(str(e).split(" (tried")[0] for _, e in missing))
        raise ModelUnavailableError(
            f"{len(missing)} weight files are missing: {files}; {why}: run `musivid models fetch` with network "
            f"access, or place the files in {cache}, or use --untrained to preview with random weights")
    return out


def is_cached(entry: ModelEntry, cache: Path) -> bool:
    return all((cache / wf.filename).is_file() for wf in entry.files)
