"""`musivid bench`: latent-steps/s of the batched optimizer vs the one-prompt reference loop,
measured on the same device in the same run, with achieved TFLOP/s and the fraction of the
device's roofline."""
from __future__ import annotations

import copy
import dataclasses
import logging
import platform
import time
from dataclasses import dataclass, field

import torch

from .config import BenchConfig, ModelConfig, OptimizeConfig, resolve_device
from .errors import MusividError
from .reference import reference_optimize

log = logging.getLogger(__name__)

# dense bf16 tensor-core peaks (FLOP/s) for the roofline; other devices report no fraction
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "RTX 4090": 165e12}
TEXTS = ["a red fox runs through the snow", "waves crash on a golden beach", "the city lights burn",
         "a lighthouse against the storm", "mountains above the clouds", "fireworks in the summer sky",
         "an old train in the station", "a small boat on a quiet lake"]


# card sizes (GiB) for which the report names the best batch; a run must leave this much of the
# card free for the CUDA context, cuDNN/cuBLAS workspaces and fragmentation
CARDS_GIB = (24, 80)
CARD_HEADROOM_GIB = 1.5


@dataclass
class BenchRow:
    name: str
    batch: int
    latent_steps_per_s: float
    tflops: float | None = None
    roofline_fraction: float | None = None
    peak_mem_gb: float | None = None  # GiB allocated by tensors at the peak
    peak_reserved_gb: float | None = None  # GiB the caching allocator held: what the card must have
    micro_batch: int | None = None  # < batch when OOM halving split the batch
    compiled: bool = False


@dataclass
class BenchReport:
    device: str
    models: str
    cutouts: int
    flops_per_latent_step: float
    rows: list[BenchRow] = field(default_factory=list)
    reference: BenchRow | None = None
    peak_flops: float | None = None  # measured bf16 matrix-product FLOP/s (the roofline ceiling)
    spec_flops: float | None = None  # the data sheet's dense bf16 peak, for reference
    note: str = ""

    def ceiling(self) -> float | None:
        """Roofline ceiling in latent-steps/s."""
        return self.peak_flops / self.flops_per_latent_step if self.peak_flops else None

    def best(self, compiled: bool | None = None) -> BenchRow:
        rows = [r for r in self.rows if compiled is None or r.compiled == compiled]
        return max(rows, key=lambda r: r.latent_steps_per_s)

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"ratio": self.ratio(), "cards": {
            f"{g}GiB": (dataclasses.asdict(r) if r else None) for g, r in self.card_fits().items()}}

    def ratio(self) -> float:
        return self.best().latent_steps_per_s / self.reference.latent_steps_per_s if self.reference else float("nan")

    def compile_gain(self) -> float | None:
        """Best compiled throughput / best eager throughput, both from this run."""
        if not any(r.compiled for r in self.rows) or all(r.compiled for r in self.rows):
            return None
        return self.best(True).latent_steps_per_s / self.best(False).latent_steps_per_s

    def card_fits(self, cards: tuple[int, ...] = CARDS_GIB) -> dict[int, BenchRow | None]:
        """For each card size (GiB): the fastest measured row that ran whole (no OOM split) with
        its reserved peak at most card - CARD_HEADROOM_GIB; None if none fits or memory is unknown."""
        out = {}
        for g in cards:
            ok = [r for r in self.rows if r.peak_reserved_gb is not None and r.micro_batch == r.batch
                  and r.peak_reserved_gb <= g - CARD_HEADROOM_GIB]
            out[g] = max(ok, key=lambda r: r.latent_steps_per_s) if ok else None
        return out


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


