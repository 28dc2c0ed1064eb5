"""The whole run: audio + lyrics → segments → keyframes → optimized latents → video.

`make_video` is the library entry point behind `musivid AUDIO [LYRICS]`. It reports through a
Reporter (the CLI prints; tests collect) and never prints itself.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from .config import ModelConfig, OptimizeConfig, RenderConfig, RhythmConfig, ScheduleConfig
from .errors import InputError

log = logging.getLogger(__name__)

UNTRAINED_NOTE = ("UNTRAINED: tiny random-weight models (--untrained); this video is a pipeline "
                  "preview, not a real result")


@dataclass(frozen=True)
class RunSettings:
    optimize: OptimizeConfig = OptimizeConfig()
    render: RenderConfig = RenderConfig()
    models: ModelConfig = ModelConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    rhythm: RhythmConfig = RhythmConfig()
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    asr: str = "auto"  # auto | none | faster-whisper | openai-whisper (plain lyrics / no lyrics)
    whisper_model: str | None = None  # name or local directory
    progress: bool = False


@dataclass
class Reporter:
    """Where the library's user-facing messages go (the CLI prints them)."""

    info: Callable[[str], None] = lambda m: log.info(m)
    warn: Callable[[str], None] = lambda m: log.warning(m)


@dataclass(frozen=True)
class VideoResult:
    video: Path
    srt: Path
    project: Path | None
    segments: list
    keyframes: list
    scores: list[float]  # chosen variant's CLIP score per segment
    untrained: bool
    frames: int
    timings: dict[str, float] = field(default_factory=dict)


def resolve_device(name: str) -> tuple[torch.device, torch.dtype | None]:
    """'auto' → CUDA when present. Returns the device and the autocast dtype (bf16 on CUDA)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda: no CUDA GPU is available here: use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise InputError(f"--device {name}: unknown device: use auto, cpu or cuda")
    dev = torch.device(name)
    return dev, (torch.bfloat16 if dev.type == "cuda" else None)


def default_output(audio: Path) -> Path:
    return audio.with_suffix(".mp4")


def make_video(audio_path: str | Path, lyrics_path: str | Path | None, out_path: str | Path | None,
               settings: RunSettings = RunSettings(), *, project_dir: str | Path | None = None,
               reporter: Reporter | None = None) -> VideoResult:
    """Everything `musivid AUDIO [LYRICS]` does: resumes from the project directory if any."""
    from .render import check_writable

    audio_path = Path(audio_path)
    out = Path(out_path) if out_path else default_output(audio_path)
    if out.suffix.lower() != ".mp4":
        raise InputError(f"{out}: the output must be an .mp4 file: pass -o NAME.mp4")
    check_writable(out)
    from .models.load import ensure_weights

    ensure_weights(settings.models, settings.progress, (reporter or Reporter()).warn)
    pdir = Path(project_dir) if project_dir else default_dir(out)
    job = prepare(pdir, audio_path, Path(lyrics_path) if lyrics_path else None, settings, reporter)
    optimize_pending(job)
    return render_job(job, out)


# the stages live in musivid/job.py; re-exported here as the public pipeline API
from .job import default_dir, optimize_pending, prepare, render_job  # noqa: E402
