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
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..config import BenchConfig, ModelConfig, OptimizeConfig, resolve_device
from ..errors import MusividError
from ..images.reference import reference_optimize
from ..video.render import RenderTimes

log = logging.getLogger(__name__)

# dense bf16 tensor-core peaks (FLOP/s) for the roofline; other devices report no fraction
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "RTX 4090": 165e12}
TEXTS = ["a red fox runs through the snow", "waves crash on a golden beach", "the city lights burn",
         "a lighthouse against the storm", "mountains above the clouds", "fireworks in the summer sky",
         "an old train in the station", "a small boat on a quiet lake"]


# card sizes (GiB) for which the report names the best batch; a run must leave this much of the
# card free for the CUDA context, cuDNN/cuBLAS workspaces and fragmentation
CARDS_GIB = (24, 80, 141)  # an RTX 4090 / A10-class card, an H100 80GB, an H200 141GB
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
    warmup_s: float | None = None  # the untimed warm-up steps (with the compile, for a compiled row)


@dataclass
class BenchReport:
    device: str
    models: str
    cutouts: int
    flops_per_latent_step: float
    rows: list[BenchRow] = field(default_factory=list)
    reference: BenchRow | None = None
    peak_flops: float | None = None  # measured bf16 matrix-product FLOP/s (the roofline ceiling)
    after_reference_gb: float | None = None  # GiB still allocated once the reference loop is done
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
        if not (self.reference and self.rows):
            return float("nan")
        return self.best().latent_steps_per_s / self.reference.latent_steps_per_s

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


def build_models(cfg: BenchConfig, device: torch.device, clip: bool = True):
    """(clip or None, prepared generator, raw BigGAN with the same weights, label). The fast
    forwards store their weights in the device's compute dtype (bf16 on CUDA)."""
    from ..images.models import biggan as bg
    from ..images.models import clip as cm
    from ..images.models.load import load_biggan, load_clip

    amp = resolve_device(cfg.device).amp
    torch.manual_seed(0)
    model = None
    if cfg.untrained:
        raw = bg.new_model(bg.tiny_config())
        model = load_clip(ModelConfig(untrained=True), device, amp) if clip else None
        label = "tiny random-init CLIP + BigGAN (--untrained)"
    elif cfg.full_size:
        from ..images.models.registry import get_entry

        if clip:
            entry = get_entry(cfg.clip)
            m, tok, size = cm.build(entry.arch, untrained=False, quick_gelu=entry.quick_gelu)
            model = cm.Clip(m.to(device), tok, size, f"{cfg.clip} (random weights)", True, amp or torch.float32)
        raw = bg.new_model(bg.full_config(int(cfg.biggan.rsplit("-", 1)[1])))
        label = f"{cfg.clip} + {cfg.biggan}, full-size architectures with random weights"
    else:
        model = load_clip(ModelConfig(clip=cfg.clip), device, amp) if clip else None
        gen = load_biggan(ModelConfig(biggan=cfg.biggan), device, amp)
        label = f"{cfg.clip} + {cfg.biggan} (pretrained)"
        return model, gen, None, label
    gen = bg.Generator(bg.prepare(copy.deepcopy(raw)).to(device), "bench", True, amp or torch.float32)
    return model, gen, raw.eval().to(device), label


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def flops_per_latent_step(gen, clip, cfg: OptimizeConfig, device=None) -> float:
    """The model's FLOPs per latent-step (forward + input-gradient backward by the original modules,
    counted on the meta device): DESIGN.md §3's ceiling divides the matrix rate by it."""
    from .census import model_flops

    return model_flops(gen.model, clip.model.visual, clip.image_size, cfg.cutouts, 1)


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


