"""musivid: turn a song and its lyrics into a music video.

Public API (imported lazily so `import musivid` stays light):
    make_video(audio, lyrics, out, settings)   the whole pipeline (musivid.pipeline)
    RunSettings, OptimizeConfig, RenderConfig, ModelConfig
"""
from __future__ import annotations

__version__ = "0.1.0"

from .config import ModelConfig, OptimizeConfig, RenderConfig  # light: no torch

__all__ = ["make_video", "RunSettings", "ModelConfig", "OptimizeConfig", "RenderConfig", "load_clip",
           "load_biggan", "__version__"]


def make_video(*args, **kwargs):
    from .pipeline import make_video as _mv

    return _mv(*args, **kwargs)


def __getattr__(name):
    if name == "RunSettings":
        from .pipeline import RunSettings

        return RunSettings
    if name in ("load_clip", "load_biggan"):
        from .models import load

        return getattr(load, name)
    raise AttributeError(name)
