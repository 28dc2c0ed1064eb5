"""`musivid models` (list, fetch, check the pretrained weights) and `musivid bench` (throughput, the
step's census, the render's speed)."""
from __future__ import annotations

from pathlib import Path

import click

from ..config import X264_PRESETS, RenderConfig
from .app import cli, setup_logging
from .options import OFFLINE, device_option, verbosity


@cli.group()
def models():
    """List, fetch and check pretrained weights."""


@models.command("list")
def models_list():
    """Image models (CLIP, BigGAN) and speech recognition models (Whisper): size, licence, and
    whether each is cached, needs a download, or came with an installed package."""
    from ..images.models.registry import REGISTRY, cache_dir, is_cached
    from ..song.whisper_models import whisper_models

    cache = cache_dir()
    click.echo(f"cache: {cache}")
    click.echo("")
    click.echo("Image models (downloaded on first use, or with `musivid models fetch NAME`)")
    click.echo(f"{'NAME':48s} {'KIND':6s} {'SIZE':>10s}  {'STATE':8s}  LICENCE")
    for e in REGISTRY.values():
        size = sum(w.size or 0 for w in e.files) / 1e6
        state = "cached" if is_cached(e, cache) else "download"
        pin = "" if e.weights.sha256 else " (no pinned sha256: trust on first use)"
        click.echo(f"{e.name:48s} {e.kind:6s} {size:7.0f} MB  {state:8s}  {e.licence}{pin}")
        click.echo(f"{'':48s} {e.about}")
    click.echo("")
    click.echo("Speech recognition models (Whisper, for plain lyrics or none; downloaded on first use)")
    click.echo(f"{'NAME':48s} {'LANGUAGES':12s} {'SIZE':>7s}  {'STATE':9s}  USE")
    for w in whisper_models(cache / "whisper"):
        click.echo(f"{w.name:48s} {w.languages:12s} {w.size_mb:4d} MB  {w.state:9s}  {w.about}")
    click.echo("")
    click.echo("STATE: cached (ready, no network needed), download (fetched on first use), installed (came "
               "with a Python package)")


@models.command("fetch")
@click.argument("names", nargs=-1)
@OFFLINE
@verbosity
def models_fetch(names, offline, quiet, verbose):
    """Download and verify NAMES (default: the default CLIP and BigGAN)."""
    from ..config import DEFAULT_CLIP, ModelConfig
    from ..images.models.registry import FetchOptions, cache_dir, get_entries, offline_from_env, resolve_all

    setup_logging(quiet, verbose)
    entries = get_entries(names or (DEFAULT_CLIP, ModelConfig.biggan))  # every unknown name at once
    opts = FetchOptions(offline=offline or offline_from_env(), progress=not quiet)
    resolve_all(entries, cache_dir(), opts,  # goes on past a failure, then lists every missing file
                on_done=lambda e, paths: click.echo(f"{e.name}: ok ({', '.join(str(p) for p in paths)})"))


@models.command("check")
@verbosity
def models_check(quiet, verbose):
    """Exit 0 if the default models are cached and verify (no network), else 1."""
    from ..config import DEFAULT_CLIP, ModelConfig
    from ..images.models.registry import FetchOptions, cache_dir, get_entries, resolve_all

    from ..errors import ModelUnavailableError
    from ..images.models.registry import cached_ok

    setup_logging(quiet, verbose)
    entries, cache = get_entries((DEFAULT_CLIP, ModelConfig.biggan)), cache_dir()
    missing = [wf.filename for e in entries for wf in e.files if cached_ok(wf, cache) is None]
    if missing:  # said without "offline mode": checking never downloads, whatever the settings
        raise ModelUnavailableError(
            f"the default models are not in the cache {cache} (missing: {', '.join(missing)}): run `musivid models "
            "fetch` (with network access), or use --untrained to preview with random weights")
    resolve_all(entries, cache, FetchOptions(offline=True))
    if not quiet:
        click.echo("default models are cached and verified")


# ---- bench --------------------------------------------------------------------------------------------

