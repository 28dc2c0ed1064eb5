"""GPU code paths (skipped without CUDA): no host sync in the step, bf16 autocast close to fp32,
the CUDA render. Full-size throughput is measured by benchmarks/gpu_bench.sh, not here."""
import dataclasses

import pytest
import torch

from musivid.config import ModelConfig, OptimizeConfig
from musivid.models.load import load_biggan, load_clip
from musivid.optimize import optimize
from musivid.rng import seed_for

pytestmark = pytest.mark.gpu
TEXTS = ["a red fox in the snow", "a lighthouse in a storm", "fireworks over a city", "a quiet lake"]
CFG = OptimizeConfig(steps=8, cutouts=8)


@pytest.fixture(scope="module")
def cuda_models():
    cfg = ModelConfig(untrained=True)
    return load_clip(cfg, "cuda"), load_biggan(cfg, "cuda")


def _seeds():
    return [seed_for(0, t, 0) for t in TEXTS]


def test_no_sync_in_the_cuda_step(cuda_models):
    clip, gen = cuda_models
    warm = optimize(gen, clip, TEXTS, _seeds(), dataclasses.replace(CFG, steps=2), device="cuda",
                    amp_dtype=torch.bfloat16)
    seen = []

    def cb(info):
        if info.step == 4:
            torch.cuda.set_sync_debug_mode("error")
            seen.append(info.step)

    try:
        optimize(gen, clip, TEXTS, _seeds(), CFG, state=warm.state, device="cuda", amp_dtype=torch.bfloat16,
                 callback=cb)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert seen == [4]


def test_bf16_autocast_tracks_fp32(cuda_models, tiny_models):
    clip, gen = cuda_models
    a = optimize(gen, clip, TEXTS, _seeds(), CFG, device="cuda", amp_dtype=torch.bfloat16)
    b = optimize(*reversed(tiny_models), TEXTS, _seeds(), CFG)  # fp32 CPU
    assert torch.allclose(a.scores, b.scores, atol=0.05)


def test_cuda_batch_equals_separate(cuda_models):
    clip, gen = cuda_models
    together = optimize(gen, clip, TEXTS, _seeds(), CFG, device="cuda")
    alone = optimize(gen, clip, TEXTS[:1], _seeds()[:1], CFG, device="cuda")
    assert torch.allclose(together.state.z[0], alone.state.z[0], atol=1e-3)


def test_compiled_step_runs(cuda_models):
    clip, gen = cuda_models
    res = optimize(gen, clip, TEXTS, _seeds(), dataclasses.replace(CFG, compile=True), device="cuda",
                   amp_dtype=torch.bfloat16)
    assert torch.isfinite(res.scores).all()