def matmul_peak(device: torch.device, n: int = 8192, reps: int = 10) -> float:
    """FLOP/s of a large bf16 matrix product on this device, measured now: the attainable ceiling
    (DESIGN.md's ~1,100 latent-steps/s comes from it, not from the data-sheet peak)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        a @ b
    end.record()
    torch.cuda.synchronize(device)
    return 2 * n**3 * reps / (start.elapsed_time(end) / 1e3)


def run_bench(cfg: BenchConfig) -> BenchReport:
    """Measure the reference loop and the batched optimizer at every batch size, in one run.
    Progress goes to the `musivid.bench` logger."""
    device, amp = resolve_device(cfg.device)
    clip, gen, raw, label = build_models(cfg, device)
    ocfg = OptimizeConfig(cutouts=cfg.cutouts, steps=cfg.steps)
    flops = flops_per_latent_step(gen, clip, dataclasses.replace(ocfg, steps=1), device)
    devname = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    rep = BenchReport(devname, label, cfg.cutouts, flops, spec_flops=_peak(device))
    if device.type == "cuda":
        rep.peak_flops = matmul_peak(device)
        log.info(f"bf16 matrix product: {rep.peak_flops / 1e12:.0f} TFLOP/s (the roofline's ceiling)")
    if raw is not None:
        log.info(f"reference loop: 1 prompt, fp32, unfrozen weights, per-cutout loop, {cfg.steps} steps")
        reference_optimize(raw, clip, TEXTS[0], 1, ocfg, steps=1, device=device)  # warm-up
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        _, _, secs = reference_optimize(raw, clip, TEXTS[0], 1, ocfg, steps=cfg.steps, device=device)
        rep.reference = BenchRow("reference (one prompt, fp32)", 1, cfg.steps / secs)
        if device.type == "cuda":
            rep.reference.peak_mem_gb = torch.cuda.max_memory_allocated(device) / 2**30
            rep.reference.peak_reserved_gb = torch.cuda.max_memory_reserved(device) / 2**30
            raw.cpu()  # its memory is not the batched optimizer's
            torch.cuda.empty_cache()
    modes = [False, True] if cfg.compile and device.type == "cuda" else [False]
    if cfg.compile and device.type != "cuda":
        log.info("--compile: torch.compile is used on CUDA only; measuring eager")
    for compiled in modes:
        for n in cfg.batches:
            row = _measure(gen, clip, n, dataclasses.replace(ocfg, compile=compiled), cfg, device, amp)
            if row is None:
                continue
            row.tflops = row.latent_steps_per_s * flops / 1e12
            row.roofline_fraction = row.latent_steps_per_s * flops / rep.peak_flops if rep.peak_flops else None
            rep.rows.append(row)
    if cfg.untrained or cfg.full_size:
        rep.note = "random weights: throughput only (it does not depend on weight values)"
    return rep


def _measure(gen, clip, n: int, ocfg: OptimizeConfig, cfg: BenchConfig, device, amp) -> BenchRow | None:
    """Latent-steps/s of `cfg.steps` timed steps at batch n, after `cfg.warmup` untimed ones."""
    from .optimize import optimize
    from .rng import seed_for

    texts = [TEXTS[i % len(TEXTS)] for i in range(n)]
    seeds = [seed_for(0, t, i) for i, t in enumerate(texts)]
    cuda = device.type == "cuda"
    try:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        warm = optimize(gen, clip, texts, seeds, dataclasses.replace(ocfg, steps=cfg.warmup),
                        device=device, amp_dtype=amp)
        if cuda:
            torch.cuda.synchronize(device)
        t = time.perf_counter()
        res = optimize(gen, clip, texts, seeds, dataclasses.replace(ocfg, steps=cfg.warmup + cfg.steps,
                                                                    micro_batch=warm.micro_batch),
                       state=warm.state, device=device, amp_dtype=amp)
        if cuda:
            torch.cuda.synchronize(device)
        secs = time.perf_counter() - t
    except MusividError as e:
        log.info(f"batch {n}: {e}")
        return None
    lps = n * cfg.steps / secs
    name = "musivid batched" + (" bf16" if amp else " fp32") + (" compiled" if ocfg.compile else "")
    log.info(f"{name}, batch {n}: {lps:.2f} latent-steps/s"
        + (f" (OOM: micro-batches of {res.micro_batch})" if res.micro_batch < n else ""))
    return BenchRow(name, n, lps, micro_batch=res.micro_batch, compiled=ocfg.compile,
                    peak_mem_gb=torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None,
                    peak_reserved_gb=torch.cuda.max_memory_reserved(device) / 2**30 if cuda else None)


def format_report(r: BenchReport) -> str:
    lines = [f"device: {r.device}", f"models: {r.models}", f"cutouts: {r.cutouts}",
             f"FLOPs per latent-step (counted, fwd + input-grad bwd): {r.flops_per_latent_step / 1e9:.3f} GFLOP"]
    if r.note:
        lines.append(f"note: {r.note}")
    if r.peak_flops:
        spec = f" (data sheet: {r.spec_flops / 1e12:.0f})" if r.spec_flops else ""
        lines.append(f"roofline: bf16 matrix product {r.peak_flops / 1e12:.0f} TFLOP/s measured{spec} "
                     f"-> ceiling {r.ceiling():.0f} latent-steps/s")
    lines.append(f"{'run':34s} {'batch':>5s} {'latent-steps/s':>15s} {'TFLOP/s':>9s} {'roofline':>9s} "
                 f"{'peak GiB':>9s} {'reserved':>9s}")
    rows = ([r.reference] if r.reference else []) + r.rows
    for row in rows:
        tf = f"{row.tflops:9.3f}" if row.tflops is not None else f"{'':>9s}"
        rf = f"{row.roofline_fraction:9.1%}" if row.roofline_fraction is not None else f"{'n/a':>9s}"
        mem = f"{row.peak_mem_gb:9.2f}" if row.peak_mem_gb is not None else f"{'':>9s}"
        res = f"{row.peak_reserved_gb:9.2f}" if row.peak_reserved_gb is not None else f"{'':>9s}"
        split = f"  (OOM: micro-batches of {row.micro_batch})" if row.micro_batch and row.micro_batch < row.batch else ""
        lines.append(f"{row.name:34s} {row.batch:5d} {row.latent_steps_per_s:15.2f} {tf} {rf} {mem} {res}{split}")
    lines += _summary(r)
    return "\n".join(lines)


def format_markdown(r: BenchReport) -> str:
    """The report as a Markdown table for benchmarks/RESULTS.md."""
    lines = [f"- Device: {r.device}", f"- Models: {r.models}; {r.cutouts} cutouts; "
             f"{r.flops_per_latent_step / 1e9:.1f} GFLOP per latent-step (counted)"]
    if r.note:
        lines.append(f"- Note: {r.note}")
    if r.peak_flops:
        lines.append(f"- Roofline: bf16 matrix product measured at {r.peak_flops / 1e12:.0f} TFLOP/s in this run "
                     f"-> ceiling {r.ceiling():.0f} latent-steps/s")
    lines += ["", "| run | batch | latent-steps/s | TFLOP/s | roofline | peak GiB | reserved GiB |",
              "| --- | --- | --- | --- | --- | --- | --- |"]

    def f(v, fmt):
        return format(v, fmt) if v is not None else ""

    for row in ([r.reference] if r.reference else []) + r.rows:
        split = f" (OOM: micro {row.micro_batch})" if row.micro_batch and row.micro_batch < row.batch else ""
        lines.append(f"| {row.name}{split} | {row.batch} | {row.latent_steps_per_s:.2f} | {f(row.tflops, '.1f')} | "
                     f"{f(row.roofline_fraction, '.1%')} | {f(row.peak_mem_gb, '.2f')} | {f(row.peak_reserved_gb, '.2f')} |")
    lines += [""] + [f"- {x}" for x in _summary(r)]
    return "\n".join(lines)


def _summary(r: BenchReport) -> list[str]:
    """The conclusions: speed-up, whether compile pays, the best batch per card size."""
    out = []
    if r.reference and r.rows:
        b = r.best()
        out.append(f"speed-up at best batch ({b.batch}{', compiled' if b.compiled else ''}): "
                   f"{r.ratio():.1f}x the reference loop")
    gain = r.compile_gain()
    if gain is not None:
        out.append(f"torch.compile: {gain:.2f}x eager at the best batch of each")
    if any(x.peak_reserved_gb is not None for x in r.rows):
        for g, row in r.card_fits().items():
            out.append(f"best batch for a {g} GiB card: " + (
                f"{row.batch}{' compiled' if row.compiled else ''} ({row.latent_steps_per_s:.1f} latent-steps/s, "
                f"{row.peak_reserved_gb:.1f} GiB reserved)" if row else f"none measured fits in {g - CARD_HEADROOM_GIB:g} GiB"))
    return out
