"""The models a process has loaded, kept for its next runs: one explicit cache, passed to whatever
needs a model (a run's session, a worker of a pool, the studio for its whole life)."""
from __future__ import annotations

import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable

from ...config import ModelConfig

KINDS = ("clip", "biggan")


@dataclass(frozen=True)
class ModelKey:
    """What makes two loaded models the same: kind, model settings, device and compute dtype."""

    kind: str  # "clip" | "biggan"
    models: ModelConfig
    device: str
    dtype: str | None


class ModelCache:
    """CLIP and BigGAN models loaded on first use and kept: `cache.get("clip", cfg, device, amp)`.
    Thread-safe (a model is loaded once even if two threads ask at the same time)."""

    def __init__(self) -> None:
        self._models: dict[ModelKey, Any] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, models: ModelConfig, device: Any, dtype: Any = None, *, progress: bool = False,
            loading: Callable[[str], AbstractContextManager] | None = None):
        """The `kind` model of `models` on `device` computing in `dtype`. `loading(name)` wraps a
        load that happens (a run says and times it); `progress` shows download bars."""
        if kind not in KINDS:
            raise ValueError(f"model kind must be one of {KINDS}, not {kind!r}")
        key = ModelKey(kind, models, str(device), None if dtype is None else str(dtype))
        with self._lock:
            if key not in self._models:
                from . import load

                loader = {"clip": load.load_clip, "biggan": load.load_biggan}[kind]
                with (loading or (lambda _name: nullcontext()))(models.model_name(kind)):
                    self._models[key] = loader(models, device, dtype, progress=progress)
            return self._models[key]

    def __len__(self) -> int:
        return len(self._models)

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
