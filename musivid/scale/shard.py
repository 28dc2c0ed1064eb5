"""One song's latents sharded over several devices, with results bit-identical to one device.

`Sharder(pool)` is a runner.Runner: where a one-device run optimizes a group of pending latents
in one batch, it cuts the group into contiguous shards of whole micro-batches, one per
worker of a workers.Pool (one per GPU; each loads the models once), and gathers the results into
the same project files. Why the results are exact: every random number is counter-based per
latent (rng.py), the loss is a sum over latents and Adam is element-wise, so a latent's arithmetic
depends on nothing but the shape of the batch it is computed in (matrix kernels pick their
blocking by batch size; optimize.text_embeddings encodes each text alone) and on the torch thread
count. A shard is made of whole micro-batches of the one-device run, so every latent sees the same
batch: a run sharded over K workers equals the one-device run with the same micro-batch
(`--micro-batch M`; without it, sharding uses M = ceil(pending / K)) bit for bit on the CPU. On
CUDA, grid_sample's backward adds with atomics, so even two one-device runs differ at the last bit.

Each worker checkpoints its shard into the project (`checkpoints/shard-*.pt`, named by the shard's
latent keys) every `checkpoint_every_s`; a re-run resumes every latent from the newest checkpoint
row it finds. Finished shards are saved as they finish, so a failed or killed worker costs only
its own shard's steps since its last checkpoint.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import project as proj
from ..config import OptimizeConfig
from ..errors import MusividError
from ..progress import Bar
from ..runner import LatentGroup
from ..session import Session
from .workers import relay

log = logging.getLogger(__name__)

EMIT_EVERY_S = 0.5  # how often a worker reports its step


def split(n: int, workers: int, micro: int) -> list[range]:
    """[0, n) cut into blocks of `micro` latents, the blocks dealt out in order to at most
    `workers` contiguous shards, as evenly as they go (earlier shards take the extra block)."""
    if n <= 0:
        return []
    blocks = math.ceil(n / micro)
    k = min(workers, blocks)
    per, extra = divmod(blocks, k)
    out, b = [], 0
    for j in range(k):
        nb = per + (j < extra)
        out.append(range(b * micro, min(n, (b + nb) * micro)))
        b += nb
    return out


@dataclass(frozen=True)
class ShardTask:
    """Latents of one shard that start from the same step (state None: from scratch)."""

    id: int  # the task's number in its run (progress events name it)
    shard: int
    texts: list[str]
    variants: list[int]
    seeds: list[int]
    keys: list[str]
    cfg: OptimizeConfig
    state: Any  # optimize.OptimState | None
    checkpoint: Path
    models: Any = None  # the song's ModelConfig (its CLIP chosen by the lyrics' language); None: the pool's
    targets: list[Any] | None = None  # images.targets.Target per latent (image prompts with their files); None: texts


@dataclass(frozen=True)
class StepEvent:
    """A worker's progress on one task: `step` of `steps` done."""

    task: int
    step: int
    steps: int


def optimize_shard(host, emit, tasks: list[ShardTask]) -> list[Any]:
    """In a worker: optimize a shard's tasks in turn with the worker's models, checkpointing each;
    emits StepEvents. Returns each task's final OptimState (CPU)."""
    from ..images.optimize import Checkpointing, optimize

    out = []
    for task in tasks:
        last = {"t": 0.0}

        def report(info, task=task, last=last):
            now = time.monotonic()
            if now - last["t"] >= EMIT_EVERY_S or info.step == info.steps:
                last["t"] = now
                emit(StepEvent(task.id, info.step, info.steps))

        with Checkpointing(lambda state, task=task: proj.write_checkpoint(task.checkpoint, task.keys, state),
                           report) as on_step:
            res = optimize(host.model("biggan", task.models), host.model("clip", task.models), task.targets or task.texts,
                           task.seeds, task.cfg, state=task.state, device=host.device, amp_dtype=host.amp,
                           callback=on_step)
        out.append(res.state)
    return out


def resume_rows(checkpoints: list[proj.Checkpoint], keys: set[str], after: int) -> dict[str, Any]:
    """The newest checkpoint row (a one-latent OptimState) of each of `keys` past step `after`."""
    best: dict[str, Any] = {}
    for ck in checkpoints:
        if ck.state.step <= after:
            continue
        for i, k in enumerate(ck.keys):
            if k in keys and (k not in best or ck.state.step > best[k].step):
                best[k] = ck.state.select([i])
    return best


