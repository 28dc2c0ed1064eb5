"""The running optimization's checkpoints (an OptimState and its latents' keys), and the one
format a latent's optimizer state is saved in (project.store's latent files use it too)."""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..files import atomic_torch_save

log = logging.getLogger(__name__)


def write_checkpoint(path: Path, keys: list[str], state) -> None:
    """Atomically save a running optimization of the latents `keys` (also from worker processes)."""
    atomic_torch_save({"keys": list(keys), "state": state_dict(state)}, path, "the optimization's checkpoint")


@dataclass(frozen=True)
class Checkpoint:
    """A running optimization as saved: its latents' keys and their OptimState (row i: keys[i])."""

    keys: list[str]
    state: Any  # images.optimize.OptimState


def read_checkpoint(path: Path) -> Checkpoint | None:
    """The Checkpoint saved by write_checkpoint, or None (missing, or damaged: a warning)."""
    import torch

    if not path.is_file():
        return None
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        keys, state = [str(k) for k in blob["keys"]], state_from(blob["state"])
        if not (len(keys) == len(state.z) == len(state.cls) == len(state.seeds)):
            raise ValueError("keys and state rows differ")
        return Checkpoint(keys, state)
    except Exception as e:  # noqa: BLE001 - a damaged checkpoint only costs its progress
        log.warning("%s is unreadable (%s): discarded it; the interrupted lines start over", path, type(e).__name__)
        return None


def state_dict(state) -> dict:
    """An OptimState as a dict of its fields (what torch.save writes)."""
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}


def state_from(d: dict):
    """The OptimState saved by state_dict."""
    from ..images.optimize import OptimState

    return OptimState(**d)
