"""`musivid bench`: latent-steps/s of the batched optimizer vs the one-prompt reference loop,
measured on the same device in the same run, with achieved TFLOP/s and the fraction of the
device's roofline."""
from __future__ import annotations

import copy
import dataclasses
import importlib.util
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .config import ModelConfig, OptimizeConfig
from .errors import MusividError

# dense bf16 tensor-core peaks (FLOP/s) for the roofline; other devices report no fraction
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "RTX 4090": 165e12}
TEXTS = ["a red fox runs through the snow", "waves crash on a golden beach", "the city lights burn",
         "a lighthouse against the storm", "mountains above the clouds", "fireworks in the summer sky",
         "an old train in the station", "a small boat on a quiet lake"]


@dataclass(frozen=True)
class BenchConfig:
    device: str = "auto"
    untrained: bool = False  # tiny random models
    full_size: bool = False  # full-size architectures, random weights (throughput only)
    clip: str = "ViT-B-32/openai"
    biggan: str = "biggan-deep-256"
    cutouts: int = 32
    batches: tuple[int, ...] = (1, 4, 16)
    steps: int = 10
    warmup: int = 2
    compile: bool = False


@dataclass
class BenchRow:
    name: str
    batch: int
    latent_steps_per_s: float
    tflops: float | None = None
    roofline_fraction: float | None = None
    peak_mem_gb: float | None = None


@dataclass
class BenchReport:
    device: str
    models: str
    cutouts: int
    flops_per_latent_step: float
    rows: list[BenchRow] = field(default_factory=list)
    reference: BenchRow | None = None
    peak_flops: float | None = None
    note: str = ""

    def best(self) -> BenchRow:
        return max(self.rows, key=lambda r: r.latent_steps_per_s)

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"ratio": self.ratio()}

    def ratio(self) -> float:
        return self.best().latent_steps_per_s / self.reference.latent_steps_per_s if self.reference else float("nan")


def _load_reference():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "reference_loop.py"
    if not path.is_file():
        raise MusividError(f"{path}: the reference loop is missing: `musivid bench` runs from a source checkout")
    spec = importlib.util.spec_from_file_location("musivid_reference_loop", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def build_models(cfg: BenchConfig, device: torch.device):
    """(clip, prepared generator, raw BigGAN with the same weights, label)."""
    from .models import biggan as bg
    from .models import clip as cm
    from .models.load import load_biggan, load_clip

    torch.manual_seed(0)
    if cfg.untrained:
        raw = bg.new_model(bg.tiny_config())
        clip = load_clip(ModelConfig(untrained=True), device)
        label = "tiny random-init CLIP + BigGAN (--untrained)"
    elif cfg.full_size:
        from .models.registry import get_entry

        entry = get_entry(cfg.clip)
        model, tok, size = cm.build(entry.arch, untrained=False, quick_gelu=entry.quick_gelu)
        clip = cm.Clip(model.to(device), tok, size, f"{cfg.clip} (random weights)", True)
        raw = bg.new_model(bg.full_config(int(cfg.biggan.rsplit("-", 1)[1])))
        label = f"{cfg.clip} + {cfg.biggan}, full-size architectures with random weights"
    else:
        clip = load_clip(ModelConfig(clip=cfg.clip), device)
        gen = load_biggan(ModelConfig(biggan=cfg.biggan), device)
        raw = None
        label = f"{cfg.clip} + {cfg.biggan} (pretrained)"
        return clip, gen, raw, label
    gen = bg.Generator(bg.prepare(copy.deepcopy(raw)).to(device), "bench", True)
    return clip, gen, raw.eval().to(device), label


def flops_per_latent_step(gen, clip, cfg: OptimizeConfig, device) -> float:
    """FLOPs of one musivid step for one latent (forward + input-gradient backward), counted."""
    from torch.utils.flop_counter import FlopCounterMode

    from .optimize import Objective, init_state

    st = init_state([1], gen.z_dim, gen.num_classes, cfg, gen.n_z_rows, device)
    z = st.z.clone().requires_grad_(True)
    c = st.cls.clone().requires_grad_(True)
    text = clip.encode_text(["x"]).float()
    with FlopCounterMode(display=False) as fc:
        loss, _ = Objective(gen, clip, cfg)(z, c, text, st.seeds, torch.tensor(0))
        loss.sum().backward()
    return float(fc.get_total_flops())


def _peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16.items() if k in name), None)


