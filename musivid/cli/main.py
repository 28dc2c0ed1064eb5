"""Command line: the only module that prints or exits.

    musivid AUDIO [LYRICS] [OPTIONS]               render a music video (see `musivid --help`)
    musivid variants PROJECT --line N [--count K]  re-roll a line
    musivid pick PROJECT --line N --variant V      choose the variant a line shows
    musivid render PROJECT [-o OUT.mp4]            render again without optimizing
    musivid studio [PROJECT | AUDIO [LYRICS]]      a local web page to pick, re-roll, re-time, render
    musivid align AUDIO [LYRICS] -o out.lrc        time the lyrics, to check and correct
    musivid batch SONGS... | DIR -o OUTDIR         a video for every song (Ray workers)
    musivid models list | fetch [NAME...] | check  pretrained weights
    musivid bench                                  optimizer throughput

Exit codes: 0 done, 1 the run failed, 2 bad usage or input, 75 the project is busy (another
command is writing it), 130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP (work is kept).
Heavy modules (torch, av, librosa) are imported inside the commands so `--help` is instant.
Signal handlers are installed by `main` (the musivid process) only, never by the library.
"""
from __future__ import annotations

import difflib
import logging
import signal
import sys
from pathlib import Path

import click

from ..config import ASR_CHOICES, DEFAULT_WHISPER, X264_PRESETS, OptimizeConfig, RenderConfig
from ..errors import Interrupted, MusividError
from .options import (ACCEPT_TRUNCATED, EXCERPT, FONT, HELP_SECTIONS, OFFLINE, OVERWRITE, SCALE, SETTINGS, Finite, captions_option, combine, device_option, motion_options, run_settings, verbosity)

EXIT_INTERRUPTED = 130
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


# ---- messages ---------------------------------------------------------------------------------------

def _say(msg: str) -> None:
    click.echo(msg, err=True)


class _Handler(logging.Handler):
    """The library's log records as `musivid: ...` lines on stderr; each warning once per run."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if record.levelno >= logging.WARNING:
            if msg in self.seen:
                return
            self.seen.add(msg)
            _say(f"musivid: warning: {msg}")
        elif record.levelno >= logging.INFO:
            _say(f"musivid: {msg}")
        else:
            _say(f"musivid: debug: {record.name}: {msg}")


def _setup_logging(quiet: bool, verbose: bool, only_from: tuple[str, ...] | None = None) -> None:
    """`musivid: ...` lines for the library's messages; with `only_from`, INFO lines only from
    those loggers (batch: one line per song and stage, not every song's details)."""
    _reset_logging()
    logger = logging.getLogger("musivid")
    handler = _Handler()
    if only_from:
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name.startswith(only_from))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    logger.propagate = False  # a library that calls logging.basicConfig() must not print them twice


def _reset_logging() -> None:
    logger = logging.getLogger("musivid")
    for h in [h for h in logger.handlers if isinstance(h, _Handler)]:
        logger.removeHandler(h)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


# ---- the group ----------------------------------------------------------------------------------------

