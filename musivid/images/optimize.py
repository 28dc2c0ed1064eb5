"""The batched latent optimizer: every (segment, variant) of a song in one batch, one step at a time.

Per step: one generator pass for all N latents, one grid_sample for all N×C cutouts, one CLIP
pass, one backward (frozen models: input gradients only), one fused Adam step. The loss is a sum
over latents, so each latent's gradient, and Adam's element-wise update, is what it would be alone.
All randomness is counter-based per latent (musivid/rng.py), so batching changes no random number.
The arithmetic is per latent too, but matrix kernels pick their blocking by batch size (CPU and
GPU): a latent's result is bit-identical wherever it is computed in the same micro-batch (same
members, same order), and equal to ~1e-6 otherwise. Sharding (musivid/shard.py) keeps micro-batches.
No host synchronisation happens inside the step: scores and best latents stay on the device.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch

from . import cutouts as cut
from .targets import Target, start_classes, target_tensors
from .. import rng
from ..config import OptimizeConfig
from ..errors import MusividError
from ..progress import Bar

log = logging.getLogger(__name__)

# streams of the counter-based RNG (each a separate sequence per latent seed)
STREAM_Z = 1
STREAM_CLS = 2
STREAM_CUT = 1_000  # + step


@dataclass
class OptimState:
    """Everything needed to continue an optimization exactly where it stopped.

    Row i of every tensor belongs to latent i, so a state can be split by latent (`select`) and
    put back together from per-latent pieces (`stack`): finished lines keep their state, and a
    later run with more steps continues them.
    """

    seeds: torch.Tensor  # (N,) int64
    z: torch.Tensor  # (N, z_dim) or (N, rows, z_dim)
    cls: torch.Tensor  # (N, num_classes) class logits (class vector = sigmoid)
    best_z: torch.Tensor
    best_cls: torch.Tensor
    best_score: torch.Tensor  # (N,) best mean CLIP cosine seen so far (-inf before the first step)
    step: int = 0
    # Adam's moments per parameter [z, cls]: {"exp_avg": [mz, mc], "exp_avg_sq": [vz, vc]}
    # (rows per latent, like the tensors above); the step count is `step`. Empty before step 1.
    adam: dict = field(default_factory=dict)

    _ROWS = ("seeds", "z", "cls", "best_z", "best_cls", "best_score")

    def to(self, device: torch.device | str) -> "OptimState":
        """A copy on `device` (always a copy: optimizing it never changes this state)."""
        mv = {k: getattr(self, k).to(device, copy=True) for k in self._ROWS}
        adam = {k: [t.to(device, copy=True) for t in v] for k, v in self.adam.items()}
        return OptimState(**mv, step=self.step, adam=adam)

    def select(self, idx: Sequence[int]) -> "OptimState":
        """The sub-state of some latents."""
        i = torch.as_tensor(list(idx), dtype=torch.long, device=self.z.device)
        adam = {k: [t[i] for t in v] for k, v in self.adam.items()}
        return OptimState(*(getattr(self, k)[i] for k in self._ROWS), step=self.step, adam=adam)

    @staticmethod
    def stack(parts: Sequence["OptimState"]) -> "OptimState":
        """Latents optimized for the same number of steps, put back into one batch."""
        if len({p.step for p in parts}) != 1:
            raise ValueError("states to stack must be at the same step")
        rows = {k: torch.cat([getattr(p, k) for p in parts]) for k in OptimState._ROWS}
        adam = {}
        if all(p.adam for p in parts):
            adam = {k: [torch.cat([p.adam[k][j] for p in parts]) for j in range(2)] for k in parts[0].adam}
        return OptimState(**rows, step=parts[0].step, adam=adam)


@dataclass(frozen=True)
class StepInfo:
    step: int  # steps completed
    steps: int  # steps in this run
    state: OptimState  # live state (device tensors; reading them syncs, so do it sparingly)
    loss: torch.Tensor  # (N,) this step's loss per latent (device tensor)
    checkpoint_due: bool  # checkpoint_every_s has passed since the last one


@dataclass(frozen=True)
class OptimizeResult:
    z: torch.Tensor  # (N, ...) best latents, CPU float32
    classes: torch.Tensor  # (N, num_classes) class vectors (sigmoid of the logits), CPU
    scores: torch.Tensor  # (N,) best mean CLIP cosine per latent
    steps_run: int  # steps executed in this call
    state: OptimState  # final state (CPU), for checkpoints and resuming
    micro_batch: int = 0  # latents per forward/backward at the end (< N after OOM halving)


def init_state(seeds: Sequence[int], z_dim: int, num_classes: int, cfg: OptimizeConfig,
               z_rows: int = 1, device: str | torch.device = "cpu") -> OptimState:
    """Initial latents from each latent's own seed: z ~ N(0, 1), logits ~ N(-3.9, 0.3)."""
    s = torch.as_tensor(list(seeds), dtype=torch.long, device=device)
    n = len(s)
    rows = z_rows if cfg.per_layer_z else 1
    z = rng.normal(s, STREAM_Z, rows * z_dim).view(n, rows, z_dim)
    z = z[:, 0] if not cfg.per_layer_z else z
    cls = cfg.class_init_mean + cfg.class_init_std * rng.normal(s, STREAM_CLS, num_classes)
    return OptimState(s, z.contiguous(), cls.contiguous(), z.clone(), cls.clone(),
                      torch.full((n,), -float("inf"), device=device), 0, {})


