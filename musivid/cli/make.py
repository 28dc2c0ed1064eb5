"""`musivid AUDIO [LYRICS]` (the hidden `make` command), `musivid batch` and `musivid align`: from songs
to videos or timed lyrics."""
from __future__ import annotations

import difflib
from pathlib import Path

import click

from ..config import ASR_CHOICES, DEFAULT_WHISPER
from .app import cli, report_done, setup_logging
from .options import (ACCEPT_TRUNCATED, EXCERPT, OFFLINE, OVERWRITE, SCALE, SETTINGS, combine, device_option,
                      run_settings, verbosity)


class MakeContext(click.Context):
    """The hidden `make` command is typed as `musivid AUDIO ...`: its messages name `musivid`."""

    @property
    def command_path(self) -> str:
        return self.parent.command_path if self.parent is not None else "musivid"


class MakeCommand(click.Command):
    """`musivid AUDIO [LYRICS] [OPTIONS]`: a mistyped option shows that usage and points at
    `musivid --help`, which lists every option."""

    context_class = MakeContext

    def format_usage(self, ctx, formatter):
        formatter.write_usage("musivid", "AUDIO [LYRICS] [OPTIONS]")

    def parse_args(self, ctx, args):
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as e:  # the closest option alone: `--fsp` -> Did you mean '--fps'?
            e.possibilities = difflib.get_close_matches(e.option_name, e.possibilities or [], n=1)
            raise


@cli.command("make", cls=MakeCommand, hidden=True)
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

    setup_logging(quiet, verbose)
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
    report_done(res, quiet, verbose)


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

    setup_logging(quiet, verbose, only_from=None if verbose else ("musivid.scale.batch", "musivid.scale.workers"))
    settings = run_settings(**options)
    found = find_songs(list(songs))
    with open_pool(settings.models, settings.device, gpus=gpus, workers=workers, ray_address=ray_address,
                   use_ray=not no_ray, exact=False, inline_ok=True) as pool:
        results = run_batch(found, outdir, settings, pool, overwrite=overwrite)
    click.echo(summary(results))
    raise_if_failed(results)


@cli.command("align")
@click.argument("audio", type=click.Path(path_type=Path))
@click.argument("lyrics", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Timed lyrics (.lrc).")
@click.option("-y", "--overwrite", is_flag=True,
              help="Replace an existing .lrc (and .srt); an input is never replaced.")
@click.option("--srt", is_flag=True, help="Also write an .srt beside the .lrc.")
@click.option("--keep-prompts", is_flag=True, help="Keep the lines' image prompts (' | PROMPT') in the .lrc "
              "(default: the words only; the prompts are never aligned).")
@click.option("--asr", type=click.Choice([a for a in ASR_CHOICES if a not in ("auto", "none")]),
              default="faster-whisper", show_default=True, help="Speech recogniser.")
@click.option("--whisper-model", default=None,
              help=f"Whisper model name or local CTranslate2 directory (default {DEFAULT_WHISPER}).")
@device_option()
@OFFLINE
@ACCEPT_TRUNCATED
@verbosity
def align_cmd(audio, lyrics, output, overwrite, srt, keep_prompts, asr, whisper_model, device, offline,
              accept_truncated, quiet, verbose):
    """Time the lyrics against the song (or transcribe it) and write an LRC to check and edit."""
    from ..pipeline import align_lyrics

    setup_logging(quiet, verbose)
    res = align_lyrics(audio, lyrics, output, asr=asr, whisper_model=whisper_model, srt=srt, offline=offline,
                       device=device, overwrite=overwrite, accept_truncated=accept_truncated, keep_prompts=keep_prompts)
    click.echo(f"wrote {output} ({len(res.segments)} lines, {res.method})")
