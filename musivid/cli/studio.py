"""`musivid studio`: the local web page on a project."""
from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from ..errors import MusividError
from .app import cli, say, setup_logging
from .options import ACCEPT_TRUNCATED, SETTINGS, combine, run_settings, verbosity


@cli.command("studio")
@click.argument("target", required=False, type=click.Path(path_type=Path), metavar="[PROJECT | AUDIO [LYRICS]]")
@click.argument("lyrics", required=False, type=click.Path(path_type=Path), metavar="")
@click.option("--project", "project_dir", type=click.Path(path_type=Path), default=None,
              help="With AUDIO: the project directory (default: AUDIO's name + .musivid).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Another than this machine's own exposes the studio to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8765, or a free one; 0: any free port).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the web browser.")
@combine(*SETTINGS)
@ACCEPT_TRUNCATED
@verbosity
def studio_cmd(target, lyrics, project_dir, host, port, open_browser, accept_truncated, quiet, verbose, **options):
    """A local web page on a project: pick, re-roll, re-word and re-time lines, preview, render.

    It works on the same project directory as the other commands (use them in turn): every
    line's variants with their CLIP scores, the song's timeline, jobs with live progress. With
    AUDIO it first makes (or resumes) the project, without rendering, with the main command's
    settings options (models, lyric timing, images, motion, output); a project keeps its own, and
    takes only --device and --offline. If the project cannot be made, the page and this command
    say why, and the command stops (exit 1, or 2 for bad input).

    \b
    musivid studio song.musivid            open a project made by `musivid song.mp3 ...`
    musivid studio song.mp3 lyrics.lrc     make (or resume) the project, without rendering, and open it
    musivid studio song.mp3 lyrics.lrc --untrained --steps 20 --variants 3
    musivid studio lied.mp3 lied.txt --whisper-model base --captions karaoke
    """
    import importlib.util

    from ..errors import InputError
    from ..project.checks import default_output
    from ..project import default_dir, is_project

    if any(importlib.util.find_spec(m) is None for m in ("fastapi", "uvicorn")):
        raise MusividError("musivid studio needs FastAPI and uvicorn: pip install 'musivid[studio]'")
    from ..studio import MakeRequest, Studio, serve

    setup_logging(quiet, verbose)
    ctx = click.get_current_context()
    given = [n for n in ("project_dir", "accept_truncated", *options)
             if ctx.get_parameter_source(n) not in (None, ParameterSource.DEFAULT)]
    device = options["device"] if "device" in given else None  # None: the project's
    if target is None:
        found = sorted(p for p in Path.cwd().glob("*.musivid") if is_project(p))
        if len(found) != 1:
            raise InputError("give a project directory or an AUDIO file: " + (
                f"here are {', '.join(p.name for p in found)}" if found else "there is no *.musivid project here"))
        target = found[0]
    make = None
    if target.is_dir():
        names = {p.name: p.opts[-1] for p in ctx.command.params if isinstance(p, click.Option)}
        refused = (["LYRICS"] if lyrics else []) + [names[n] for n in given if n not in ("device", "offline")]
        if refused:
            raise InputError(f"{target}: is a project: {', '.join(refused)} only apply when the studio makes a project "
                             "from AUDIO (a project keeps its own settings)")
        pdir = target
    else:
        if not target.exists():
            raise InputError(f"{target}: no such file or project directory")
        pdir = project_dir or default_dir(default_output(target))
        make = MakeRequest(target, lyrics, run_settings(**options), accept_truncated=accept_truncated)
    studio = Studio(pdir, make=make, device=device, offline=options["offline"])

    def ready(url: str) -> None:
        click.echo(f"musivid studio: {url}")
        say(f"musivid: serving {studio.root}; open the URL above (it holds the access token); Ctrl-C stops")
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    serve(studio, host, port, on_ready=ready)
