"""`musivid studio`: the local web page on a project."""
from __future__ import annotations

from pathlib import Path

import click

from ..config import ASR_CHOICES, OptimizeConfig, RenderConfig
from ..errors import MusividError
from .app import cli, say, setup_logging
from .options import OFFLINE, device_option, run_settings, verbosity


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
    from ..project import default_dir, is_project

    if any(importlib.util.find_spec(m) is None for m in ("fastapi", "uvicorn")):
        raise MusividError("musivid studio needs FastAPI and uvicorn: pip install 'musivid[studio]'")
    from ..studio import MakeRequest, Studio, serve

    setup_logging(quiet, verbose)
    if target is None:
        found = sorted(p for p in Path.cwd().glob("*.musivid") if is_project(p))
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
        say(f"musivid: serving {studio.root}; open the URL above (it holds the access token); Ctrl-C stops")
        if open_browser:
            import webbrowser

            webbrowser.open(url)

    serve(studio, host, port, on_ready=ready)