def _batch_sizes(ctx, param, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        sizes = tuple(int(b) for b in value.split(",") if b.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r}: give comma-separated whole numbers, e.g. 1,4,16") from None
    if not sizes or any(b < 1 for b in sizes):
        raise click.BadParameter(f"{value!r}: batch sizes must be 1 or more, e.g. 1,4,16")
    return sizes


@cli.command("bench")
@device_option()
@click.option("--untrained", is_flag=True, help="Tiny random models (CPU-sized).")
@click.option("--full-size", is_flag=True, help="Full-size architectures with random weights (GPU throughput).")
@click.option("--clip", default="ViT-B-32/openai", show_default=True,
              help="CLIP architecture measured (a name of `musivid models list`).")
@click.option("--biggan", default="biggan-deep-256", show_default=True,
              help="BigGAN-deep architecture measured (a name of `musivid models list`).")
@click.option("--cutouts", type=click.IntRange(1, 1024), default=32, show_default=True,
              help="CLIP cutouts per image and step.")
@click.option("--batch", "batches", default=None, callback=_batch_sizes,
              help="Comma-separated batch sizes (default 1,4,16; --census counts the largest, default 16).")
@click.option("--steps", type=click.IntRange(min=1), default=10, show_default=True, help="Timed steps per measurement.")
@click.option("--compile", "use_compile", is_flag=True,
              help="Also measure the torch.compile'd step, in the same run (CUDA).")
@click.option("--census", is_flag=True,
              help="Count FLOPs, bytes, kernels and saved memory of one full-size step on the meta device "
                   "(no GPU, no weights) and estimate its speed on an H200 (measured rates) and an H100.")
@click.option("--render", "render_bench", is_flag=True,
              help="Render frames/s against the encoder alone on the same frames, in one run.")
@click.option("--seconds", type=click.FloatRange(0.5, 600), default=10.0, show_default=True,
              help="--render: seconds of video per measurement.")
@click.option("--size", type=click.IntRange(32, 2048), default=256, show_default=True, help="--render: video side.")
@click.option("--preset", type=click.Choice(X264_PRESETS), default=RenderConfig.preset, show_default=True,
              help="--render: x264 preset.")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write results as JSON.")
@click.option("--markdown", "md_out", type=click.Path(path_type=Path), default=None,
              help="Write results as a Markdown block for benchmarks/RESULTS.md.")
@verbosity
def bench_cmd(device, untrained, full_size, clip, biggan, cutouts, batches, steps, use_compile, census, render_bench,
              seconds, size, preset, json_out, md_out, quiet, verbose):
    """Latent-steps/s of musivid's batched optimizer against the one-prompt reference loop
    (--census: the counted cost of one step and its H200 and H100 estimates, no GPU needed; --render: render
    frames/s against the encoder alone)."""
    import json

    from ..perf.bench import format_markdown, format_report, run_bench
    from ..config import BenchConfig
    from ..files import atomic_write_text

    setup_logging(quiet, verbose)
    results, text = {}, []
    if census:
        from ..perf.census import census_step, format_census

        c = census_step(clip, biggan, cutouts, max(batches or (16,)))
        text.append(format_census(c))
        results["census"] = c.to_json()
    cfg = BenchConfig(device=device, untrained=untrained, full_size=full_size, clip=clip, biggan=biggan,
                      cutouts=cutouts, batches=batches or BenchConfig.batches, steps=steps, compile=use_compile)
    if render_bench:
        from ..perf.bench import format_render, run_render_bench

        r = run_render_bench(cfg, seconds=seconds, size=size, preset=preset)
        text.append(format_render(r))
        results["render"] = r.to_json()
    if not (census or render_bench):
        report = run_bench(cfg)
        text.append(format_report(report))
        results.update(report.to_json())
        if md_out:
            atomic_write_text(md_out, format_markdown(report) + "\n")
    click.echo("\n\n".join(text))
    if json_out:
        atomic_write_text(json_out, json.dumps(results, indent=1))
