"""Out of memory anywhere in a step (forward, backward, Adam's step, best-tracking) halves the
micro-batch and redoes the step from exactly the state it started from; the failed step's tensors
are freed before the allocator's cache is emptied. OOMs are injected on the CPU (tiny models, fp32).

The reference for every injected run is an OOM-free run that does the steps before the OOM with
the whole batch and the rest with the halved micro-batch (a resume, which is exact): every latent's
state must be bit-identical to it."""
import dataclasses
import gc
import weakref

import pytest
import torch

from musivid.images import optimize as opt_mod
from musivid.config import OptimizeConfig
from musivid.images.optimize import optimize
from musivid.rng import seed_for

TEXTS = ["a red fox in the snow", "a lighthouse in a storm", "fireworks over a city"]
CFG = OptimizeConfig(steps=5, cutouts=4)
AT = 2  # the step (0-based) that runs out of memory
OOM = "CUDA out of memory (injected)"


def _seeds():
    return [seed_for(0, t, 0) for t in TEXTS]


@pytest.fixture(scope="module")
def expected(tiny_models):
    """Steps 0..AT-1 with all 3 latents per batch, then micro-batches of 2 (what a halving gives)."""
    clip, gen = tiny_models
    first = optimize(gen, clip, TEXTS, _seeds(), dataclasses.replace(CFG, steps=AT))
    return optimize(gen, clip, TEXTS, _seeds(), dataclasses.replace(CFG, micro_batch=2), state=first.state)


def _same_state(a, b):
    for k in ("z", "cls", "best_z", "best_cls", "best_score"):
        assert torch.equal(getattr(a, k), getattr(b, k)), k
    assert a.step == b.step
    for k in ("exp_avg", "exp_avg_sq"):
        for x, y in zip(a.adam[k], b.adam[k]):
            assert torch.equal(x, y), k


class _Once:
    """Raises an injected OOM at the AT-th call of the wrapped point, once, before or after the real call."""

    def __init__(self, after: bool = False):
        self.calls, self.raised, self.after = 0, 0, after

    def hit(self) -> bool:
        self.calls += 1
        if self.calls == AT + 1 and not self.raised:
            self.raised += 1
            return True
        return False


class _OomInBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        raise torch.OutOfMemoryError(OOM)


def _inject(monkeypatch, where: str, after: bool = False) -> _Once:
    once = _Once(after)
    if where in ("forward", "backward"):
        real = opt_mod.Objective.__call__

        def call(self, *a):
            boom = once.hit()
            if boom and where == "forward":
                raise torch.OutOfMemoryError(OOM)
            loss, score = real(self, *a)
            return (_OomInBackward.apply(loss) if boom else loss), score

        monkeypatch.setattr(opt_mod.Objective, "__call__", call)
    elif where == "adam":
        real = torch.optim.Adam.step

        def step(self, *a, **k):
            boom = once.hit()
            if boom and not after:
                raise torch.OutOfMemoryError(OOM)
            out = real(self, *a, **k)  # after: parameters, moments and step count already changed
            if boom:
                raise torch.OutOfMemoryError(OOM)
            return out

        monkeypatch.setattr(torch.optim.Adam, "step", step)
    else:
        real = opt_mod.track_best

        def track(*a, **k):
            boom = once.hit()
            if boom and not after:
                raise torch.OutOfMemoryError(OOM)
            real(*a, **k)  # after: the kept latents and scores already changed
            if boom:
                raise torch.OutOfMemoryError(OOM)

        monkeypatch.setattr(opt_mod, "track_best", track)
    return once


@pytest.mark.parametrize("where,after", [("forward", False), ("backward", False), ("adam", False), ("adam", True),
                                         ("best", False), ("best", True)])