class MainGroup(click.Group):
    """`musivid AUDIO ...` runs the hidden `make` command; named subcommands work as usual; a word
    that is neither a command nor an existing file is a mistyped command."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            first = args[0]
            if first.startswith("-") or Path(first).exists() or Path(first).suffix or "/" in first:
                args = ["make", *args]
        return super().parse_args(ctx, args)

    def resolve_command(self, ctx, args):
        name = args[0] if args else ""
        if name and name not in self.commands:
            shown = [n for n, c in self.commands.items() if not c.hidden]
            close = difflib.get_close_matches(name, shown, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else f" Commands: {', '.join(shown)}."
            ctx.fail(f"No such command {name!r}.{hint} (An AUDIO file is taken as such only if it exists.)")
        return super().resolve_command(ctx, args)

    def format_usage(self, ctx, formatter):
        formatter.write_usage("musivid", "AUDIO [LYRICS] [OPTIONS]")
        formatter.write_usage("musivid", "COMMAND [ARGS]...", prefix="       ")

    def format_options(self, ctx, formatter):
        make = self.commands["make"]
        mctx = click.Context(make, info_name="musivid", parent=ctx)
        records = {p.name: p.get_help_record(mctx) for p in make.get_params(mctx)
                   if isinstance(p, click.Option) and p.name != "help"}
        for title, names in HELP_SECTIONS:
            with formatter.section(title):
                formatter.write_dl([records.pop(n) for n in names])
        rest = list(records.values()) + [p.get_help_record(ctx) for p in self.get_params(ctx)]
        with formatter.section("Other"):
            formatter.write_dl([r for r in dict.fromkeys(rest) if r])
        self.format_commands(ctx, formatter)


@click.group(cls=MainGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="musivid")
def cli():
    """Turn a song and its lyrics into a music video: a BigGAN image found by CLIP for every lyric
    line, gliding from line to line on the beat, frame-exact with the audio.

    \b
    musivid song.mp3 lyrics.txt              -> song.mp4, song.srt and the project song.musivid/
    musivid song.mp3 lyrics.lrc -o v.mp4     timed lyrics are used as given
    musivid song.mp3                         no lyrics: Whisper transcribes the song
    musivid song.mp3 lyrics.txt --untrained  a quick preview with tiny random-weight models
    musivid song.mp3 lyrics.txt --start 30 --duration 10   a 10-second excerpt
    """


# ---- musivid AUDIO [LYRICS] ----------------------------------------------------------------------------

@cli.command("make", hidden=True)
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("lyrics", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output .mp4 (default: AUDIO's name + .mp4).")
@OVERWRITE
@click.option("--project", "project_dir", type=click.Path(path_type=Path), default=None,
              help="Project directory (default: OUTPUT's name + .musivid).")
@combine(*EXCERPT)
@combine(*SETTINGS)
@ACCEPT_TRUNCATED
@combine(*SCALE)
@verbosity
def make_cmd(audio, lyrics, output, overwrite, project_dir, start, duration, accept_truncated, gpus, workers, ray_address,
             no_ray, quiet, verbose, **options):
    """Render AUDIO (+ LYRICS) to a music video."""
    from contextlib import nullcontext

    from ..pipeline import make_video

    _setup_logging(quiet, verbose)
    settings = run_settings(**options)
    pool = None
    if gpus is not None or workers is not None or ray_address is not None:
        from ..scale.workers import open_pool

        pool = open_pool(settings.models, settings.device, gpus=gpus, workers=workers, ray_address=ray_address,
                         use_ray=not no_ray)
    with pool or nullcontext():
        runner = None
        if pool is not None:
            from ..scale.shard import Sharder

            runner = Sharder(pool)
        res = make_video(audio, lyrics, output, settings, project_dir=project_dir, overwrite=overwrite, start=start,
                         duration=duration, accept_truncated=accept_truncated, progress=not quiet, runner=runner)
    _done(res, quiet, verbose)


def _done(res, quiet: bool, verbose: bool) -> None:
    note = " [UNTRAINED random weights: preview only]" if res.untrained else ""
    click.echo(f"wrote {res.video} ({res.frames} frames){note}")
    if not quiet:
        _say(f"musivid: captions {res.srt}; project {res.project} (storyboard.png inside)")
    if verbose:
        _say("musivid: timings: " + ", ".join(f"{k.removesuffix('_s')} {v:.2f} s" if k.endswith("_s") else f"{k} {v}"
                                             for k, v in res.timings.items()))


# ---- batch ---------------------------------------------------------------------------------------------

@cli.command("batch")
@click.argument("songs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output-dir", "outdir", type=click.Path(path_type=Path), required=True,
              help="Where every song's NAME.mp4, NAME.srt and project NAME.musivid/ go.")
@OVERWRITE
@combine(*SETTINGS)
@combine(*SCALE)
@verbosity
def batch_cmd(songs, outdir, overwrite, gpus, workers, ray_address, no_ray, quiet, verbose, **options):
    """Make a video for every song: SONGS are audio files or directories of them, each with its
    lyrics beside it (same name, .lrc or .txt; none: transcribed). One song per worker (a GPU
    each, or the CPU), models loaded once per worker; a re-run skips finished songs."""
    from ..scale.batch import find_songs, raise_if_failed, run_batch, summary
    from ..scale.workers import open_pool

    _setup_logging(quiet, verbose, only_from=None if verbose else ("musivid.scale.batch", "musivid.scale.workers"))
    settings = run_settings(**options)
    found = find_songs(list(songs))
    with open_pool(settings.models, settings.device, gpus=gpus, workers=workers, ray_address=ray_address,
                   use_ray=not no_ray, exact=False, inline_ok=True) as pool:
        results = run_batch(found, outdir, settings, pool, overwrite=overwrite)
    click.echo(summary(results))
    raise_if_failed(results)


# ---- project commands ------------------------------------------------------------------------------

@cli.command("variants")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--line", type=click.IntRange(min=1), required=True, help="1-based lyric line number.")
@click.option("--count", type=click.IntRange(1, 64), default=2, show_default=True, help="How many new variants.")
@device_option(None)
@OFFLINE
@verbosity
def variants_cmd(project, line, count, device, offline, quiet, verbose):
    """Optimize COUNT new variants of one line; every other line stays as it is."""
    from ..actions import add_variants

    _setup_logging(quiet, verbose)
    new = add_variants(project, line, count, device=device, offline=offline, progress=not quiet)
    click.echo(f"line {line}: new variants {', '.join(map(str, new))}; see {Path(project) / 'storyboard.png'}"
               f" (pick one with `musivid pick {project} --line {line} --variant V`)")


@cli.command("pick")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--line", type=click.IntRange(min=1), required=True, help="1-based lyric line number.")
@click.option("--variant", type=click.IntRange(min=0), required=True, help="Variant number (see the storyboard).")
@verbosity
def pick_cmd(project, line, variant, quiet, verbose):
    """Choose which variant of a line the video shows (then `musivid render PROJECT`)."""
    from ..actions import pick_variant

    _setup_logging(quiet, verbose)
    pick_variant(project, line, variant)
    click.echo(f"line {line}: variant {variant} picked; render with `musivid render {project}`")


@cli.command("render")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Output .mp4 (default: the project's last output).")
@OVERWRITE
@click.option("--fps", type=Finite(), default=None, help="Frame rate for this render (default: the project's).")
@click.option("--size", type=int, default=None, help="Video side in pixels for this render.")
@click.option("--crf", type=int, default=None, help="H.264 quality for this render, 0 to 51.")
@click.option("--preset", type=click.Choice(X264_PRESETS), default=None,
              help="x264 speed/size trade-off for this render (default: the project's).")
@captions_option("Burn in the lyric lines for this render: line, or karaoke (default: the project's).")
@click.option("--no-captions", is_flag=True, help="No burned-in captions in this render.")
@FONT
@click.option("--reactivity", type=Finite(), default=None, help="Motion for this render: 0 pure glide .. 1 only on hits.")
@motion_options(render=True)
@click.option("--pulse", type=Finite(), default=None, help="Kick on onsets for this render, 0 (off) to 5.")
@click.option("--save", is_flag=True, help="Keep this render's fps, size, crf, preset, captions, font and motion as "
              "the project's settings (default: this render only).")
@combine(*EXCERPT)
@device_option(None)
@OFFLINE
@verbosity
def render_cmd(project, output, overwrite, fps, size, crf, preset, captions, no_captions, font, reactivity, walk,
               energy, intro, outro, pulse, save, start, duration, device, offline, quiet, verbose):
    """Render the video from a project without optimizing anything."""
    from ..actions import render_project

    _setup_logging(quiet, verbose)
    if no_captions and captions not in (None, "none"):
        raise click.UsageError("--captions and --no-captions exclude each other: pick one")
    captions = "none" if no_captions else captions
    res = render_project(project, output, fps=fps, size=size, captions=captions, crf=crf, preset=preset,
                         font=str(font.expanduser().resolve()) if font else None, device=device, offline=offline,
                         overwrite=overwrite, start=start, duration=duration, save=save, progress=not quiet,
                         reactivity=reactivity, pulse=pulse, walk=walk, energy=energy, intro=intro, outro=outro)
    _done(res, quiet, verbose)


# ---- studio -----------------------------------------------------------------------------------------

@cli.command("studio")
@click.argument("target", required=False, type=click.Path(path_type=Path), metavar="[PROJECT | AUDIO [LYRICS]]")
@click.argument("lyrics", required=False, type=click.Path(path_type=Path), metavar="")
@click.option("--project", "project_dir", type=click.Path(path_type=Path), default=None,
              help="With AUDIO: the project directory (default: AUDIO's name + .musivid).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Another than this machine's own exposes the studio to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8765, or a free one; 0: any free port).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the web browser.")
@click.option("--steps", type=int, default=None, help=f"With AUDIO: optimization steps per line (default {OptimizeConfig.steps}).")
@click.option("--variants", type=int, default=None, help=f"With AUDIO: variants per line (default {OptimizeConfig.variants}).")
@click.option("--cutouts", type=int, default=None, help=f"With AUDIO: CLIP cutouts per step (default {OptimizeConfig.cutouts}).")
@click.option("--fps", type=float, default=None, help=f"With AUDIO: video frame rate (default {RenderConfig.fps:g}).")
@click.option("--size", type=int, default=None, help=f"With AUDIO: video side in pixels (default {RenderConfig.size}).")
@click.option("--captions", is_flag=True, help="With AUDIO: burn the lyric lines into the video.")
@click.option("--asr", type=click.Choice(ASR_CHOICES), default="auto", show_default=True,
              help="With AUDIO: speech recogniser for plain or missing lyrics.")
@click.option("--untrained", is_flag=True, help="With AUDIO: tiny random-weight models (a preview, not real images).")
@device_option(None)
@OFFLINE
@verbosity
def studio_cmd(target, lyrics, project_dir, host, port, open_browser, steps, variants, cutouts, fps, size, captions, asr,
               untrained, device, offline, quiet, verbose):
    """A local web page on a project: pick, re-roll, re-word and re-time lines, preview, render.

    It works on the same project directory as the other commands (use them in turn): every
    line's variants with their CLIP scores, the song's timeline, jobs with live progress.

    \b
    musivid studio song.musivid            open a project made by `musivid song.mp3 ...`
    musivid studio song.mp3 lyrics.lrc     make (or resume) the project, without rendering, and open it
    musivid studio song.mp3 lyrics.lrc --untrained --steps 20 --variants 3
    """
    import importlib.util

    from ..errors import InputError
    from ..project.checks import default_output
    from ..project import default_dir

    if any(importlib.util.find_spec(m) is None for m in ("fastapi", "uvicorn")):
        raise MusividError("musivid studio needs FastAPI and uvicorn: pip install 'musivid[studio]'")
    from ..studio import MakeRequest, Studio, serve

    _setup_logging(quiet, verbose)
    if target is None:
        found = sorted(p for p in Path.cwd().glob("*.musivid") if (p / "project.json").is_file())
        if len(found) != 1:
            raise InputError("give a project directory or an AUDIO file: " + (
                f"here are {', '.join(p.name for p in found)}" if found else "there is no *.musivid project here"))
        target = found[0]
    make = None
    if target.is_dir():
        given = [n for n, v in (("LYRICS", lyrics), ("--project", project_dir), ("--steps", steps), ("--variants", variants),
                                ("--cutouts", cutouts), ("--fps", fps), ("--size", size), ("--captions", captions),
                                ("--untrained", untrained)) if v]
        if given:
            raise InputError(f"{target}: is a project: {', '.join(given)} only apply when the studio makes a project "
                             "from AUDIO (a project keeps its own settings)")
        pdir = target
    else:
        if not target.exists():
            raise InputError(f"{target}: no such file or project directory")
        pdir = project_dir or default_dir(default_output(target))
        make = MakeRequest(target, lyrics, run_settings(steps=steps, variants=variants, cutouts=cutouts, fps=fps,
                                                        size=size, captions="line" if captions else None,
                                                        offline=offline, untrained=untrained, asr=asr,
                                                        device=device or "auto"))
    studio = Studio(pdir, make=make, device=device, offline=offline)

    def ready(url: str) -> None:
        click.echo(f"musivid studio: {url}")
        _say(f"musivid: serving {studio.root}; open the URL above (it holds the access token); Ctrl-C stops")
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    serve(studio, host, port, on_ready=ready)


# ---- align ------------------------------------------------------------------------------------------

@cli.command("align")
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("lyrics", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Timed lyrics (.lrc).")
@OVERWRITE
@click.option("--srt", is_flag=True, help="Also write an .srt beside the .lrc.")
@click.option("--asr", type=click.Choice([a for a in ASR_CHOICES if a not in ("auto", "none")]),
              default="faster-whisper", show_default=True, help="Speech recogniser.")
@click.option("--whisper-model", default=None,
              help=f"Whisper model name or local CTranslate2 directory (default {DEFAULT_WHISPER}).")
@device_option()
@OFFLINE
@ACCEPT_TRUNCATED
@verbosity
def align_cmd(audio, lyrics, output, overwrite, srt, asr, whisper_model, device, offline, accept_truncated, quiet,
              verbose):
    """Time the lyrics against the song (or transcribe it) and write an LRC to check and edit."""
    from ..pipeline import align_lyrics

    _setup_logging(quiet, verbose)
    res = align_lyrics(audio, lyrics, output, asr=asr, whisper_model=whisper_model, srt=srt, offline=offline,
                       device=device, overwrite=overwrite, accept_truncated=accept_truncated)
    click.echo(f"wrote {output} ({len(res.segments)} lines, {res.method})")


# ---- models -------------------------------------------------------------------------------------------

@cli.group()
def models():
    """List, fetch and check pretrained weights."""


@models.command("list")
def models_list():
    """Registered models: name, size, licence, cached or not."""
    from ..images.models.registry import REGISTRY, cache_dir, is_cached

    cache = cache_dir()
    click.echo(f"cache: {cache}")
    for e in REGISTRY.values():
        size = sum(w.size or 0 for w in e.files) / 1e6
        state = "cached" if is_cached(e, cache) else "-"
        pin = "" if e.weights.sha256 else " (no pinned sha256: trust on first use)"
        click.echo(f"{e.name:48s} {e.kind:6s} {size:7.0f} MB  {state:6s}  {e.licence}{pin}")
        click.echo(f"{'':48s} {e.about}")


@models.command("fetch")
@click.argument("names", nargs=-1)
@OFFLINE
@verbosity
def models_fetch(names, offline, quiet, verbose):
    """Download and verify NAMES (default: the default CLIP and BigGAN)."""
    from ..config import DEFAULT_CLIP, ModelConfig
    from ..images.models.registry import FetchOptions, cache_dir, get_entries, offline_from_env, resolve_all

    _setup_logging(quiet, verbose)
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

    _setup_logging(quiet, verbose)
    resolve_all(get_entries((DEFAULT_CLIP, ModelConfig.biggan)), cache_dir(), FetchOptions(offline=True))
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
@click.option("--clip", default="ViT-B-32/openai", show_default=True)
@click.option("--biggan", default="biggan-deep-256", show_default=True)
@click.option("--cutouts", type=click.IntRange(1, 1024), default=32, show_default=True)
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

    _setup_logging(quiet, verbose)
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


# ---- entry point --------------------------------------------------------------------------------------

def run(argv: list[str] | None = None) -> int:
    """Run the command line in this process; returns the exit code (tests call this). An interrupt
    (KeyboardInterrupt, or files.Interrupted from the handlers `main` installs) is exit code
    128 + the signal: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    from ..files import reset_signals

    try:
        rv = cli.main(args=argv, standalone_mode=False, prog_name="musivid")
        return rv if isinstance(rv, int) else 0
    except MusividError as e:
        _say(f"musivid: error: {e}")
        return e.exit_code
    except (click.exceptions.Abort, KeyboardInterrupt) as e:
        cause = e if isinstance(e, Interrupted) else e.__cause__
        code = cause.exit_code if isinstance(cause, Interrupted) else EXIT_INTERRUPTED
        _say(f"musivid: interrupted ({signal.Signals(code - 128).name}): finished work is kept in the project "
             "directory; run the same command again to resume")
        return code
    except click.exceptions.ClickException as e:
        e.show()
        return e.exit_code
    finally:
        reset_signals()
        _reset_logging()


def main() -> None:
    """The `musivid` command: the only place signal handlers are installed (the CLI process, not
    the library nor a program that calls `run`): SIGINT, SIGTERM and SIGHUP stop the command
    cleanly (files.on_signal: temp files removed, the checkpoint saved)."""
    from ..files import on_signal

    for s in STOP_SIGNALS:
        signal.signal(s, on_signal)
    try:
        code = run()
    except KeyboardInterrupt as e:  # a signal in the instant after the command ended
        code = e.exit_code if isinstance(e, Interrupted) else EXIT_INTERRUPTED
    sys.exit(code)