class Sharder:
    """A runner.Runner that optimizes each group of latents over the workers of `pool`."""

    def __init__(self, pool):
        self.pool = pool
        self._lock = threading.Lock()

    def __call__(self, session: Session, group: LatentGroup) -> None:
        from ..images.optimize import OptimState

        p, s = session.project, session.settings
        keys, state = group.keys, group.state
        n, start = len(group.items), group.start
        micro = s.optimize.micro_batch or math.ceil(n / self.pool.size)
        cfg = dataclasses.replace(s.optimize, micro_batch=micro)
        shards = split(n, self.pool.size, micro)
        rows = resume_rows(p.shard_checkpoints(), set(keys), start)
        log.info("optimizing %d latent(s) (%d line(s)) for %d step(s) over %d %s worker(s) (%s), micro-batches of %d",
                 n, len(set(group.texts)), cfg.steps, len(shards), "GPU" if self.pool.spec.gpu else "CPU",
                 self.pool.backend, micro)
        plans: list[list[ShardTask]] = []
        for j, r in enumerate(shards):
            groups: dict[int, list[int]] = {}  # start step -> latent indices, in order
            for i in r:
                row = rows.get(keys[i])
                groups.setdefault(row.step if row is not None else start, []).append(i)
            tasks = []
            for step, idx in sorted(groups.items()):
                if step > start:
                    log.info("shard %d/%d: resuming %d latent(s) from a checkpoint at step %d/%d", j + 1, len(shards),
                             len(idx), step, cfg.steps)
                    init = OptimState.stack([rows[keys[i]] for i in idx])
                else:  # where the pipeline starts the group: from scratch, or the saved states
                    init = state.select(idx) if state is not None else None
                sub = [keys[i] for i in idx]
                items = [group.items[i] for i in idx]
                tasks.append(ShardTask(sum(map(len, plans)) + len(tasks), j, [it.text for it in items],
                                       [it.variant for it in items], [it.seed for it in items], sub, cfg, init,
                                       p.shard_checkpoint_file(sub).absolute(),  # workers' cwd may differ
                                       s.models, [it.target if it.target is not None else it.text for it in items]))
            plans.append(tasks)
        self._gather(session, plans, cfg.steps)

    def _gather(self, session: Session, plans: list[list[ShardTask]], steps: int) -> None:
        """Run every shard, save each one's latents as it finishes; then fail if any shard did."""
        p = session.project
        tasks = [t for ts in plans for t in ts]
        done = {t.id: (t.state.step if t.state is not None else 0) for t in tasks}
        size = {t.id: len(t.keys) for t in tasks}
        bar = Bar(sum(size[t] * (steps - done[t]) for t in done), "optimizing", "latent-step", enabled=session.log.progress)

        def on_event(worker, ev):  # from the pool's threads
            if relay(ev, f"shard {worker + 1}"):
                return
            with self._lock:
                bar.update(size[ev.task] * (ev.step - done[ev.task]))
                done[ev.task] = ev.step
                session.log.report("optimize", min(done.values()), ev.steps)

        self.pool.on_event = on_event
        t0 = time.monotonic()
        running = {self.pool.submit(j, optimize_shard, ts): (j, ts) for j, ts in enumerate(plans)}
        failed = []
        try:
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    j, ts = running.pop(f)
                    try:
                        states = f.result()
                    except Exception as e:  # noqa: BLE001 - the other shards go on; reported below
                        failed.append((j, e))
                        log.warning("shard %d/%d failed: %s", j + 1, len(plans), e)
                        continue
                    for task, st in zip(ts, states):
                        for i, (key, text, v) in enumerate(zip(task.keys, task.texts, task.variants)):
                            p.save_latent(key, text, v, st.select([i]), steps)
                    p.save()
                    for task in ts:
                        task.checkpoint.unlink(missing_ok=True)
        finally:
            bar.close()
        session.log.add_seconds("optimize", time.monotonic() - t0)
        session.log.optimize_steps += steps - min(t.state.step if t.state is not None else 0 for t in tasks)
        if failed:
            j, e = failed[0]
            raise MusividError(f"{len(failed)} of {len(plans)} shard(s) failed (shard {j + 1}: {e}); the finished "
                               "ones are saved and the others' checkpoints kept: run the same command again to resume")
