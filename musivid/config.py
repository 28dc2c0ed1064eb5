"""Frozen configuration dataclasses: every default lives here, once.

The CLI builds these from its options and the project directory stores them as JSON, so a
resumed run knows exactly which settings produced which latents.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class OptimizeConfig:
    """The batched latent optimizer (musivid/optimize.py).

    Defaults follow big-sleep / the BigGAN+CLIP notebooks (lr 0.07 Adam, sigmoid class vector
    with a sparsity penalty, shared z, cutouts 0.5-0.95 of the image) except where noted.
    """

    steps: int = 200  # optimizer steps per run (all lines and variants move together)
    variants: int = 1  # variants per lyric line
    cutouts: int = 32  # CLIP cutouts per image and step (big-sleep: 128; see benchmarks/RESULTS.md)
    cutout_min: float = 0.5  # smallest cutout side, as a fraction of the image side
    cutout_max: float = 0.95  # largest cutout side
    lr: float = 0.07  # Adam learning rate (big-sleep's value)
    truncation: float = 1.0  # BigGAN truncation used while optimizing and rendering
    per_layer_z: bool = False  # one z per generator block (big-sleep) instead of one shared z
    class_init_mean: float = -3.9  # class logits start near zero probability (big-sleep)
    class_init_std: float = 0.3
    class_sparsity: float = 50.0  # weight of the penalty on the 999 smallest class probabilities
    latent_reg: float = 1.0  # weight of the z regularizer (mean 0, std 1, bounded norm)
    ema_decay: float = 0.0  # 0: keep the best step's latents; >0 (e.g. 0.9): an EMA of the latents
    seed: int = 0  # run seed; each (line, variant) derives its own from it and the line's text
    micro_batch: int = 0  # latents per forward pass; 0 = all at once (halved on CUDA OOM)
    compile: bool = False  # torch.compile the step (CUDA only; measured in benchmarks/)
    checkpoint_every_s: float = 10.0  # how often the callback is asked to checkpoint

    def __post_init__(self) -> None:
        from .errors import InputError

        if self.steps < 0:
            raise InputError(f"steps must be >= 0, got {self.steps}: pass --steps 0 or more")
        if self.variants < 1:
            raise InputError(f"variants must be >= 1, got {self.variants}: pass --variants 1 or more")
        if self.cutouts < 1:
            raise InputError(f"cutouts must be >= 1, got {self.cutouts}")
        if not 0.0 < self.cutout_min <= self.cutout_max <= 1.0:
            raise InputError("cutout sizes must satisfy 0 < cutout_min <= cutout_max <= 1")
        if not 0.0 <= self.ema_decay < 1.0:
            raise InputError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if not 0.0 < self.truncation <= 1.0:
            raise InputError(f"truncation must be in (0, 1], got {self.truncation}")


@dataclass(frozen=True)
class RhythmConfig:
    """Beat and onset analysis (musivid/rhythm.py)."""

    sample_rate: int = 22050  # analysis rate; audio is resampled to it
    hop_length: int = 512
    start_bpm: float = 120.0  # librosa's prior; refined by the onset-based correction


@dataclass(frozen=True)
class ScheduleConfig:
    """Keyframes and how motion moves between them (musivid/schedule.py)."""

    snap_window_s: float = 0.35  # a keyframe moves to the nearest beat within this distance
    reactivity: float = 0.5  # 0: linear glide between keyframes; 1: fully driven by percussion
    pulse: float = 0.0  # noise nudge on onsets (0 = off)


@dataclass(frozen=True)
class RenderConfig:
    """Video output (musivid/render.py)."""

    fps: float = 24.0
    size: int = 256  # output side in pixels: BigGAN's native 128/256/512, or upscaled from it
    batch: int = 8  # frames generated per forward pass
    crf: int = 20  # x264 quality
    audio_bitrate: int = 192_000
    captions: bool = False  # burn the current lyric line into the picture

    def __post_init__(self) -> None:
        from .errors import InputError

        if not self.fps > 0 or self.fps > 240:
            raise InputError(f"fps must be in (0, 240], got {self.fps}: pass e.g. --fps 24")
        if self.size < 32 or self.size > 2048 or self.size % 2:
            raise InputError(
                f"size must be an even number of pixels from 32 to 2048, got {self.size}: "
                "pass e.g. --size 256"
            )
        if self.batch < 1:
            raise InputError(f"render batch must be >= 1, got {self.batch}")


@dataclass(frozen=True)
class ModelConfig:
    """Which models to use and where their weights come from (musivid/models/)."""

    clip: str = "ViT-B-32/openai"  # registry name
    biggan: str = "biggan-deep-256"  # registry name
    clip_path: str | None = None  # explicit local weight file (overrides the registry)
    biggan_path: str | None = None
    untrained: bool = False  # tiny random-init models of the same classes (tests, previews)
    offline: bool = False  # never touch the network
    cache_dir: str | None = None  # default: $MUSIVID_CACHE or ~/.cache/musivid


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a config from JSON data, ignoring unknown keys (written by a newer version)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})