def run_bench(cfg: BenchConfig, reference: bool = True, on_row: Callable[[BenchReport], None] | None = None
              ) -> BenchReport:
    """Measure the reference loop (unless `reference` is False) and the batched optimizer at every
    batch size, in one run. Progress goes to the `musivid.perf.bench` logger, each figure as soon as it is
    measured; `on_row(report)` is called after each measurement (to save partial results)."""
    compute = resolve_device(cfg.device)
    device, amp = compute.device, compute.amp
    clip, gen, raw, label = build_models(cfg, device)
    ocfg = OptimizeConfig(cutouts=cfg.cutouts, steps=cfg.steps)
    flops = flops_per_latent_step(gen, clip, dataclasses.replace(ocfg, steps=1), device)
    rep = BenchReport(_device_name(device), label, cfg.cutouts, flops, spec_flops=_peak(device))
    if device.type == "cuda":
        rep.peak_flops = matmul_peak(device)
        log.info(f"bf16 matrix product: {rep.peak_flops / 1e12:.0f} TFLOP/s (the roofline's ceiling)")
    if raw is not None and reference:
        log.info(f"reference loop: 1 prompt, fp32, unfrozen weights, per-cutout loop, {cfg.steps} steps")
        reference_optimize(raw, clip, TEXTS[0], 1, ocfg, steps=1, device=device)  # warm-up
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        _, _, secs = reference_optimize(raw, clip, TEXTS[0], 1, ocfg, steps=cfg.steps, device=device)
        rep.reference = BenchRow("reference (one prompt, fp32)", 1, cfg.steps / secs)
        log.info(f"reference loop: {rep.reference.latent_steps_per_s:.2f} latent-steps/s")
        if device.type == "cuda":
            rep.reference.peak_mem_gb = torch.cuda.max_memory_allocated(device) / 2**30
            rep.reference.peak_reserved_gb = torch.cuda.max_memory_reserved(device) / 2**30
            raw.cpu()  # its memory is not the batched optimizer's
            torch.cuda.empty_cache()
            # what stays allocated: the models' weights only, if the loop dropped its gradients
            rep.after_reference_gb = torch.cuda.memory_allocated(device) / 2**30
            log.info(f"after the reference loop: {rep.after_reference_gb:.2f} GiB allocated")
        if on_row is not None:
            on_row(rep)
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
            if on_row is not None:
                on_row(rep)
    if cfg.untrained or cfg.full_size:
        rep.note = "random weights: throughput only (it does not depend on weight values)"
    return rep


def _measure(gen, clip, n: int, ocfg: OptimizeConfig, cfg: BenchConfig, device, amp) -> BenchRow | None:
    """Latent-steps/s of `cfg.steps` timed steps at batch n, after `cfg.warmup` untimed ones."""
    from ..images.optimize import optimize
    from ..rng import seed_for

    texts = [TEXTS[i % len(TEXTS)] for i in range(n)]
    seeds = [seed_for(0, t, i) for i, t in enumerate(texts)]
    cuda = device.type == "cuda"
    try:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        t = time.perf_counter()
        warm = optimize(gen, clip, texts, seeds, dataclasses.replace(ocfg, steps=cfg.warmup),
                        device=device, amp_dtype=amp)
        if cuda:
            torch.cuda.synchronize(device)
        warm_s = time.perf_counter() - t
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
    return BenchRow(name, n, lps, micro_batch=res.micro_batch, compiled=ocfg.compile, warmup_s=warm_s,
                    peak_mem_gb=torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None,
                    peak_reserved_gb=torch.cuda.max_memory_reserved(device) / 2**30 if cuda else None)


def format_report(r: BenchReport) -> str:
    lines = [f"device: {r.device}", f"models: {r.models}", f"cutouts: {r.cutouts}",
             f"FLOPs per latent-step (the model's: original modules, fwd + input-grad bwd): {r.flops_per_latent_step / 1e9:.3f} GFLOP"]
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


def format_beside_census(census: dict, r: BenchReport) -> str:
    """The census's estimate (`musivid bench --census --json`, its "census" entry) beside this run's
    measurement at the census's batch size, as a Markdown table. Both divide the model's FLOPs per
    latent-step (the same count) by a bf16 matrix rate: the census by the H200's measured 788
    TFLOP/s, the bench by the rate it measured in this run."""
    row = next((x for x in r.rows if x.batch == census["batch"] and not x.compiled), None)
    meas = row.latent_steps_per_s if row else None
    ceil = r.ceiling()

    def f(v, fmt):
        return format(v, fmt) if v is not None else "not measured"

    est = census.get("estimates", {}).get(census.get("device", ""), census)
    return "\n".join([
        f"| batch {census['batch']}, {census['cutouts']} cutouts | census estimate ({est.get('device', 'H200')}) | "
        f"measured ({r.device}) |", "| --- | --- | --- |",
        f"| bf16 matrix rate (TFLOP/s) | {est['peaks']['matmul_flops'] / 1e12:.0f} | {f(r.peak_flops and r.peak_flops / 1e12, '.0f')} |",
        f"| model GFLOP per latent-step | {census['model_flops_per_latent_step'] / 1e9:.1f} | {r.flops_per_latent_step / 1e9:.1f} |",
        f"| ceiling (latent-steps/s) | {est['ceiling_latent_steps_per_s']:.0f} | {f(ceil, '.0f')} |",
        f"| latent-steps/s | {est['estimated_latent_steps_per_s']:.0f} | {f(meas, '.1f')} |",
        f"| fraction of the ceiling | {est['estimated_fraction_of_ceiling']:.1%} | {f(meas and ceil and meas / ceil, '.1%')} |",
        f"| kernel launches per step (counted) | {census['kernels_per_step']} | |",
        f"| GB per latent-step (counted) | {census['bytes_per_latent_step'] / 1e9:.2f} | |"])


