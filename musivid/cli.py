"""Command line: the only module that prints or exits.

    musivid AUDIO [LYRICS] [-o OUT.mp4] [--untrained] [--steps N] [--variants N] [--fps N]
            [--size N] [--seed N] [--device auto|cpu|cuda] ...
    musivid models list | fetch NAME... | check
    musivid align AUDIO [LYRICS] -o out.lrc [--srt]
    musivid variants PROJECT --line N [--count K]
    musivid pick PROJECT --line N --variant V
    musivid render PROJECT [-o OUT.mp4]
    musivid bench [--device] [--clip] [--biggan] [--cutouts] [--batch ...]

Heavy modules (torch, av, librosa) are imported inside the commands so `--help` is instant.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from .errors import MusividError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class _DefaultGroup(click.Group):
    """`musivid AUDIO ...` runs the `make` command; named subcommands work as usual."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["make", *args]
        return super().parse_args(ctx, args)


def _say(msg: str) -> None:
    click.echo(msg, err=True)


def _reporter(quiet: bool):
    from .pipeline import Reporter

    return Reporter(info=(lambda m: None) if quiet else (lambda m: _say(f"musivid: {m}")),
                    warn=lambda m: _say(f"musivid: warning: {m}"))


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR,
                        format="musivid: %(levelname)s: %(name)s: %(message)s", stream=sys.stderr)


@click.group(cls=_DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="musivid")
def cli():
    """Turn a song and its lyrics into a music video (BigGAN images found by CLIP, cut on the beat).

    \b
    musivid song.mp3 lyrics.txt          render song.mp4 (lyrics: .txt lines, .lrc, or none)
    musivid song.mp3 lyrics.lrc --untrained   preview the pipeline with tiny random models
    """


def _model_options(f):
    f = click.option("--clip", "clip", default=None, help="CLIP registry name or a local weight file.")(f)
    f = click.option("--biggan", "biggan", default=None, help="BigGAN registry name, weight file or directory.")(f)
    f = click.option("--offline", is_flag=True, help="Never touch the network (also MUSIVID_OFFLINE=1).")(f)
    f = click.option("--untrained", is_flag=True,
                     help="Tiny random-weight models of the same classes: a pipeline preview, not real images.")(f)
    return f


def _model_config(clip, biggan, offline, untrained):
    """--clip/--biggan take a registry name, or else a local path."""
    from .config import ModelConfig
    from .models.registry import REGISTRY

    kw = {"offline": offline, "untrained": untrained}
    for name, value in (("clip", clip), ("biggan", biggan)):
        if value is None:
            continue
        if value in REGISTRY:
            kw[name] = value
        else:
            kw[f"{name}_path"] = str(Path(value).expanduser())
    return ModelConfig(**kw)