def latent_loss(z: torch.Tensor, cls_logits: torch.Tensor, cfg: OptimizeConfig) -> torch.Tensor:
    """(N,) big-sleep's regularisers per latent: z moments near N(0, 1) and a sparse class vector."""
    rows = z if z.dim() == 3 else z[:, None]  # (N, R, z_dim)
    mean = rows.mean(dim=2)
    std = rows.std(dim=2)
    lat = (1 - std).abs().mean(1) + rows.mean(dim=(1, 2)).abs() + 4 * rows.square().mean(dim=(1, 2)).clamp_min(1.0)
    zs = (rows - mean[..., None]) / std[..., None].clamp_min(1e-6)
    skew = zs.pow(3).mean(2).abs().mean(1)
    kurt = (zs.pow(4).mean(2) - 3).abs().mean(1)
    lat = lat + (skew + kurt) / rows.shape[1]
    probs = torch.sigmoid(cls_logits)
    smallest = torch.topk(probs, k=probs.shape[1] - 1, dim=1, largest=False).values
    cls = (cfg.class_sparsity * smallest).square().mean(1)
    return cfg.latent_reg * lat + cls


def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor,
              weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """image_emb (N, C, D), text_emb (N, D), unit norm → (loss (N,), mean cosine (N,)).

    The spherical distance 2·arcsin(|a-b|/2)² of the VQGAN/BigGAN+CLIP notebooks, ×75 so that its
    gradient matches big-sleep's -100·cos at a typical cosine of 0.3.

    Several targets per latent (images/targets.py): text_emb (N, T, D) with `weights` (N, T): the
    weighted sum of the distances (a negative weight pushes away; 0: padding), and as the score the
    mean cosine weighted by the positive weights.
    """
    if weights is None:
        cos = (image_emb * text_emb[:, None]).sum(-1)  # (N, C)
        d = (image_emb - text_emb[:, None]).norm(dim=-1).div(2).clamp(max=1.0).arcsin().pow(2).mul(2)
        return 75.0 * d.mean(1), cos.mean(1)
    cos = (image_emb[:, None] * text_emb[:, :, None]).sum(-1)  # (N, T, C)
    d = (image_emb[:, None] - text_emb[:, :, None]).norm(dim=-1).div(2).clamp(max=1.0).arcsin().pow(2).mul(2)
    pos = weights.clamp_min(0.0)
    score = (pos * cos.mean(2)).sum(1) / pos.sum(1).clamp_min(1e-12)
    return 75.0 * (weights * d.mean(2)).sum(1), score


