"""musivid: turn a song and its lyrics into a music video.

Python API (the same functions the command line uses)::

    from musivid import make_video, RunSettings, OptimizeConfig
    res = make_video("song.mp3", "lyrics.txt", "song.mp4",
                     RunSettings(optimize=OptimizeConfig(steps=300, variants=2)))
    add_variants("song.musivid", line=3, count=2)   # re-roll a line
    pick_variant("song.musivid", line=3, variant=2)
    render_project("song.musivid", fps=30)

Messages go to the `musivid` logger; `musivid.log_to_stderr()` shows them as the command line
does (`musivid: ...` lines on stderr). A preview without any download:
`RunSettings(models=ModelConfig(untrained=True))` (tiny random-weight models, like `--untrained`).

The functions and classes are imported on first use, so `import musivid` stays light (no torch).
"""
from __future__ import annotations

import logging

__version__ = "0.1.0"


class _StderrLines(logging.Handler):
    """`musivid: ...`, `musivid: warning: ...`, `musivid: debug: LOGGER: ...` lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        import sys

        msg = record.getMessage()
        if record.levelno >= logging.ERROR:
            line = f"musivid: error: {msg}"
        elif record.levelno >= logging.WARNING:
            line = f"musivid: warning: {msg}"
        elif record.levelno >= logging.INFO:
            line = f"musivid: {msg}"
        else:
            line = f"musivid: debug: {record.name}: {msg}"
        try:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never break the run (a closed stderr)
            self.handleError(record)


def log_to_stderr(level: str | int = "INFO") -> None:
    """Show musivid's messages on stderr as the command line does: "INFO" (default: what is
    happening and the summary of every stage, with the time remaining of long ones), "WARNING"
    (like `-q`: only what you should know), "DEBUG" (like `-v`). Only the `musivid` loggers:
    other libraries' log lines stay out, and the lines are not passed on to the root logger (no
    duplicates under `logging.basicConfig`). Calling it again replaces the previous setting."""
    logger = logging.getLogger("musivid")
    for h in [h for h in logger.handlers if isinstance(h, _StderrLines)]:
        logger.removeHandler(h)
    logger.addHandler(_StderrLines())
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    logger.propagate = False

_EXPORTS = {
    "make_video": "pipeline", "add_variants": "actions", "pick_variant": "actions",
    "render_project": "actions", "open_project": "pipeline", "VideoResult": "pipeline", "Picked": "actions",
    "NewVariants": "actions", "ModelCache": "images.models.cache",
    "RunSettings": "config", "OptimizeConfig": "config", "RenderConfig": "config", "ModelConfig": "config",
    "ScheduleConfig": "config", "RhythmConfig": "config", "TimingConfig": "config", "DirectionConfig": "config",
    "set_line_prompt": "actions",
    "MusividError": "errors", "InputError": "errors", "ModelUnavailableError": "errors",
    "load_clip": "images.models.load", "load_biggan": "images.models.load",
}
__all__ = [*_EXPORTS, "__version__", "log_to_stderr"]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # the real object: its signature and docstring, once imported
        return value
    raise AttributeError(f"module 'musivid' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