def _summary(r: BenchReport) -> list[str]:
    """The conclusions: speed-up, whether compile pays, the best batch per card size."""
    out = []
    if r.reference and r.rows:
        b = r.best()
        out.append(f"speed-up at best batch ({b.batch}{', compiled' if b.compiled else ''}): "
                   f"{r.ratio():.1f}x the reference loop")
    gain = r.compile_gain()
    if gain is not None:
        b = r.best(True)
        took = f"; its warm-up (with the compile) took {b.warmup_s:.0f} s at batch {b.batch}" if b.warmup_s else ""
        out.append(f"torch.compile: {gain:.2f}x eager at the best batch of each{took}")
    if r.after_reference_gb is not None:
        out.append(f"allocated after the reference loop (weights only if its gradients were dropped): "
                   f"{r.after_reference_gb:.2f} GiB")
    if any(x.peak_reserved_gb is not None for x in r.rows):
        for g, row in r.card_fits().items():
            out.append(f"best batch for a {g} GiB card: " + (
                f"{row.batch}{' compiled' if row.compiled else ''} ({row.latent_steps_per_s:.1f} latent-steps/s, "
                f"{row.peak_reserved_gb:.1f} GiB reserved)" if row else f"none measured fits in {g - CARD_HEADROOM_GIB:g} GiB"))
    return out


# ---- render: frames/s of the whole render against the encoder alone, same frames, same run --------

