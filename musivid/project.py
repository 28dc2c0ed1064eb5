"""A run's state on disk, so that work is never done twice or lost.

    <song>.musivid/
      project.json        inputs (with sha256), settings, segments, keyframes, latents index,
                          scores, picked variants
      latents/<key>.pt    one finished (line text, variant) latent: z, class logits, score
      checkpoint.pt       the running optimization (OptimState), saved every few seconds and
                          on interrupt; removed when its latents are finished
      storyboard.png      contact sheet of every line's variants

A latent's key hashes the line's text, the variant number and every setting that changes its
optimization (models, seed, steps, lr, cutouts...), so editing one lyric line re-optimizes that
line only, and render-only settings (fps, size) re-optimize nothing. All writes are atomic.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from . import config as C
from .audio import file_sha256
from .errors import InputError, MusividError

log = logging.getLogger(__name__)

VERSION = 1
# OptimizeConfig fields that do not key a latent: they do not change it (variants, micro_batch,
# compile, checkpointing), or, for steps, a finished latent keeps its optimizer state and a run
# with more steps continues it (see job.optimize_pending)
_NOT_LATENT = {"variants", "micro_batch", "compile", "checkpoint_every_s", "steps"}


def default_dir(out: Path) -> Path:
    return out.with_name(out.stem + ".musivid")


def default_mode() -> int:
    """What a plainly created file gets (0o666 less the umask); mkstemp would leave 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.fchmod(fd, default_mode())
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_torch_save(obj: Any, path: Path) -> None:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def latent_settings(opt: C.OptimizeConfig, models: C.ModelConfig) -> dict:
    d = {k: v for k, v in C.to_dict(opt).items() if k not in _NOT_LATENT}
    d["clip"] = "untrained" if models.untrained else (models.clip_path or models.clip)
    d["biggan"] = "untrained" if models.untrained else (models.biggan_path or models.biggan)
    return d


def latent_key(settings: dict, text: str, variant: int) -> str:
    blob = json.dumps([settings, text, variant], sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def settings_to_json(s) -> dict:
    return {
        "optimize": C.to_dict(s.optimize), "render": C.to_dict(s.render), "models": C.to_dict(s.models),
        "schedule": C.to_dict(s.schedule), "rhythm": C.to_dict(s.rhythm),
        "device": s.device, "asr": s.asr, "whisper_model": s.whisper_model,
    }


def settings_from_json(d: dict, progress: bool = False):
    from .pipeline import RunSettings

    return RunSettings(
        optimize=C.from_dict(C.OptimizeConfig, d["optimize"]), render=C.from_dict(C.RenderConfig, d["render"]),
        models=C.from_dict(C.ModelConfig, d["models"]), schedule=C.from_dict(C.ScheduleConfig, d["schedule"]),
        rhythm=C.from_dict(C.RhythmConfig, d["rhythm"]), device=d.get("device", "auto"),
        asr=d.get("asr", "auto"), whisper_model=d.get("whisper_model"), progress=progress,
    )


class Project:
    """The project directory: a JSON index plus latent and checkpoint files."""

    def __init__(self, root: Path, data: dict):
        self.root = root
        self.data = data

    @classmethod
    def open(cls, root: str | Path, *, must_exist: bool = False) -> "Project":
        root = Path(root)
        index = root / "project.json"
        if not index.exists():
            if must_exist:
                raise InputError(f"{root}: not a musivid project (no project.json): "
                                 "give the <song>.musivid directory written by a run")
            return cls(root, {"version": VERSION, "latents": {}, "picked": {}})
        try:
            data = json.loads(index.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise InputError(f"{index}: unreadable project file ({e}): delete the project "
                             "directory to start over") from None
        if data.get("version") != VERSION:
            raise InputError(f"{index}: project version {data.get('version')} is not supported "
                             f"(this musivid writes {VERSION}): start a new project with --project")
        data.setdefault("latents", {})
        data.setdefault("picked", {})
        return cls(root, data)

    def save(self) -> None:
        blob = json.dumps(self.data, indent=1, ensure_ascii=False).encode("utf-8")
        atomic_write_bytes(self.root / "project.json", blob)

    # ---- inputs -------------------------------------------------------------------------------
    @staticmethod
    def describe_input(path: Path | None) -> dict | None:
        if path is None:
            return None
        return {"path": str(path.resolve()), "sha256": file_sha256(path)}

    # ---- latents ------------------------------------------------------------------------------
    def latent_file(self, key: str) -> Path:
        return self.root / "latents" / f"{key}.pt"

    def has_latent(self, key: str) -> bool:
        return key in self.data["latents"] and self.latent_file(key).is_file()

    def save_latent(self, key: str, text: str, variant: int, state, steps: int) -> None:
        """Save one latent: its best z / class logits / score, and its whole one-row optimizer
        state (so a later run with more steps continues it)."""
        atomic_torch_save({"z": state.best_z[0].clone(), "cls": state.best_cls[0].clone(),
                           "score": float(state.best_score[0]), "seed": int(state.seeds[0]),
                           "steps": int(steps), "state": _state_dict(state)}, self.latent_file(key))
        self.data["latents"][key] = {"text": text, "variant": int(variant), "seed": int(state.seeds[0]),
                                     "score": round(float(state.best_score[0]), 6), "steps": int(steps)}

    def latent_state(self, key: str):
        """The one-row OptimState saved with a latent (None if the file predates it)."""
        blob = self.load_latent(key)
        return _state_from(blob["state"]) if "state" in blob else None

    def load_latent(self, key: str) -> dict:
        path = self.latent_file(key)
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001
            raise MusividError(f"{path}: unreadable latents ({type(e).__name__}): delete the file "
                               "and rerun to optimize that line again") from None

    def variants_of(self, text: str, settings_key: dict) -> list[int]:
        """Finished variant numbers for a line text under the given latent settings."""
        out = []
        for key, meta in self.data["latents"].items():
            if meta["text"] == text and key == latent_key(settings_key, text, meta["variant"]):
                if self.latent_file(key).is_file():
                    out.append(meta["variant"])
        return sorted(out)

    # ---- checkpoint ---------------------------------------------------------------------------
    @property
    def checkpoint_file(self) -> Path:
        return self.root / "checkpoint.pt"

    def save_checkpoint(self, keys: list[str], state) -> None:
        atomic_torch_save({"keys": list(keys), "state": _state_dict(state)}, self.checkpoint_file)

    def load_checkpoint(self):
        if not self.checkpoint_file.is_file():
            return None
        try:
            blob = torch.load(self.checkpoint_file, map_location="cpu", weights_only=True)
            return blob["keys"], _state_from(blob["state"])
        except Exception as e:  # noqa: BLE001 - a damaged checkpoint only costs its progress
            log.warning("ignoring unreadable checkpoint %s (%s)", self.checkpoint_file, e)
            return None

    def clear_checkpoint(self) -> None:
        if self.checkpoint_file.exists():
            self.checkpoint_file.unlink()


def _state_dict(state) -> dict:
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}


def _state_from(d: dict):
    from .optimize import OptimState

    return OptimState(**d)
