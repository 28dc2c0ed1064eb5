"""Command line: the only code (with the studio) that prints or exits. This module: the group,
the messages, the exit codes; one module per kind of command registers its commands on `cli`
(make: make, batch, align; edit: variants, pick, prompt, render; studio; tools: models, bench), and
main.run/main run it.

    musivid AUDIO [LYRICS] [OPTIONS]               render a music video (see `musivid --help`)
    musivid variants PROJECT --line N [--count K]  re-roll a line
    musivid pick PROJECT --line N --variant V      choose the variant a line shows
    musivid prompt PROJECT --line N TEXT|--clear   what one line's image shows (not its words)
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
from pathlib import Path

import click

from .options import HELP_SECTIONS

EXIT_INTERRUPTED = 130
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


# ---- messages ---------------------------------------------------------------------------------------

def say(msg: str) -> None:
    click.echo(msg, err=True)


class LogHandler(logging.Handler):
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
            say(f"musivid: warning: {msg}")
        elif record.levelno >= logging.INFO:
            say(f"musivid: {msg}")
        else:
            say(f"musivid: debug: {record.name}: {msg}")


def setup_logging(quiet: bool, verbose: bool, only_from: tuple[str, ...] | None = None) -> None:
    """`musivid: ...` lines for the library's messages; with `only_from`, INFO lines only from
    those loggers (batch: one line per song and stage, not every song's details)."""
    reset_logging()
    logger = logging.getLogger("musivid")
    handler = LogHandler()
    if only_from:
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name.startswith(only_from))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO)
    logger.propagate = False  # a library that calls logging.basicConfig() must not print them twice


def reset_logging() -> None:
    logger = logging.getLogger("musivid")
    for h in [h for h in logger.handlers if isinstance(h, LogHandler)]:
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


def report_done(res, quiet: bool, verbose: bool) -> None:
    note = " [UNTRAINED random weights: preview only]" if res.untrained else ""
    click.echo(f"wrote {res.video} ({res.frames} frames){note}")
    if not quiet:
        board = " (storyboard.png inside)" if (Path(res.project) / "storyboard.png").is_file() else ""
        say(f"musivid: captions {res.srt}; project {res.project}{board}")  # an excerpt draws none
    if verbose:
        say("musivid: timings: " + ", ".join(f"{k} {v:.2f} s" for k, v in res.timings.items())
             + f"; {res.optimize_steps} optimizer steps")