@cli.command("make", hidden=True)
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("lyrics", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output .mp4 (default: AUDIO's name + .mp4).")
@click.option("--steps", type=int, default=None, help="Optimization steps (default 200).")
@click.option("--variants", type=int, default=None, help="Variants per lyric line (default 1).")
@click.option("--cutouts", type=int, default=None, help="CLIP cutouts per image and step (default 32).")
@click.option("--fps", type=float, default=None, help="Video frame rate (default 24).")
@click.option("--size", type=int, default=None, help="Video side in pixels (default 256).")
@click.option("--seed", type=int, default=None, help="Run seed (default 0).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda.")
@click.option("--project", "project_dir", type=click.Path(path_type=Path), default=None,
              help="Project directory (default: OUT's name + .musivid).")
@click.option("--asr", default="auto", show_default=True,
              help="Speech recogniser for plain or missing lyrics: auto, faster-whisper, openai-whisper, none.")
@click.option("--whisper-model", default=None, help="Whisper model name or local CTranslate2 directory.")
@click.option("--captions", is_flag=True, help="Burn the current lyric line into the picture.")
@click.option("--reactivity", type=float, default=None, help="0: even glide .. 1: motion only on hits (default 0.5).")
@click.option("--pulse", type=float, default=None, help="Noise kick on onsets (default 0).")
@_model_options
@click.option("-q", "--quiet", is_flag=True, help="Only errors and warnings.")
@click.option("-v", "--verbose", is_flag=True, help="Diagnostic logging.")
def make_cmd(audio, lyrics, output, steps, variants, cutouts, fps, size, seed, device, project_dir, asr,
             whisper_model, captions, reactivity, pulse, clip, biggan, offline, untrained, quiet, verbose):
    """Render AUDIO (+ LYRICS) to a music video."""

    from .config import OptimizeConfig, RenderConfig, ScheduleConfig
    from .pipeline import RunSettings, make_video

    _setup_logging(verbose)

    def pick(**kw):
        return {k: v for k, v in kw.items() if v is not None}

    opt = OptimizeConfig(**pick(steps=steps, variants=variants, cutouts=cutouts, seed=seed))
    ren = RenderConfig(**pick(fps=fps, size=size), captions=captions)
    sch = ScheduleConfig(**pick(reactivity=reactivity, pulse=pulse))
    settings = RunSettings(optimize=opt, render=ren, schedule=sch,
                           models=_model_config(clip, biggan, offline, untrained), device=device,
                           asr=asr, whisper_model=whisper_model, progress=not quiet)
    rep = _reporter(quiet)
    res = make_video(audio, lyrics, output, settings, project_dir=project_dir, reporter=rep)
    _done(res, quiet)


def _done(res, quiet: bool) -> None:
    note = " [UNTRAINED random weights: preview only]" if res.untrained else ""
    click.echo(f"wrote {res.video} ({res.frames} frames){note}")
    if not quiet:
        _say(f"musivid: captions {res.srt}; project {res.project} (storyboard.png inside)")


@cli.group()
def models():
    """List, fetch and check pretrained weights."""


@models.command("list")
def models_list():
    """Registered models: name, size, licence, cached or not."""
    from .models.registry import REGISTRY, cache_dir, is_cached

    cache = cache_dir()
    click.echo(f"cache: {cache}")
    for e in REGISTRY.values():
        size = sum(w.size or 0 for w in e.files) / 1e6
        state = "cached" if is_cached(e, cache) else "-"
        pin = "" if e.weights.sha256 else " (no pinned sha256: trust on first use)"
        click.echo(f"{e.name:48s} {e.kind:6s} {size:7.0f} MB  {state:6s}  {e.licence}{pin}")


@models.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--offline", is_flag=True, help="Only verify what is cached.")
def models_fetch(names, offline):
    """Download and verify NAMES (default: the default CLIP and BigGAN)."""
    from .config import ModelConfig
    from .models.registry import FetchOptions, cache_dir, get_entry, offline_from_env, resolve

    names = names or (ModelConfig.clip, ModelConfig.biggan)
    opts = FetchOptions(offline=offline or offline_from_env(), progress=True,
                        on_warning=lambda m: _say(f"musivid: warning: {m}"))
    for name in names:
        paths = resolve(get_entry(name), cache_dir(), opts)
        click.echo(f"{name}: ok ({', '.join(str(p) for p in paths)})")


@models.command("check")
@click.option("-q", "--quiet", is_flag=True)
def models_check(quiet):
    """Exit 0 if the default models are cached and verify (no network), else 2."""
    from .config import ModelConfig
    from .models.registry import FetchOptions, cache_dir, get_entry, resolve

    for name in (ModelConfig.clip, ModelConfig.biggan):
        resolve(get_entry(name), cache_dir(), FetchOptions(offline=True))
    if not quiet:
        click.echo("default models are cached and verified")


@cli.command("variants")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--line", type=int, required=True, help="1-based lyric line number.")
@click.option("--count", type=int, default=2, show_default=True, help="How many new variants.")
@click.option("--device", default=None, help="Override the project's device.")
@click.option("-q", "--quiet", is_flag=True)
def variants_cmd(project, line, count, device, quiet):
    """Optimize COUNT new variants of one line; every other line stays as it is."""
    from .job import add_variants, open_job
    from .storyboard import write_storyboard

    job = open_job(project, _reporter(quiet), progress=not quiet, device=device)
    new = add_variants(job, line, count)
    write_storyboard(job, job.project.root / "storyboard.png")
    click.echo(f"line {line}: new variants {', '.join(map(str, new))}; see {job.project.root / 'storyboard.png'}"
               f" (pick one with `musivid pick {project} --line {line} --variant V`)")


@cli.command("pick")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--line", type=int, required=True, help="1-based lyric line number.")
@click.option("--variant", type=int, required=True, help="Variant number (see the storyboard).")
def pick_cmd(project, line, variant):
    """Choose which variant of a line the video shows (then `musivid render PROJECT`)."""
    from . import project as proj
    from .errors import InputError
    from .lyrics import clip_text

    p = proj.Project.open(project, must_exist=True)
    segs = p.data.get("timing", {}).get("segments", [])
    if not 1 <= line <= len(segs):
        raise InputError(f"--line {line}: the project has lines 1 to {len(segs)}")
    text = clip_text(segs[line - 1]["text"])[0]
    s = proj.settings_from_json(p.data["settings"])
    have = p.variants_of(text, proj.latent_settings(s.optimize, s.models))
    if variant not in have:
        raise InputError(f"--variant {variant}: line {line} has variants {have}: "
                         f"make more with `musivid variants {project} --line {line}`")
    p.data["picked"][text] = variant
    p.save()
    click.echo(f"line {line}: variant {variant} picked; render with `musivid render {project}`")


@cli.command("render")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Output .mp4 (default: the project's last output).")
@click.option("--fps", type=float, default=None)
@click.option("--size", type=int, default=None)
@click.option("--captions/--no-captions", default=None)
@click.option("--device", default=None)
@click.option("-q", "--quiet", is_flag=True)
def render_cmd(project, output, fps, size, captions, device, quiet):
    """Render the video from a project without optimizing anything."""
    import dataclasses

    from . import project as proj
    from .errors import InputError
    from .job import open_job, render_job
    from .render import check_writable

    p = proj.Project.open(project, must_exist=True)
    out = output or Path(p.data.get("outputs", {}).get("video", Path(project).with_suffix(".mp4")))
    if out.suffix.lower() != ".mp4":
        raise InputError(f"{out}: the output must be an .mp4 file: pass -o NAME.mp4")
    check_writable(out)
    s = proj.settings_from_json(p.data["settings"])
    ren = dataclasses.replace(s.render, **{k: v for k, v in dict(fps=fps, size=size, captions=captions).items()
                                          if v is not None})
    job = open_job(project, _reporter(quiet), progress=not quiet, render=ren, device=device)
    _done(render_job(job, out), quiet)


@cli.command("align")
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("lyrics", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Timed lyrics (.lrc).")
@click.option("--srt", is_flag=True, help="Also write an .srt beside the .lrc.")
@click.option("--asr", default="faster-whisper", show_default=True, help="faster-whisper or openai-whisper.")
@click.option("--whisper-model", default=None, help="Whisper model name or local model directory.")
@click.option("-q", "--quiet", is_flag=True)
def align_cmd(audio, lyrics, output, srt, asr, whisper_model, quiet):
    """Time the lyrics against the song (or transcribe it) and write an LRC to check and edit."""
    from . import timing as al
    from .audio import decode
    from .lyrics import check_times, load
    from .render import write_srt

    rep = _reporter(quiet)
    a = decode(audio, 16000)
    lyr = check_times(load(lyrics), a.duration) if lyrics else None
    fn = None if lyr is not None and lyr.timed else al.aligner(asr, whisper_model, rep, required=True)
    res = al.segments_for(lyr, a, align=fn)
    for w in res.warnings:
        rep.warn(w)
    al.write_lrc(res.segments, output)
    if srt:
        write_srt(res.segments, output.with_suffix(".srt"))
    click.echo(f"wrote {output} ({len(res.segments)} lines, {res.method})")


@cli.command("bench")
@click.option("--device", default="auto", show_default=True)
@click.option("--untrained", is_flag=True, help="Tiny random models (CPU-sized).")
@click.option("--full-size", is_flag=True, help="Full-size architectures with random weights (GPU throughput).")
@click.option("--clip", default="ViT-B-32/openai", show_default=True)
@click.option("--biggan", default="biggan-deep-256", show_default=True)
@click.option("--cutouts", type=int, default=32, show_default=True)
@click.option("--batch", type=str, default="1,4,16", show_default=True, help="Comma-separated batch sizes.")
@click.option("--steps", type=int, default=10, show_default=True, help="Timed steps per measurement.")
@click.option("--compile", "use_compile", is_flag=True,
              help="Also measure the torch.compile'd step, in the same run (CUDA).")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Write results as JSON.")
@click.option("--markdown", "md_out", type=click.Path(path_type=Path), default=None,
              help="Write results as a Markdown block for benchmarks/RESULTS.md.")
def bench_cmd(device, untrained, full_size, clip, biggan, cutouts, batch, steps, use_compile, json_out, md_out):
    """Latent-steps/s of musivid's batched optimizer against the one-prompt reference loop."""
    from .bench import BenchConfig, format_markdown, format_report, run_bench

    sizes = tuple(int(b) for b in batch.split(",") if b.strip())
    cfg = BenchConfig(device=device, untrained=untrained, full_size=full_size, clip=clip, biggan=biggan,
                      cutouts=cutouts, batches=sizes, steps=steps, compile=use_compile)
    report = run_bench(cfg, log=lambda m: _say(f"musivid: {m}"))
    click.echo(format_report(report))
    if json_out:
        import json

        json_out.write_text(json.dumps(report.to_json(), indent=1))
    if md_out:
        md_out.write_text(format_markdown(report) + "\n")


def main() -> None:
    try:
        cli.main(standalone_mode=False, prog_name="musivid")
    except MusividError as e:
        _say(f"musivid: error: {e}")
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        _say("musivid: interrupted: finished work is kept in the project directory; "
             "run the same command again to resume")
        sys.exit(EXIT_INTERRUPTED)
    except KeyboardInterrupt:
        _say("musivid: interrupted: finished work is kept in the project directory; "
             "run the same command again to resume")
        sys.exit(EXIT_INTERRUPTED)
    except click.exceptions.ClickException as e:
        e.show()
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
