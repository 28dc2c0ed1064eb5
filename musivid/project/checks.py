"""Checks before any work, cheapest first, each naming the file, the problem and the fix: the
input files and local model paths (check_inputs), the output and its side files (check_output,
default_output; own_output: which recorded output is still this project's), the project directory
(check_project_dir). Nothing here writes anything."""
from __future__ import annotations

import errno
import logging
import os
import stat
from pathlib import Path

from .. import config as C
from ..errors import InputError, ModelUnavailableError
from ..files import check_writable, looks_like_path, same_file
from .provenance import owns
from .store import FILES, Project, is_project

log = logging.getLogger(__name__)


def check_inputs(audio: Path, lyrics: Path | None, models: C.ModelConfig | None = None,
                 whisper: str | None = None):
    """The cheap checks, before any weight is fetched or anything written, all reported in one
    line: the files exist, the lyrics parse, the local model paths exist. Returns the lyrics."""
    from ..song.lyrics import load
    from ..images.models.load import model_problems

    problems, lyr = [], None
    if (bad := file_problem(audio, "audio")) is not None:
        problems.append(bad)
    bad_lyrics = file_problem(lyrics, "lyrics") if lyrics is not None else None
    try:
        if bad_lyrics is not None:
            problems.append(bad_lyrics)
        else:
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


def file_problem(path: Path, what: str) -> str | None:
    """Why the input `path` (the "audio" or "lyrics") cannot be read as a file, in the words of the
    one-line message; None when it is a regular file (or one reading will say more about). A pipe
    would block or read empty and a symlink loop looks missing, so both are named as what they are."""
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return f"{path}: is a symlink loop (its links point back to each other): give the {what} file itself"
        if os.path.islink(path):
            return f"{path}: is a broken symlink (to {os.readlink(path)}): give the {what} file itself"
        if isinstance(e, FileNotFoundError) or e.errno == errno.ENOTDIR:
            return f"{path}: no such file: check the {what} path"
        return None  # unreadable: reading it says why (permissions)
    if stat.S_ISDIR(st.st_mode):
        return f"{path}: is a directory, not {'an audio' if what == 'audio' else 'a lyrics'} file"
    if stat.S_ISFIFO(st.st_mode):
        return f"{path}: is a pipe, not a file: save the {what} to a file and give its path"
    if not stat.S_ISREG(st.st_mode):
        return f"{path}: is a device or socket, not a file: save the {what} to a file and give its path"
    return None


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
        if target.exists() and not overwrite and not (project is not None and own_output(project, what) == target.resolve()):
            raise InputError(f"{target}: exists{'' if project is None else ' and is not from this project'}: pass "
                             "-y/--overwrite to replace it, or choose another -o")
    check_writable(out)


def own_output(project: Project, kind: str = "video") -> Path | None:
    """The project's last "video" or "srt" (Project.output) unless it is another project's now:
    a video there that does not carry this project directory's id (provenance.owns). A copied or
    moved project inherits the path of the original's video, which is not its own: None then (and
    None before the first render). A recorded output that is gone is returned: nobody's file."""
    recorded, video = project.output(kind), project.output("video")
    if recorded is None or (video is not None and video.exists() and not owns(project.root, video)):
        return None
    return recorded


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
    if is_project(root) and (root / "latents").is_dir():  # a latent file's place taken: saving it would fail late
        for entry in sorted((root / "latents").iterdir()):
            if entry.suffix == ".pt" and not entry.is_file():
                raise InputError(f"{entry}: is not a latent file (a directory or other non-file is in its place): "
                                 "remove it, and its line is optimized again")
