"""The README's first hour, as a new user types it: the quick start's and the usage section's
commands, extracted from README.md and run on a temporary copy of the samples (song.mp3 is the
demo song, lyrics.txt / lyrics.lrc its lyrics), with no model hub reachable and an empty model
cache. Where pretrained weights would be needed `--untrained` is appended, and short excerpts with
the fewest steps keep it fast (later options win in click). Every command must succeed, say no
traceback, no library's exception name, and resolve (no "command not found")."""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SAMPLES, musivid, no_network

README = (ROOT / "README.md").read_text(encoding="utf-8")
# appended to every command that makes a video: tiny models, one step, 2 frames per second of 32 px
QUICK = ["--untrained", "--steps", "1", "--cutouts", "2", "--fps", "2", "--size", "32"]
LIBRARY_ERROR = re.compile(r"\b[A-Z]\w*(Error|Exception)\b|Error:|Traceback|https?://")


def section(title: str) -> str:
    """A section of the README (## or ###), up to the next heading of its level or above."""
    m = re.search(rf"\n(#+) {re.escape(title)}\n", README)
    nxt = re.search(rf"\n\n#{{1,{len(m.group(1))}}} ", README[m.end():])  # not a comment in a code block
    return README[m.start():m.end() + nxt.start() if nxt else None]


def commands(text: str) -> list[str]:
    """The shell lines of the ```sh blocks of `text`, without their comments."""
    out = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("  #")[0].split(" # ")[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


QUICK_START = commands(section("Quick start"))
USE = commands(section("Use"))


def test_the_readme_commands_are_found():
    """The quick start's musivid commands are preceded by activating the venv; `make` targets come
    first; the last line is a musivid command."""
    assert QUICK_START[:2] == ["make demo", "make test"], QUICK_START
    assert QUICK_START[-1].startswith(("musivid ", ".venv/bin/musivid ")), QUICK_START
    assert "source .venv/bin/activate" in QUICK_START, "the quick start must say how to reach the musivid command"
    assert [c for c in USE if c.startswith("musivid ")] == USE and len(USE) >= 5, USE


def test_the_musivid_command_is_where_the_readme_says():
    """`source .venv/bin/activate` then `musivid`: the activate script and the console script sit
    side by side in the environment's bin directory, and the console script runs."""
    bindir = Path(sys.executable).parent
    assert (bindir / "activate").is_file(), f"{bindir}/activate is missing: the README's `source` line fails"
    exe = bindir / "musivid"
    assert exe.is_file() and os.access(exe, os.X_OK), f"{exe} is missing: `musivid: command not found`"
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "Usage: musivid AUDIO [LYRICS] [OPTIONS]" in r.stdout, r.stderr


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A copy of the samples as the README names them, as the current directory, with an empty
    model cache and no network."""
    shutil.copytree(SAMPLES, tmp_path / "samples", ignore=shutil.ignore_patterns("songs"))
    for src, dst in (("demo.mp3", "song.mp3"), ("demo.txt", "lyrics.txt"), ("demo.lrc", "lyrics.lrc")):
        shutil.copy(SAMPLES / src, tmp_path / dst)
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MUSIVID_OFFLINE", raising=False)
    no_network(monkeypatch)
    return tmp_path


def run_as_typed(line: str):
    args = shlex.split(line)
    assert args[0] in ("musivid", ".venv/bin/musivid"), f"{line}: not a musivid command"
    r = musivid(*args[1:], *QUICK)
    shown = r.stdout + r.stderr
    assert r.returncode == 0, f"{line}\n{shown}"
    bad = LIBRARY_ERROR.search(r.stderr)
    assert bad is None, f"{line}: a message a user cannot act on ({bad.group(0)!r}):\n{r.stderr}"
    assert "wrote " in r.stdout, shown
    return r


@pytest.mark.slow  # ~20-45 s: `make test-all` (the suite must stay under 5 minutes on 2 cores)
def test_quick_start_and_usage_commands_run_as_written(workdir):
    """Every command of the quick start and of the usage section, in order, in one directory (as a
    user would type them): each succeeds and says nothing a user cannot act on. Plain lyrics are
    timed with the multilingual base of musivid[asr-offline] (a test dependency) since Whisper
    small cannot be downloaded: said in one plain warning."""
    said = []
    for line in [c for c in QUICK_START if "musivid " in c] + USE:
        said.append(run_as_typed(line).stderr)
    whisper = [ln for s in said for ln in s.splitlines() if "Whisper small" in ln]
    assert whisper, "the fallback from Whisper small was not said"
    assert all("cannot be reached" in ln and "musivid[asr-offline]" in ln for ln in whisper), whisper


def test_the_python_api_example_runs_as_a_preview(workdir, capsys):
    """The README's Python example with its untrained line switched on (and the fewest steps,
    frames and pixels): no traceback, and log_to_stderr shows musivid's lines."""
    import logging

    code = re.search(r"```python\n(.*?)```", section("Python API"), re.S).group(1)
    code = code.replace("# settings = RunSettings(models=ModelConfig(untrained=True))",
                        "settings = RunSettings(models=ModelConfig(untrained=True))")
    code = code.replace("RunSettings(models=ModelConfig(untrained=True))",
                        "RunSettings(models=ModelConfig(untrained=True), optimize=OptimizeConfig(steps=1, "
                        "variants=2, cutouts=2), render=RenderConfig(fps=2, size=32))")
    code = code.replace("size=512", "size=32")
    assert "untrained=True)" in code and "log_to_stderr" in code
    try:
        exec(compile(code, "README.md (Python API)", "exec"), {})
    finally:  # the other tests' logging as it was
        logging.getLogger("musivid").propagate = True
        for h in list(logging.getLogger("musivid").handlers):
            if type(h).__name__ == "_StderrLines":
                logging.getLogger("musivid").removeHandler(h)
        logging.getLogger("musivid").setLevel(logging.NOTSET)
    err = capsys.readouterr().err
    assert "musivid: reading song.mp3" in err and "Traceback" not in err, err
