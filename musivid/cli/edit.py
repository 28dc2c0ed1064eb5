"""The commands on an existing project: `musivid variants`, `pick`, `prompt` and `render`."""
from __future__ import annotations

from pathlib import Path

import click

from ..config import X264_PRESETS
from .app import cli, report_done, setup_logging
from .options import (EXCERPT, FONT, OFFLINE, OVERWRITE, Finite, captions_option, combine, device_option,
                      frame_options, frame_settings, motion_options, verbosity)


def _kept(kept: tuple[tuple[int, int], ...], flag: str) -> str:
    """ (lines 5 and 8 repeat its words and keep variant 0; --all-repeats changes them too)"""
    if not kept:
        return ""
    same, many = len({v for _, v in kept}) == 1, len(kept) > 1
    n = [f"{ln}" if same else f"{ln} (variant {v})" for ln, v in kept]
    names = n[0] if not many else f"{', '.join(n[:-1])} and {n[-1]}"
    what = f"variant {kept[0][1]}" if same else "theirs"
    return (f" (line{'s' * many} {names} repeat{'' if many else 's'} its words and keep{'' if many else 's'} {what}; "
            f"--all-repeats {flag})")


ALL_REPEATS = click.option("--all-repeats", is_flag=True,
                           help="Also every other line with the same words (by default they keep their image).")


@cli.command("variants")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--line", type=click.IntRange(min=1), required=True, help="1-based lyric line number.")
@click.option("--count", type=click.IntRange(1, 64), default=2, show_default=True, help="How many new variants.")
@ALL_REPEATS
@device_option(None)
@OFFLINE
@verbosity
def variants_cmd(project, line, count, all_repeats, device, offline, quiet, verbose):
    """Optimize COUNT new variants of one line; every other line stays as it is (lines with the same
    words share the new variants but keep their image, unless --all-repeats)."""
    from ..actions import add_variants

    setup_logging(quiet, verbose)
    res = add_variants(project, line, count, all_repeats=all_repeats, device=device, offline=offline,
                       progress=not quiet)
    which = f"line {line}" if len(res.lines) == 1 else f"lines {', '.join(map(str, res.lines))} (the same words)"
    click.echo(f"{which}: new variants {', '.join(map(str, res.variants))}"
               f"{_kept(res.kept, 'lets them show the new ones too')}; see {Path(project) / 'storyboard.png'}"
               f" (pick one with `musivid pick {project} --line {line} --variant V`)")


@cli.command("pick")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("--line", type=click.IntRange(min=1), required=True, help="1-based lyric line number.")
@click.option("--variant", type=click.IntRange(min=0), required=True, help="Variant number (see the storyboard).")
@ALL_REPEATS
@verbosity
def pick_cmd(project, line, variant, all_repeats, quiet, verbose):
    """Choose which variant of a line the video shows (then `musivid render PROJECT`): that line
    only, unless --all-repeats (every line with the same words)."""
    from ..actions import pick_variant

    setup_logging(quiet, verbose)
    res = pick_variant(project, line, variant, all_repeats=all_repeats)
    which = f"line {line}" if len(res.changed) == 1 else f"lines {', '.join(map(str, res.changed))} (the same words)"
    click.echo(f"{which}: variant {variant} picked{_kept(res.kept, 'changes them too')}; "
               f"render with `musivid render {project}`")


@cli.command("prompt")
@click.argument("project", type=click.Path(path_type=Path))
@click.argument("text", required=False)
@click.option("--line", type=click.IntRange(min=1), required=True, help="1-based lyric line number.")
@click.option("--clear", is_flag=True, help="Clear the line's image prompt: its image follows its words again.")
@device_option(None)
@OFFLINE
@verbosity
def prompt_cmd(project, text, line, clear, device, offline, quiet, verbose):
    """Set what one line's image shows (TEXT, with optional [classes: ...], [avoid: ...] and
    [image: FILE:WEIGHT]) instead of its words; its caption keeps the words. Only that line is
    optimized again."""
    from ..actions import set_line_prompt

    setup_logging(quiet, verbose)
    if clear == (text is not None):
        raise click.UsageError("give the line's image prompt TEXT, or --clear (not both)")
    have = set_line_prompt(project, line, None if clear else text, device=device, offline=offline, progress=not quiet)
    what = "image prompt cleared (the image follows its words)" if clear else f"image prompt {text!r}"
    click.echo(f"line {line}: {what}; variants {', '.join(map(str, have))}; render with `musivid render {project}`")


@cli.command("render")
@click.argument("project", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Output .mp4 (default: the project's last output).")
@OVERWRITE
@click.option("--fps", type=Finite(), default=None, help="Frame rate for this render (default: the project's).")
@click.option("--size", type=int, default=None, help="The frame's short side in pixels for this render.")
@frame_options(render=True)
@click.option("--crf", type=int, default=None, help="H.264 quality for this render, 0 to 51.")
@click.option("--preset", type=click.Choice(X264_PRESETS), default=None,
              help="x264 speed/size trade-off for this render (default: the project's).")
@captions_option("Burn in the lyric lines for this render: line, or karaoke (default: the project's).")
@click.option("--no-captions", is_flag=True, help="No burned-in captions in this render.")
@FONT
@click.option("--reactivity", type=Finite(), default=None, help="Motion for this render: 0 pure glide .. 1 only on hits.")
@motion_options(render=True)
@click.option("--pulse", type=Finite(), default=None, help="Kick on onsets for this render, 0 (off) to 5.")
@click.option("--save", is_flag=True, help="Keep this render's fps, size, frame, crf, preset, captions, font and "
              "motion as the project's settings (default: this render only).")
@combine(*EXCERPT)
@device_option(None)
@OFFLINE
@verbosity
def render_cmd(project, output, overwrite, fps, size, crf, preset, captions, no_captions, font, reactivity, walk,
               energy, intro, outro, pulse, save, start, duration, device, offline, quiet, verbose, aspect, fill,
               platform, caption_size, caption_position):
    """Render the video from a project without optimizing anything."""
    from ..actions import render_project

    setup_logging(quiet, verbose)
    if no_captions and captions not in (None, "none"):
        raise click.UsageError("--captions and --no-captions exclude each other: pick one")
    captions = "none" if no_captions else captions
    aspect, size = frame_settings(platform, aspect, size)
    res = render_project(project, output, fps=fps, size=size, captions=captions, crf=crf, preset=preset,
                         aspect=aspect, fill=fill, caption_size=caption_size, caption_position=caption_position,
                         font=str(font.expanduser().resolve()) if font else None, device=device, offline=offline,
                         overwrite=overwrite, start=start, duration=duration, save=save, progress=not quiet,
                         reactivity=reactivity, pulse=pulse, walk=walk, energy=energy, intro=intro, outro=outro)
    report_done(res, quiet, verbose)
