"""Optimizing what a session is missing: the latents still to make, grouped by the step they
start from, and the runners that optimize a group and write it through the project's latent store.

    todo = wanted(session)                           every variant of every line (and the title)
    optimize_pending(session, todo, runner=None)     the ones not finished, in groups

A `Runner` is any callable `runner(session, group)`: `in_process` (this process, one batch on the
session's device) or scale.shard.Sharder (the group cut into shards over the workers of a pool).
Either saves every finished latent with `project.save_latent` and checkpoints through
images.optimize.Checkpointing, so an interrupt keeps the steps done. The latent files are written
before the index that lists them (project.json, once per group): latent files a crash or a full
disk left unlisted are indexed again when the project is next opened (project.store), so a rerun
optimizes nothing that had finished.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from typing import Any, Iterable, Protocol

from . import project as proj
from .errors import WriteError
from .rng import seed_for
from .session import Line, Session

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    """One latent to optimize: a line's target (by its key, `text`) and variant number."""

    text: str  # the target's key (images.targets.Target.key): what the latent is saved under
    variant: int
    key: str
    seed: int
    target: Any = field(default=None, compare=False)  # images.targets.Target (with its image prompts' files);
    # None: the target `text` says (image prompts need their files: only a Target has them)


@dataclass(frozen=True)
class LatentGroup:
    """Latents that start from the same step, optimized together."""

    items: tuple[Pending, ...]
    state: Any = None  # images.optimize.OptimState of all items (resumed), or None: from scratch

    @property
    def start(self) -> int:
        return self.state.step if self.state is not None else 0

    @property
    def keys(self) -> list[str]:
        return [p.key for p in self.items]

    @property
    def texts(self) -> list[str]:
        return [p.text for p in self.items]

    @property
    def targets(self) -> list:
        """What the optimizer reads for each latent: its Target, else its key."""
        return [p.target if p.target is not None else p.text for p in self.items]

    @property
    def variants(self) -> list[int]:
        return [p.variant for p in self.items]

    @property
    def seeds(self) -> list[int]:
        return [p.seed for p in self.items]


class Runner(Protocol):
    def __call__(self, session: Session, group: LatentGroup) -> None:
        """Optimize `group` to session.settings.optimize.steps and save every latent in the project."""


def pending(session: Session, text: str, variants: Iterable[int], target: Any = None) -> list[Pending]:
    """Latents of the target keyed `text` (a Line's prompt; `target`: its Target)."""
    lkey, seed = session.lkey, session.settings.optimize.seed
    if target is None:
        target = next((ln.target for ln in (*session.lines, session.title) if ln is not None and ln.prompt == text),
                      None)
    return [Pending(text, v, proj.latent_key(lkey, text, v), seed_for(seed, text, v), target) for v in variants]


def wanted(session: Session, lines: Iterable[Line] | None = None) -> list[Pending]:
    """Variants 0..V-1 of `lines` (default: every lyric line and the title), each target once."""
    lines = [*session.lines, *([session.title] if session.title else [])] if lines is None else list(lines)
    targets: dict[str, Any] = {}  # each target once, in line order
    for ln in lines:
        targets.setdefault(ln.prompt, ln.target)
    return [p for t, target in targets.items()
            for p in pending(session, t, range(session.settings.optimize.variants), target)]


def optimize_pending(session: Session, todo: list[Pending] | None = None, runner: Runner | None = None) -> int:
    """Bring every latent of `todo` (default: `wanted(session)`) to the configured number of steps:
    new ones from scratch, ones finished with fewer steps from their saved state, an interrupted
    batch from its checkpoint. Returns how many latents were optimized."""
    from .images.optimize import OptimState

    p, steps = session.project, session.settings.optimize.steps
    groups: dict[int, list[tuple[Pending, Any]]] = {}  # start step -> [(latent, its saved state | None)]
    for item in dict.fromkeys(wanted(session) if todo is None else todo):
        info = p.latent_info(item.key)
        saved = p.try_latent(item.key) if info is not None else None  # unreadable: forgotten, optimized again
        if saved is not None and info.steps == steps:
            continue
        state = saved.state if saved is not None and info.steps < steps else None
        groups.setdefault(state.step if state is not None else 0, []).append((item, state))
    if not groups:
        p.clear_checkpoint()
        log.info("all lines already optimized: nothing to do")
        return 0
    ck = p.load_checkpoint()
    total = 0
    for start, items in sorted(groups.items()):
        keys = [it.key for it, _ in items]
        state = OptimState.stack([st for _, st in items]) if start > 0 else None
        if ck is not None and set(keys) <= set(ck.keys) and ck.state.step > start:
            state = ck.state.select([ck.keys.index(k) for k in keys])
            log.info("resuming from checkpoint at step %d/%d", state.step, steps)
        elif start > 0:
            log.info("continuing %d latent(s) from step %d/%d", len(items), start, steps)
        (runner or in_process)(session, LatentGroup(tuple(it for it, _ in items), state))
        total += len(items)
    p.clear_checkpoint()
    return total


def in_process(session: Session, group: LatentGroup) -> None:
    """A Runner: the whole group in one batch on the session's device, checkpointed into the project."""
    from .images.optimize import Checkpointing, optimize

    p, cfg = session.project, session.settings.optimize
    clip, gen = session.model("clip"), session.model("biggan")
    log.info("optimizing %d latent(s) (%d line(s)) for %d step(s) on %s", len(group.items), len(set(group.texts)),
             cfg.steps, session.device)

    def checkpoint(state) -> None:
        failing = sys.exc_info()[1]  # saved on the way out of a failure (a full disk, an interrupt)
        try:
            p.save_checkpoint(group.keys, state)
        except WriteError:
            if failing is None:
                raise
            log.warning("%s could not be saved either: the lines not finished resume from its last save, or start "
                        "over", p.checkpoint_file)  # the first error is the one reported

    with Checkpointing(checkpoint, lambda info: session.log.report("optimize", info.step, info.steps)) as on_step:
        with session.log.stage("optimize"):
            res = optimize(gen, clip, group.targets, group.seeds, cfg, state=group.state, device=session.device,
                           amp_dtype=session.amp, progress=session.log.progress, callback=on_step)
        session.log.optimize_steps += res.steps_run
        for i, item in enumerate(group.items):
            p.save_latent(item.key, item.text, item.variant, res.state.select([i]), cfg.steps)
        p.save()
