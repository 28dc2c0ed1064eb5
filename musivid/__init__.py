"""musivid: turn a song and its lyrics into a music video.

Python API (the same functions the command line uses)::

    from musivid import make_video, RunSettings, OptimizeConfig
    res = make_video("song.mp3", "lyrics.txt", "song.mp4",
                     RunSettings(optimize=OptimizeConfig(steps=300, variants=2)))
    add_variants("song.musivid", line=3, count=2)   # re-roll a line
    pick_variant("song.musivid", line=3, variant=2)
    render_project("song.musivid", fps=30)

The functions and classes are imported on first use, so `import musivid` stays light (no torch).
"""
from __future__ import annotations

__version__ = "0.1.0"

_EXPORTS = {
    "make_video": "pipeline", "add_variants": "actions", "pick_variant": "actions",
    "render_project": "actions", "open_project": "pipeline", "VideoResult": "pipeline", "Picked": "actions",
    "NewVariants": "actions", "ModelCache": "images.models.cache",
    "RunSettings": "config", "OptimizeConfig": "config", "RenderConfig": "config", "ModelConfig": "config",
    "ScheduleConfig": "config", "RhythmConfig": "config", "TimingConfig": "config",
    "MusividError": "errors", "InputError": "errors", "ModelUnavailableError": "errors",
    "load_clip": "images.models.load", "load_biggan": "images.models.load",
}
__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # the real object: its signature and docstring, once imported
        return value
    raise AttributeError(f"module 'musivid' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
