"""GPU code paths (skipped without CUDA): no host sync in the step, bf16 autocast close to fp32,
the CUDA render. Full-size throughput is measured by benchmarks/gpu_bench.sh, not here."""
import dataclasses

import pytest
import torch

from musivid.config import ModelConfig, OptimizeConfig
from musivid.images.models.load import load_biggan, load_clip
from musivid.images.optimize import optimize
from musivid.rng import seed_for

pytestmark = pytest.mark.gpu
TEXTS = ["a red fox in the snow", "a lighthouse in a storm", "fireworks over a city", "a quiet lake"]
CFG = OptimizeConfig(steps=8, cutouts=8)


@pytest.fixture(scope="module")
def cuda_models():
    cfg = ModelConfig(untrained=True)
    return load_clip(cfg, "cuda", torch.bfloat16), load_biggan(cfg, "cuda", torch.bfloat16)


def _seeds():
    return [seed_for(0, t, 0) for t in TEXTS]


def test_no_sync_in_the_cuda_step(cuda_models):
    clip, gen = cuda_models
    warm = optimize(gen, clip, TEXTS, _seeds(), dataclasses.replace(CFG, steps=2), device="cuda",
                    amp_dtype=torch.bfloat16)
    seen = []

    def cb(info):  # steps 5..8 run with any host sync an error; the final copy to the host is allowed:
        # the callback of the last step is the last thing the loop does, so the mode is off again
        # before optimize() copies its final state
        if info.step == 4:
            torch.cuda.set_sync_debug_mode("error")
            seen.append(info.step)
        if info.step == CFG.steps:
            torch.cuda.set_sync_debug_mode("default")

    try:
        optimize(gen, clip, TEXTS, _seeds(), CFG, state=warm.state, device="cuda", amp_dtype=torch.bfloat16,
                 callback=cb)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert seen == [4]


def _losses(gen, clip, device, amp):
    out = []
    res = optimize(gen, clip, TEXTS, _seeds(), dataclasses.replace(CFG, steps=20), device=device, amp_dtype=amp,
                   callback=lambda info: out.append(info.loss.float().cpu()))
    return torch.stack(out), res


def test_bf16_autocast_tracks_fp32(cuda_models, tiny_models):
    """The CUDA bf16 path follows the CPU fp32 trajectory step by step: the tolerance of the CPU
    bf16 test (tests/test_optimize.py, where a run with lr 0.09 instead of 0.07 is 1 % away), doubled
    for the GPU's other summation order."""
    clip, gen = cuda_models
    a, ra = _losses(gen, clip, "cuda", torch.bfloat16)
    b, rb = _losses(*reversed(tiny_models), "cpu", None)  # fp32 CPU
    rel = ((a - b).abs() / b.abs()).max(dim=1).values
    print(f"CUDA bf16 vs CPU fp32: max {rel.max():.2e}, mean {rel.mean():.2e}")
    assert rel.max() < 1e-2 and rel.mean() < 5e-3
    assert torch.allclose(ra.scores, rb.scores, atol=6e-3)


def test_cuda_batch_equals_separate():
    cfg = ModelConfig(untrained=True)
    clip, gen = load_clip(cfg, "cuda"), load_biggan(cfg, "cuda")  # fp32: the comparison is about batching
    together = optimize(gen, clip, TEXTS, _seeds(), CFG, device="cuda")
    alone = optimize(gen, clip, TEXTS[:1], _seeds()[:1], CFG, device="cuda")
    assert torch.allclose(together.state.z[0], alone.state.z[0], atol=1e-3)


def test_compiled_step_runs(cuda_models):
    clip, gen = cuda_models
    res = optimize(gen, clip, TEXTS, _seeds(), dataclasses.replace(CFG, compile=True), device="cuda",
                   amp_dtype=torch.bfloat16)
    assert torch.isfinite(res.scores).all()


def test_fast_models_on_cuda_follow_the_cpu_originals(tiny_models):
    """bf16 weights on CUDA (what load_* gives there) against the fp32 originals on the CPU: within
    the CPU bf16 tolerance of tests/test_fast_models.py, doubled for the GPU's summation order."""
    clip_cpu, gen_cpu = tiny_models
    cfg = ModelConfig(untrained=True)
    clip, gen = load_clip(cfg, "cuda", torch.bfloat16), load_biggan(cfg, "cuda", torch.bfloat16)
    torch.manual_seed(0)
    z, c = torch.randn(4, gen.z_dim), torch.softmax(3 * torch.randn(4, 1000), 1)
    with torch.no_grad():
        ref = (gen_cpu.model(z, c, 1.0) + 1) / 2
        out = gen(z.cuda(), c.cuda(), 1.0).cpu()
        x = torch.rand(8, 3, clip.image_size, clip.image_size)
        e_ref, e_out = clip_cpu.encode_image(x), clip.embed_images(x.cuda()).cpu()
    assert next(gen.fast().buffers()).dtype == torch.bfloat16
    assert (out - ref).abs().max() < 2e-2 and (e_out - e_ref).abs().max() < 1e-2


def test_attention_runs_a_fused_kernel(cuda_models):
    """BigGAN's and CLIP's attention must not fall back to the math path (it would hold the full
    attention map): with only the fused backends allowed, both models still run, forward and back."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    clip, gen = cuda_models
    fused = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION]
    z = torch.randn(2, gen.z_dim, device="cuda", requires_grad=True)
    c = torch.softmax(torch.randn(2, 1000, device="cuda"), 1)
    with sdpa_kernel(fused):
        img = gen(z, c, 1.0, torch.bfloat16)
        x = torch.nn.functional.interpolate(img, size=(clip.image_size,) * 2)
        clip.embed_images(x, torch.bfloat16).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_the_compiled_step_is_traced_once_for_every_batch(cuda_models):
    """One static micro-batch per process: a later run with fewer latents is padded to it."""
    from torch._dynamo.utils import counters

    clip, gen = cuda_models
    cfg = dataclasses.replace(CFG, steps=2, compile=True)
    optimize(gen, clip, TEXTS, _seeds(), cfg, device="cuda", amp_dtype=torch.bfloat16)
    before = dict(counters["stats"])
    res = optimize(gen, clip, TEXTS[:3], _seeds()[:3], cfg, device="cuda", amp_dtype=torch.bfloat16)
    optimize(gen, clip, TEXTS[:1], _seeds()[:1], cfg, device="cuda", amp_dtype=torch.bfloat16)
    assert dict(counters["stats"]).get("unique_graphs", 0) == before.get("unique_graphs", 0)
    assert res.micro_batch == len(TEXTS) and torch.isfinite(res.scores).all()


def test_cuda_render_through_pinned_buffers(cuda_models, tmp_path):
    import av
    import numpy as np

    from conftest import write_audio
    from musivid.config import RenderConfig
    from musivid.video.render import render

    _, gen = cuda_models

    class Source:
        def __len__(self):
            return 50

        def latents(self, lo, hi):
            g = torch.Generator().manual_seed(lo)
            return torch.randn(hi - lo, gen.z_dim, generator=g), torch.softmax(torch.randn(hi - lo, 1000, generator=g), 1)

    audio = write_audio(tmp_path / "a.wav", 0.2 * np.sin(np.arange(22050 * 3) / 7.0), 22050)
    res = render(gen, Source(), audio, tmp_path / "v.mp4", RenderConfig(fps=25, size=128, batch=16),
                 amp_dtype=torch.bfloat16)
    with av.open(str(res.path)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 50