class _BenchFrames:
    """A FrameSource whose latents move fast: a new random key every `every` frames (linear
    blend between keys), so frames differ strongly and the encoder is not fed near-still video."""

    def __init__(self, n: int, z_dim: int, classes: int, every: int = 12, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        k = n // every + 2
        self.n, self.every = n, every
        self.kz = torch.randn(k, z_dim, generator=g)
        self.kc = torch.softmax(3 * torch.randn(k, classes, generator=g), 1)

    def __len__(self) -> int:
        return self.n

    def latents(self, lo: int, hi: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = torch.arange(lo, hi)
        k, u = i // self.every, (i % self.every).float()[:, None] / self.every
        return (self.kz[k] * (1 - u) + self.kz[k + 1] * u, self.kc[k] * (1 - u) + self.kc[k + 1] * u)


class _Textured:
    """A generator whose frames carry the detail of real footage: the random-weight BigGAN's images
    (nearly flat: ~0.1 Mbit/s at crf 20, so the encoder would have almost nothing to do) resized to
    the video size, plus a fixed band-limited noise texture at an offset taken from each frame's
    latents (so it jumps from frame to frame). Render and encoder-alone both get these frames; the
    bench reports the stream's bit rate."""

    def __init__(self, gen, size: int, amplitude: float = 0.08, seed: int = 0):
        self.gen, self.size, self.device = gen, size, gen.device
        self.z_dim, self.num_classes = gen.z_dim, gen.num_classes
        g = torch.Generator().manual_seed(seed)
        noise = torch.rand(1, 3, size, size, generator=g) - 0.5
        tex = torch.nn.functional.interpolate(noise, scale_factor=2, mode="bilinear", align_corners=False)[0]
        self.tex = (amplitude * 2 * tex).to(gen.device)  # (3, 2·size, 2·size)

    def __call__(self, z, classes, truncation, dtype=None):
        img = self.gen(z, classes, truncation, dtype)
        if img.shape[-1] != self.size:
            img = torch.nn.functional.interpolate(img, size=(self.size, self.size), mode="bicubic", align_corners=False)
        off = ((z[:, :2].float().abs() * 997).long() % self.size).tolist()  # per-frame texture offsets
        tex = torch.stack([self.tex[:, y:y + self.size, x:x + self.size] for x, y in off])
        return (img + tex).clamp(0, 1)

    def frames(self, *args, **kw):
        from ..images.models.biggan import Generator

        return Generator.frames(self, *args, **kw)


@dataclass
class RenderBench:
    device: str
    model: str
    frames: int
    size: int
    fps: float
    preset: str
    render_fps: list[float] = field(default_factory=list)  # one per repeat
    encode_only_fps: list[float] = field(default_factory=list)
    encoder_busy: list[float] = field(default_factory=list)  # encoder thread busy / render wall time
    kbit_per_s: float = 0.0  # of the video stream: how much the frames change
    note: str = ""

    def ratio(self) -> float:
        """Render over encoder-alone frames/s, the best repeat: each repeat measures both back to
        back, so a load that comes and goes on the machine touches both alike."""
        return max(r / e for r, e in zip(self.render_fps, self.encode_only_fps))

    def to_json(self) -> dict:
        return dataclasses.asdict(self) | {"frames_per_s": max(self.render_fps),
                                           "encode_only_frames_per_s": max(self.encode_only_fps),
                                           "ratio": self.ratio()}


def run_render_bench(cfg: BenchConfig, seconds: float = 10.0, size: int = 256, preset: str = "medium",
                     repeats: int = 3) -> RenderBench:
    """Render `seconds` of a synthetic song `repeats` times, and encode the very same frames alone
    (generated beforehand, untimed) as often, in one run; after an untimed warm-up render."""
    import tempfile

    import av

    from ..config import RenderConfig
    from ..video.render import encode_frames, frames_yuv420, render, yuv_matrix

    compute = resolve_device(cfg.device)
    device, amp = compute.device, compute.amp
    _, raw_gen, _, label = build_models(dataclasses.replace(cfg, batches=(1,)), device, clip=False)
    gen = _Textured(raw_gen, size)
    rcfg = RenderConfig(size=size, preset=preset, batch=32 if device.type == "cuda" else 16)
    n = max(2, int(round(seconds * rcfg.fps)))
    source = _BenchFrames(n, gen.z_dim, gen.num_classes)
    rep = RenderBench(_device_name(device), label, n, size, rcfg.fps, preset,
                      note="random-weight frames with fast-moving latents and a moving texture (detail like real footage); "
                           "H.264 + AAC as render() writes them")
    with tempfile.TemporaryDirectory(prefix="musivid-bench-") as tmp:
        song = Path(tmp) / "song.wav"
        _write_tone(song, seconds + 1.0)
        out = Path(tmp) / "v.mp4"
        render(gen, source, song, out, rcfg, amp_dtype=amp, frames=(0, min(n, 2 * rcfg.batch)))  # warm-up
        planes = [frames_yuv420(gen, *source.latents(lo, min(n, lo + rcfg.batch)), 1.0, size, amp,
                                yuv_matrix(size)).cpu().numpy() for lo in range(0, n, rcfg.batch)]
        for r in range(repeats):
            times = RenderTimes()
            render(gen, source, song, out, rcfg, amp_dtype=amp, frames=(0, n), times=times)
            rep.render_fps.append(n / times.total)
            rep.encoder_busy.append(times.encode / times.total)
            rep.encode_only_fps.append(n / encode_frames(planes, song, out, rcfg, frames=n))
            log.info(f"render {rep.render_fps[-1]:.1f} frames/s, encoder alone {rep.encode_only_fps[-1]:.1f} frames/s")
        with av.open(str(out)) as c:
            v = c.streams.video[0]
            rep.kbit_per_s = (v.bit_rate or 0) / 1000
    return rep


def _write_tone(path: Path, seconds: float, sr: int = 44100) -> None:
    """A test song: a chord with a beat, as 16-bit WAV."""
    import wave

    t = np.arange(int(seconds * sr)) / sr
    y = 0.2 * (np.sin(2 * np.pi * 220 * t) + np.sin(2 * np.pi * 277 * t)) * (0.6 + 0.4 * (t * 2 % 1 < 0.1))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(y, -1, 1) * 32767).astype(np.int16).tobytes())


def format_render(r: RenderBench) -> str:
    j = r.to_json()
    return "\n".join([
        f"render: {r.frames} frames, {r.size} px, {r.fps:g} fps, x264 preset {r.preset}, {r.model} on {r.device}",
        f"note: {r.note}; video stream {r.kbit_per_s:.0f} kbit/s",
        f"render (generation + encoding): {j['frames_per_s']:.1f} frames/s (best of {len(r.render_fps)}: "
        + ", ".join(f"{x:.1f}" for x in r.render_fps) + ")",
        f"encoder alone, same frames:      {j['encode_only_frames_per_s']:.1f} frames/s (best of "
        f"{len(r.encode_only_fps)}: " + ", ".join(f"{x:.1f}" for x in r.encode_only_fps) + ")",
        f"render / encoder alone (best repeat): {j['ratio']:.2f}; encoder thread busy "
        f"{max(r.encoder_busy):.0%} of the render"])