def test_oom_anywhere_in_the_step_halves_and_redoes_it(tiny_models, expected, monkeypatch, caplog, where, after):
    clip, gen = tiny_models
    steps = []
    once = _inject(monkeypatch, where, after)
    with caplog.at_level("WARNING", logger="musivid"):
        res = optimize(gen, clip, TEXTS, _seeds(), CFG, callback=lambda i: steps.append(i.step))
    monkeypatch.undo()
    assert once.raised == 1
    assert steps == list(range(1, CFG.steps + 1))  # the failed step was redone, none skipped or repeated
    assert res.micro_batch == 2 and res.steps_run == CFG.steps
    assert [r.getMessage()[:49] for r in caplog.records] == ["out of GPU memory with 3 latents per batch: retry"]
    _same_state(res.state, expected.state)


def test_ema_state_is_not_averaged_twice_by_a_redone_step(tiny_models, monkeypatch):
    clip, gen = tiny_models
    cfg = dataclasses.replace(CFG, ema_decay=0.8)
    first = optimize(gen, clip, TEXTS, _seeds(), dataclasses.replace(cfg, steps=AT))
    ref = optimize(gen, clip, TEXTS, _seeds(), dataclasses.replace(cfg, micro_batch=2), state=first.state)
    _inject(monkeypatch, "best", after=True)
    _same_state(optimize(gen, clip, TEXTS, _seeds(), cfg).state, ref.state)


def test_the_failed_steps_tensors_are_freed_before_the_cache_is_emptied(tiny_models, monkeypatch):
    clip, gen = tiny_models
    real = opt_mod.Objective.__call__
    held, seen = [], []

    def call(self, *a):
        loss, score = real(self, *a)
        if not held:  # an activation that only the failed step's frames (the traceback) hold
            activation = torch.ones(1000) * 2
            held.append(weakref.ref(activation))
            raise torch.OutOfMemoryError(OOM)
        return loss, score

    monkeypatch.setattr(opt_mod.Objective, "__call__", call)
    monkeypatch.setattr(opt_mod, "_free_cache", lambda device: seen.append(held[0]() is None))
    gc.disable()  # freed by reference counting, not by a later garbage collection
    try:
        optimize(gen, clip, TEXTS, _seeds(), dataclasses.replace(CFG, steps=1))
    finally:
        gc.enable()
    assert seen == [True]


def test_compiled_path_pads_to_one_static_size_and_an_oom_makes_the_halved_size_static(tiny_models, monkeypatch,
                                                                                       caplog):
    """The compiled step (CUDA only; here its bookkeeping with the eager objective) sees one static
    micro-batch size: the last micro-batch is padded to it. An OOM halves it, and the halved size
    becomes the static size (one more trace: padding to the old size would need the memory that ran
    out), which later runs in the process are padded to."""
    clip, gen = tiny_models
    sizes = []
    entry = opt_mod.StepFunction(None)  # the step function and its static micro-batch size
    real = opt_mod.Objective.__call__

    def call(self, z, *a):
        sizes.append(z.shape[0])
        if z.shape[0] == 5:  # the first micro-batch of all 5 latents runs out of memory
            raise torch.OutOfMemoryError(OOM)
        return real(self, z, *a)

    def step_function(generator, clip_, cfg, amp, compiled):
        entry.fn = entry.fn or opt_mod.Objective(generator, clip_, cfg, amp)
        return entry

    monkeypatch.setattr(opt_mod, "_compiles", lambda cfg, device: True)
    monkeypatch.setattr(opt_mod, "step_function", step_function)
    monkeypatch.setattr(opt_mod.Objective, "__call__", call)
    texts = TEXTS + ["a quiet lake", "a city at night"]
    seeds = [seed_for(0, t, 0) for t in texts]
    with caplog.at_level("WARNING", logger="musivid"):
        res = optimize(gen, clip, texts, seeds, dataclasses.replace(CFG, steps=2))
    assert sizes == [5] + [3, 3] * 2  # 5 -> OOM -> 3 + 2 padded to 3
    assert entry.static_size == 3 and res.micro_batch == 3
    assert "the compiled step is traced again for that size" in caplog.records[0].getMessage()
    sizes.clear()
    optimize(gen, clip, texts[:2], seeds[:2], dataclasses.replace(CFG, steps=1))
    assert sizes == [3]  # a later, smaller run is padded to the static size: no new trace