class Objective:
    """One micro-batch's loss: generator → cutouts → CLIP → per-latent loss. Pure given inputs.

    The models run their fast forwards (models/biggan.py FastBigGAN, models/clip.py FastViT) with
    weights stored in `amp_dtype` (default: the models' own dtype), built here once, so nothing
    is built or cast inside a compiled step; no autocast region is needed. The generator's images
    and the cutout grid stay float32 (a bf16 grid would move sample positions by up to ~0.25 px)."""

    def __init__(self, generator, clip, cfg: OptimizeConfig, amp_dtype: torch.dtype | None = None):
        self.g, self.clip, self.cfg, self.amp = generator, clip, cfg, amp_dtype
        self.gnet = generator.fast(amp_dtype)
        self.vnet = clip.fast(amp_dtype)

    def __call__(self, z, cls_logits, text_emb, seeds, step, weights=None, class_mask=None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """text_emb (n, D), or (n, T, D) with `weights` (n, T); class_mask (n, num_classes) of 0/1
        confines each class vector (None: every class). See images/targets.py."""
        classes = torch.sigmoid(cls_logits)
        if class_mask is not None:
            classes = classes * class_mask
        images = self.gnet(z, classes, self.cfg.truncation)  # (n, 3, R, R) float32
        boxes = cut.sample_boxes(seeds, step + STREAM_CUT, self.cfg.cutouts,
                                 size_min=self.cfg.cutout_min, size_max=self.cfg.cutout_max,
                                 resolution=images.shape[-1])
        pieces = cut.stacked_cutouts(images, boxes, self.clip.image_size)  # (n, 3, C·S, S) float32
        emb = self.vnet(pieces, self.cfg.cutouts).view(z.shape[0], self.cfg.cutouts, -1)  # unit norm, float32
        loss, score = clip_loss(emb, text_emb, weights)
        return loss + latent_loss(z.float(), cls_logits.float(), self.cfg), score


@dataclass
class StepFunction:
    """A step function and the one static micro-batch size it is traced for (0: none yet; the eager
    objective never has one)."""

    fn: Callable
    static_size: int = 0


# torch.compile'd objectives: one per (models, objective settings, dtype) for the whole process,
# each with ONE static micro-batch size (the last micro-batch is padded to it), so a compiled step
# is traced once, not again for every optimize() call, remainder or new batch size
_COMPILED: dict[tuple, StepFunction] = {}


def _objective_key(generator, clip, cfg: OptimizeConfig, amp_dtype) -> tuple:
    return (id(generator), id(clip), amp_dtype, cfg.cutouts, cfg.cutout_min, cfg.cutout_max, cfg.truncation,
            cfg.latent_reg, cfg.class_sparsity)


def step_function(generator, clip, cfg: OptimizeConfig, amp_dtype, compiled: bool) -> StepFunction:
    """The step function for this process. The compiled one is made once per key and keeps the
    objects it was made with alive (it holds them)."""
    if not compiled:
        return StepFunction(Objective(generator, clip, cfg, amp_dtype))
    key = _objective_key(generator, clip, cfg, amp_dtype)
    if key not in _COMPILED:
        _COMPILED[key] = StepFunction(torch.compile(Objective(generator, clip, cfg, amp_dtype), dynamic=False))
    return _COMPILED[key]


def _padded(parts: tuple[torch.Tensor, ...], size: int) -> tuple[torch.Tensor, ...]:
    """Rows repeated from the last one (detached: they get no gradient) up to `size` rows."""
    k = size - parts[0].shape[0]
    return tuple(torch.cat([p, p[-1:].detach().expand(k, *p.shape[1:])]) for p in parts)


def _is_oom(e: BaseException) -> bool:
    return isinstance(e, torch.OutOfMemoryError) or "out of memory" in str(e).lower()


def _compiles(cfg: OptimizeConfig, device: torch.device) -> bool:
    return cfg.compile and device.type == "cuda"


def _halve(micro: int, compiled: bool) -> int:
    """The micro-batch after an OOM with `micro` latents per batch. Compiled, the halved size becomes
    the process's static size: traced once more (padding to the old size would need the memory that
    just ran out), then later batches are padded to it."""
    if micro == 1:
        raise MusividError("out of GPU memory even with one latent per batch: use a smaller --cutouts, --size "
                           "or a smaller model, or --device cpu")
    new = (micro + 1) // 2
    log.warning("out of GPU memory with %d latents per batch: retrying with micro-batches of %d (slower; a smaller "
                "--cutouts or --size needs less memory)%s", micro, new,
                "; the compiled step is traced again for that size" if compiled else "")
    return new


def _free_cache(device: torch.device) -> None:
    """Give the allocator's cached blocks back after an OOM (the failed step's tensors are freed by then)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def optimize(generator, clip, texts: Sequence["str | Target"], seeds: Sequence[int], cfg: OptimizeConfig, *,
             state: OptimState | None = None, device: str | torch.device = "cpu",
             amp_dtype: torch.dtype | None = None, progress: bool = False, callback: Callable[[StepInfo], None] | None = None
             ) -> OptimizeResult:
    """Optimize N = len(texts) latents (one per (segment, variant); texts may repeat) for
    cfg.steps steps in total, continuing from `state` if given (resume). Each text is a line's
    images.targets.Target (its prompt, style, texts to avoid, image prompts, classes) or a Target's
    key (a plain prompt is its own key).

    `amp_dtype` (e.g. torch.bfloat16 on CUDA) enables autocast; None runs in the models' dtype.
    `callback` is called after every step with a StepInfo.
    """
    device = torch.device(device)
    n = len(texts)
    if n != len(seeds):
        raise ValueError("texts and seeds must have the same length")
    targets = target_tensors(clip, texts, generator.num_classes, text_embeddings)  # computed once
    if state is None:
        state = init_state(seeds, generator.z_dim, generator.num_classes, cfg, generator.n_z_rows, device)
        if targets.class_mask is not None:  # named classes: start on them
            cls0 = start_classes(state.cls, targets.class_mask.to(device))
            state = dataclasses.replace(state, cls=cls0, best_cls=cls0.clone())
    else:
        state = state.to(device)
    text_emb = targets.emb.to(device)  # (N, D), or (N, T, D) with weights (N, T)
    extra = tuple(t.to(device) for t in (targets.weights, targets.class_mask) if t is not None)
    z = state.z.detach().clone().requires_grad_(True)
    cls = state.cls.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z, cls], lr=cfg.lr, fused=True)  # fused: no .item() on the step count
    resumed = bool(state.adam) and state.step > 0
    for j, p in enumerate((z, cls)):  # Adam's state from the start (zeros before step 1, as Adam makes it)
        opt.state[p] = {"step": torch.tensor(float(state.step if resumed else 0), dtype=torch.float32, device=device)}
        for k in ("exp_avg", "exp_avg_sq"):
            opt.state[p][k] = state.adam[k][j].to(device, copy=True) if resumed else torch.zeros_like(p)
    compiled = _compiles(cfg, device)
    step = step_function(generator, clip, cfg, amp_dtype, compiled)
    live = OptimState(state.seeds, z, cls, state.best_z, state.best_cls, state.best_score, state.step)
    # a step changes these rows only: copied before it changes any (one multi-tensor copy, no sync) and put
    # back if it runs out of memory, so a redone step starts from exactly the same state
    kept = [z, cls, live.best_z, live.best_cls, live.best_score] + [opt.state[p][k] for k in ("exp_avg", "exp_avg_sq")
                                                                   for p in (z, cls)]
    undo = [t.detach().clone() for t in kept]
    micro = cfg.micro_batch or step.static_size or n
    start = state.step
    last_ckpt = time.monotonic()
    score = torch.empty(n, device=device)
    step_loss = torch.empty(n, device=device)
    bar = Bar(cfg.steps, "optimizing", "step", enabled=progress, initial=start)
    step_t = torch.tensor(live.step, device=device)  # on the device: no host copy per step
    cudnn_benchmark = torch.backends.cudnn.benchmark
    if device.type == "cuda":  # static shapes: cuDNN's autotuned convolutions pay after the first step
        torch.backends.cudnn.benchmark = True
    try:
        while live.step < cfg.steps:
            try:  # one step: micro-batches, best-tracking, Adam; on OOM anywhere, halve and redo it
                with torch.no_grad():
                    torch._foreach_copy_(undo, kept)  # the state this step starts from
                for lo in range(0, n, micro):
                    hi = min(n, lo + micro)
                    rows = (z[lo:hi], cls[lo:hi], text_emb[lo:hi], live.seeds[lo:hi], *(t[lo:hi] for t in extra))
                    if compiled:  # one static size: pad the last micro-batch (no new graph)
                        step.static_size = micro
                        rows = _padded(rows, micro) if hi - lo < micro else rows
                    loss, sc = step.fn(*rows[:4], step_t, *rows[4:])
                    loss, sc = loss[:hi - lo], sc[:hi - lo]
                    loss.sum().backward()
                    score[lo:hi] = sc.detach()
                    step_loss[lo:hi] = loss.detach()
                loss = sc = rows = None
                with torch.no_grad():
                    track_best(live, z, cls, score, cfg)
                opt.step()
                oom = False
            except Exception as e:  # noqa: BLE001 - only OOM is handled
                if not _is_oom(e):
                    raise
                oom = True
            if oom:  # out of the except block: the exception, its traceback and their activations are gone
                loss = sc = rows = None
                micro = _halve(micro, compiled)
                with torch.no_grad():
                    torch._foreach_copy_(kept, undo)
                    for p in (z, cls):
                        opt.state[p]["step"].fill_(float(live.step))
                opt.zero_grad(set_to_none=True)
                _free_cache(device)
                continue
            opt.zero_grad(set_to_none=False)
            step_t.add_(1)
            live.step += 1
            bar.update(1)
            if callback is not None:
                now = time.monotonic()
                due = now - last_ckpt >= cfg.checkpoint_every_s
                if due:
                    last_ckpt = now
                live.adam = _moments(opt, z, cls)
                callback(StepInfo(live.step, cfg.steps, live, step_loss, due))
    finally:
        torch.backends.cudnn.benchmark = cudnn_benchmark
        bar.close()
        live.adam = _moments(opt, z, cls) if live.step > 0 else {}
    final = snapshot(live)
    return OptimizeResult(final.best_z.float(), torch.sigmoid(final.best_cls.float()),
                          final.best_score.float(), live.step - start, final, micro)


def track_best(live: OptimState, z: torch.Tensor, cls: torch.Tensor, score: torch.Tensor, cfg: OptimizeConfig) -> None:
    """Update the kept latents from this step's (pre-update) latents and scores, on the device."""
    if cfg.ema_decay > 0:  # an EMA of the latents (and of their scores)
        _ema_update(live, z, cls, score, cfg.ema_decay)
    else:  # keep the best pre-update latents (the scores belong to them)
        better = score > live.best_score
        live.best_score.copy_(torch.where(better, score, live.best_score))
        bz = better.view(-1, *([1] * (z.dim() - 1)))
        live.best_z.copy_(torch.where(bz, z, live.best_z))
        live.best_cls.copy_(torch.where(better[:, None], cls, live.best_cls))


def _ema_update(live: OptimState, z, cls, score, decay: float) -> None:
    first = torch.isinf(live.best_score)  # nothing averaged yet: start from this step's values
    w = torch.where(first, 1.0, 1.0 - decay)  # (N,) weight of the new value
    wz = w.view(-1, *([1] * (z.dim() - 1)))
    live.best_z.copy_(live.best_z.where(~first.view_as(wz), z) * (1 - wz) + z * wz)
    live.best_cls.copy_(live.best_cls.where(~first[:, None], cls) * (1 - w[:, None]) + cls * w[:, None])
    live.best_score.copy_(torch.where(first, score, live.best_score * (1 - w) + score * w))


def _moments(opt: torch.optim.Adam, z: torch.Tensor, cls: torch.Tensor) -> dict:
    """References (no copy, no sync) to Adam's per-element moments of z and cls."""
    if z not in opt.state:
        return {}
    return {k: [opt.state[z][k], opt.state[cls][k]] for k in ("exp_avg", "exp_avg_sq")}


def snapshot(live: OptimState) -> OptimState:
    """A detached CPU copy of a (live) state, safe to save while optimization goes on."""
    def cpu(t):
        return t.detach().to("cpu", copy=True)

    adam = {k: [cpu(t) for t in v] for k, v in live.adam.items()}
    return OptimState(*(cpu(getattr(live, k)) for k in OptimState._ROWS), step=live.step, adam=adam)


class Checkpointing:
    """The one way a run keeps its steps: `with Checkpointing(save, then) as on_step:
    optimize(..., callback=on_step)` saves a snapshot through `save(state)` whenever one is due
    (cfg.checkpoint_every_s) and, when the block ends in an exception (an interrupt, a crash, even
    while the results are being saved), the last step's state; `then(info)` is called after every
    step (progress reports)."""

    def __init__(self, save: Callable[[OptimState], None], then: Callable[[StepInfo], None] | None = None):
        self.save, self.then = save, then
        self.last: StepInfo | None = None

    def __call__(self, info: StepInfo) -> None:
        self.last = info
        if info.checkpoint_due:
            self.save(snapshot(info.state))
        if self.then is not None:
            self.then(info)

    def __enter__(self) -> "Checkpointing":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self.last is not None:
            try:
                self.save(snapshot(self.last.state))
            except Exception as e:  # noqa: BLE001 - the first error decides; this one is only said
                log.warning("the checkpoint could not be saved on the way out (%s): the steps since the last one "
                            "are lost", e)


def text_embeddings(clip, texts: Sequence[str]) -> torch.Tensor:
    """(N, D) embedding of each text. Each distinct text is encoded alone: matrix kernels pick
    their blocking by batch size, so encoding texts together would make a line's embedding (and
    so its latents, at the last bit) depend on which other lines share its run or shard."""
    uniq = list(dict.fromkeys(texts))
    emb = torch.cat([clip.encode_text([t]) for t in uniq])  # (U, D); once per run, so the loop is cheap
    index = torch.tensor([uniq.index(t) for t in texts], device=emb.device)
    return emb[index].float()


# ---- memory: how many latents one micro-batch may hold ----------------------------------------------
# Activation memory autograd keeps for backward, per latent: a part for the generator (by its output
# side, squared) and a part per cutout for CLIP's image tower. Full size: counted by the census
# (perf/census.py, `musivid bench --census`: BigGAN-deep-256 + ViT-B/32 on the CUDA path, bf16
# weights) at 1 and 8 cutouts, 201 and 265 MiB per latent: 192 MiB + 9.07 MiB per cutout; the
# float32 CPU path keeps twice that. Tiny (--untrained, float32): 1.12 MiB + 0.055 MiB per cutout,
# counted with saved_tensors_hooks. Other CLIPs scale by their image tower's tokens x layers x width.
MIB = 2 ** 20
_FULL_GEN_256 = 192 * MIB  # bf16, 256 px
_FULL_PER_CUTOUT = 9.07 * MIB  # bf16, ViT-B/32 at 224 px
_TINY_GEN, _TINY_PER_CUTOUT, _TINY_WEIGHTS = 1.12 * MIB, 0.055 * MIB, 16 * MIB
_CLIP_SCALE = {"ViT-B-32": 1.0, "ViT-B-16": 4.0, "ViT-L-14": 14.0, "xlm-roberta-base-ViT-B-32": 1.0}
PEAK = 1.5  # the step's peak over what it keeps: the backward's transients, the allocator's slack
OVERHEAD = 768 * MIB  # the process itself on the CPU (torch, the decoded song, the frames' buffers)


@dataclass(frozen=True)
class StepMemory:
    """What one optimizer step needs, estimated before the first: a fixed part (the models'
    weights, with the bf16 copies the CUDA path makes, and on the CPU the process) and a part per
    latent of the micro-batch."""

    fixed: int  # bytes
    per_latent: int  # bytes

    def total(self, batch: int) -> int:
        return self.fixed + batch * self.per_latent

    def largest_batch(self, available: int) -> int:
        """The most latents one micro-batch may hold in `available` bytes (0: not even one)."""
        return max(0, (available - self.fixed) // self.per_latent)


def step_memory(models, cutouts: int, device_type: str = "cpu") -> StepMemory:
    """The memory of one optimizer step (see StepMemory) for the models of `models` (a
    config.ModelConfig, its CLIP resolved), `cutouts` per latent, on a "cpu" or "cuda" device."""
    from .models.registry import REGISTRY

    if models.untrained:
        return StepMemory(_TINY_WEIGHTS + (OVERHEAD if device_type == "cpu" else 0),
                          int(PEAK * (_TINY_GEN + cutouts * _TINY_PER_CUTOUT)))
    clip, gen = REGISTRY.get(models.clip), REGISTRY.get(models.biggan)
    side = int(gen.arch.rsplit("-", 1)[1]) if gen is not None else 256
    width = 2 if device_type == "cuda" else 4  # bytes an activation takes: bf16 on CUDA, float32 on the CPU
    per = (width / 2) * (_FULL_GEN_256 * (side / 256) ** 2
                         + cutouts * _FULL_PER_CUTOUT * _CLIP_SCALE.get(clip.arch if clip else "", 1.0))
    weights = sum(e.files[0].size or 0 for e in (clip, gen) if e is not None) or 1_500 * MIB
    if device_type == "cuda":
        weights = int(weights * 1.5)  # the float32 weights and the fast forwards' bf16 copies
    return StepMemory(int(weights) + (OVERHEAD if device_type == "cpu" else 0), int(PEAK * per))


def available_memory(device) -> int | None:
    """Bytes free for a run on `device` (a torch.device): the GPU's free memory
    (torch.cuda.mem_get_info), or the CPU's available RAM (/proc/meminfo's MemAvailable, else
    os.sysconf); None where it cannot be told."""
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except Exception:  # noqa: BLE001 - no driver answer: nothing to go by
            return None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