def run_bench(cfg: BenchConfig, log: Callable[[str], None] = lambda m: None) -> BenchReport:
    from .optimize import optimize
    from .pipeline import resolve_device
    from .rng import seed_for

    device, amp = resolve_device(cfg.device)
    ref_mod = _load_reference()
    clip, gen, raw, label = build_models(cfg, device)
    ocfg = OptimizeConfig(cutouts=cfg.cutouts, steps=cfg.steps, compile=cfg.compile)
    flops = flops_per_latent_step(gen, clip, dataclasses.replace(ocfg, steps=1), device)
    devname = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    rep = BenchReport(devname, label, cfg.cutouts, flops, peak_flops=_peak(device))
    if raw is not None:
        log(f"reference loop: 1 prompt, fp32, unfrozen weights, per-cutout loop, {cfg.steps} steps")
        ref_mod.reference_optimize(raw, clip, TEXTS[0], 1, ocfg, steps=1, device=device)  # warm-up
        _, _, secs = ref_mod.reference_optimize(raw, clip, TEXTS[0], 1, ocfg, steps=cfg.steps, device=device)
        raw.requires_grad_(False)
        rep.reference = BenchRow("reference (one prompt, fp32)", 1, cfg.steps / secs,
                                 tflops=None, peak_mem_gb=None)
    for n in cfg.batches:
        texts = [TEXTS[i % len(TEXTS)] for i in range(n)]
        seeds = [seed_for(0, t, i) for i, t in enumerate(texts)]
        try:
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            warm = optimize(gen, clip, texts, seeds, dataclasses.replace(ocfg, steps=cfg.warmup),
                            device=device, amp_dtype=amp)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t = time.perf_counter()
            optimize(gen, clip, texts, seeds, dataclasses.replace(ocfg, steps=cfg.warmup + cfg.steps),
                     state=warm.state, device=device, amp_dtype=amp)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            secs = time.perf_counter() - t
        except MusividError as e:
            log(f"batch {n}: {e}")
            continue
        lps = n * cfg.steps / secs
        tf = lps * flops / 1e12
        mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        rep.rows.append(BenchRow("musivid batched" + (" bf16" if amp else " fp32"), n, lps, tf,
                                 (lps * flops / rep.peak_flops) if rep.peak_flops else None, mem))
        log(f"batch {n}: {lps:.2f} latent-steps/s")
    if cfg.untrained or cfg.full_size:
        rep.note = "random weights: throughput only (it does not depend on weight values)"
    return rep


def format_report(r: BenchReport) -> str:
    lines = [f"device: {r.device}", f"models: {r.models}", f"cutouts: {r.cutouts}",
             f"FLOPs per latent-step (counted, fwd + input-grad bwd): {r.flops_per_latent_step / 1e9:.3f} GFLOP"]
    if r.note:
        lines.append(f"note: {r.note}")
    lines.append(f"{'run':32s} {'batch':>5s} {'latent-steps/s':>15s} {'TFLOP/s':>9s} {'roofline':>9s} {'peak GB':>8s}")
    rows = ([r.reference] if r.reference else []) + r.rows
    for row in rows:
        tf = f"{row.tflops:9.3f}" if row.tflops is not None else f"{'':>9s}"
        rf = f"{row.roofline_fraction:9.1%}" if row.roofline_fraction is not None else f"{'n/a':>9s}"
        mem = f"{row.peak_mem_gb:8.2f}" if row.peak_mem_gb is not None else f"{'':>8s}"
        lines.append(f"{row.name:32s} {row.batch:5d} {row.latent_steps_per_s:15.2f} {tf} {rf} {mem}")
    if r.reference and r.rows:
        b = r.best()
        lines.append(f"speed-up at best batch ({b.batch}): {r.ratio():.1f}x the reference loop")
    return "\n".join(lines)
