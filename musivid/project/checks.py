"""Checks before any work, cheapest first, each naming the file, the problem and the fix: the
input files and local model paths (check_inputs), the output and its side files (check_output,
default_output), the project directory (check_project_dir). Nothing here writes anything."""
from __future__ import annotations

import logging
from pathlib import Path

from .. import config as C
from ..errors import InputError, ModelUnavailableError
from ..files import check_writable, looks_like_path, same_file
from .store import FILES, Project, is_project

log = logging.getLogger(__name__)


def check_inputs(audio: Path, lyrics: Path | None, models: C.ModelConfig | None = None,
                 whisper: str | None = None):
    """The cheap checks, before any weight is fetched or anything written, all reported in one
    line: the files exist, the lyrics parse, the local model paths exist. Returns the lyrics."""
    from ..song.lyrics import load
    from ..images.models.load import model_problems

    problems, lyr = [], None
    if not audio.exists():
        problems.append(f"{audio}: no such file: check the audio path")
    elif audio.is_dir():
        problems.append(f"{audio}: is a directory, not an audio file")
    try:
        lyr = load(lyrics) if lyrics is not None else None
    except InputError as e:
        problems.append(str(e))
    if whisper and looks_like_path(whisper) and not Path(whisper).expanduser().exists():
        problems.append(f"--whisper-model {whisper}: no such directory: give a Whisper model name (e.g. "
                        f"small) or a local CTranslate2 model directory")
    bad, bad_path = model_problems(models) if models is not None and not models.untrained else ([], False)
    if problems or bad:
        raise (InputError if problems or bad_path else ModelUnavailableError)("; ".join(problems + bad))
    return lyr


def default_output(audio: Path, inputs: list[Path | None] = ()) -> Path:
    """AUDIO's name with .mp4, or NAME.video.mp4 when that (or its .srt) would replace an input (a
    video given as the audio, lyrics named NAME.srt); said in the log."""
    out = audio.with_suffix(".mp4")
    if any(src is not None and same_file(t, src) for t in (out, out.with_suffix(".srt")) for src in [audio, *inputs]):
        alt = audio.with_name(audio.stem + ".video.mp4")
        log.info("the default output %s would replace an input: writing %s", out.name, alt.name)
        out = alt
    return out


def check_output(out: Path, inputs: list[Path | None], project: Project | None = None, overwrite: bool = False,
                 side: tuple[str, ...] = (".srt",)) -> None:
    """Before any slow work: the output (.mp4, or .lrc for `align`) and its side files (NAME.srt)
    go to a writable place, replace none of the inputs (not even with `overwrite`), and replace an
    existing file only if it is this project's own last output (or with `overwrite`)."""
    kind = "video" if out.suffix.lower() == ".mp4" else "lrc"
    targets = [(out, kind)] + [(out.with_suffix(ext), ext[1:]) for ext in side]
    for target, what in targets:
        for src in inputs:
            if src is not None and same_file(target, src):
                raise InputError(f"{target}: is an input of this run and would be overwritten: choose another -o")
        ours = project is not None and project.output(what) == target.resolve()
        if target.exists() and not overwrite and not ours:
            raise InputError(f"{target}: exists{'' if project is None else ' and is not from this project'}: pass "
                             "-y/--overwrite to replace it, or choose another -o")
    check_writable(out)


def check_project_dir(root: Path, inputs: list[Path | None]) -> None:
    """The project directory can be made or reused: it is no input, no file, not some other
    non-empty directory (whose files a project would mix with or replace), in a writable place."""
    for src in inputs:
        inside = src is not None and root.resolve() in src.resolve().parents
        if src is not None and (same_file(root, src) or (inside and src.resolve().relative_to(root.resolve()).parts[0]
                                                         in FILES)):
            raise InputError(f"{src}: is an input of this run and the project directory {root} would replace it: "
                             "choose another --project")
    if root.exists() and not root.is_dir():
        raise InputError(f"{root}: exists and is not a project directory: choose another --project")
    if root.is_dir() and not is_project(root):
        other = sorted(p.name for p in root.iterdir() if p.name not in FILES)
        if other:
            raise InputError(f"{root}: is not a musivid project and holds other files ({', '.join(other[:3])}): "
                             "choose another --project (a new or empty directory)")
    if not root.exists():
        check_writable(root, "--project")
