"""Frozen configuration dataclasses: every default lives here, once, and is validated here.

The CLI and the Python API build these; the project directory stores them as JSON
(`RunSettings.to_json` / `from_json`), so a resumed run knows exactly which settings produced which
latents. Nothing here imports torch at module level (`musivid --help` stays instant).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import re
import threading
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Iterator, TypeVar

from .errors import InputError

T = TypeVar("T")

DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
ASR_CHOICES = ("auto", "faster-whisper", "openai-whisper", "none")
DEFAULT_WHISPER = "small"  # the Whisper model used when none is given (downloaded by name)
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
CAPTION_MODES = ("none", "line", "karaoke")
ASPECTS = ("16:9", "9:16", "4:3", "1:1")  # frame shapes (RenderConfig.aspect); video/frame.py sizes them
FILLS = ("blur", "mirror", "black")  # what fills a frame around the square image (video/frame.py)
CAPTION_POSITIONS = ("bottom", "middle", "top")
# --platform NAME: (aspect, size) for where the video goes
PLATFORMS = {"youtube": ("16:9", 1080), "shorts": ("9:16", 1080), "square": ("1:1", 1080)}


def frame_size(aspect: str, short: int) -> tuple[int, int]:
    """(width, height) of a frame of `aspect` ("16:9", "9:16", "4:3", "1:1") whose short side is
    `short` (even): the long side rounded to the nearest even number (H.264's 4:2:0 needs even
    sides): 16:9 of 720 is 1280 x 720, of 480 854 x 480; 4:3 of 256 is 342 x 256."""
    a, b = (int(v) for v in aspect.split(":"))
    long = 2 * round(short * max(a, b) / min(a, b) / 2)
    return (long, short) if a >= b else (short, long)
# ModelConfig.clip "auto": chosen from the lyrics' language when the run starts (models/load.py: choose_clip)
AUTO_CLIP = "auto"
DEFAULT_CLIP = "ViT-B-32/openai"  # English lyrics (and unclear ones)
MULTILINGUAL_CLIP = "xlm-roberta-base-ViT-B-32/laion5b_s13b_b90k"  # lyrics in another language


def _as_floats(cfg: Any) -> None:
    """Store a whole number given for a float field as a float (fps=6 and fps=6.0 are one
    setting: the same JSON, the same latent keys and provenance digest)."""
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if f.type in ("float", "float | None") and isinstance(v, int) and not isinstance(v, bool):
            object.__setattr__(cfg, f.name, float(v))


_COLLECTING = threading.local()  # .lists: the problems each open `collect_errors` gathers, innermost last


def _collected() -> list[list[str]]:
    if not hasattr(_COLLECTING, "lists"):
        _COLLECTING.lists = []
    return _COLLECTING.lists


_KINDS = {"int": (numbers.Integral,), "float": (numbers.Real,), "bool": (bool,), "str": (str,)}
_WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "text"}


def _typed(cfg: Any) -> None:
    """Every field has its declared type (a hand-edited project.json may hold "5", 5.5 for a whole
    number, or a list), and every float is finite (NaN and infinity pass no range check below
    and overflow later): one line naming the setting, before any range is compared."""
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        kind = str(f.type).replace(" | None", "")
        if kind not in _KINDS or (v is None and str(f.type).endswith("| None")):
            continue  # a nested config or tuple: checked by its own rules
        ok = isinstance(v, _KINDS[kind]) and (kind == "bool" or not isinstance(v, bool))
        _need(ok, f"{f.name} must be {_WORDS[kind]}", v, "fix the value (or the project.json it came from)")
        _need(kind != "float" or math.isfinite(v), f"{f.name} must be a finite number", v,
              "fix the value (or the project.json it came from)")


def _need(ok: bool, what: str, value: Any, fix: str) -> None:
    """One-line validation error: the setting, its rule, the value given and how to fix it (kept
    for the end of the `collect_errors` block when one is open)."""
    if not ok:
        msg = f"{what}, got {value!r}: {fix}"
        if _collected():
            _collected()[-1].append(msg)
            return
        raise InputError(msg)


@contextmanager
def collect_errors() -> Iterator[None]:
    """Build several configs and report every bad value in one InputError at the end of the block
    (`--fps 0 --reactivity 5` names both), instead of the first one only."""
    found: list[str] = []
    _collected().append(found)
    try:
        yield
    finally:
        _collected().pop()
    if len(found) == 1:
        raise InputError(found[0])
    if found:
        raise InputError(f"{len(found)} bad values: " + "; ".join(found))


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
        _as_floats(self)
        _typed(self)
        _need(0 <= self.steps <= 100_000, "steps must be from 0 to 100000", self.steps, "pass e.g. --steps 200")
        _need(1 <= self.variants <= 64, "variants must be from 1 to 64", self.variants, "pass e.g. --variants 2")
        _need(1 <= self.cutouts <= 1024, "cutouts must be from 1 to 1024", self.cutouts, "pass e.g. --cutouts 32")
        _need(0.0 < self.cutout_min <= self.cutout_max <= 1.0, "cutout sizes must satisfy "
              "0 < cutout_min <= cutout_max <= 1", (self.cutout_min, self.cutout_max), "fix the config")
        _need(0.0 < self.lr <= 10.0, "lr must be in (0, 10]", self.lr, "use e.g. 0.07")
        _need(0.0 < self.truncation <= 1.0, "truncation must be in (0, 1]", self.truncation, "use e.g. 1.0")
        _need(0.0 <= self.ema_decay < 1.0, "ema_decay must be in [0, 1)", self.ema_decay, "use 0 or e.g. 0.9")
        _need(self.class_init_std >= 0 and self.class_sparsity >= 0 and self.latent_reg >= 0,
              "class_init_std, class_sparsity and latent_reg must be >= 0",
              (self.class_init_std, self.class_sparsity, self.latent_reg), "fix the config")
        _need(0 <= self.seed < 2**63, "seed must be from 0 to 2^63-1", self.seed, "pass e.g. --seed 0")
        _need(self.micro_batch >= 0, "micro_batch must be >= 0", self.micro_batch, "use 0 for all at once")
        _need(self.checkpoint_every_s > 0, "checkpoint_every_s must be > 0", self.checkpoint_every_s,
              "pass e.g. --checkpoint-every 10")


@dataclass(frozen=True)
class RhythmConfig:
    """Beat and onset analysis (musivid/rhythm.py)."""

    sample_rate: int = 22050  # analysis rate; audio is resampled to it
    hop_length: int = 512
    start_bpm: float = 120.0  # librosa's prior; refined by the onset-based correction

    def __post_init__(self) -> None:
        _as_floats(self)
        _typed(self)
        _need(8000 <= self.sample_rate <= 96000, "rhythm sample_rate must be from 8000 to 96000",
              self.sample_rate, "use e.g. 22050")
        _need(32 <= self.hop_length <= 8192, "hop_length must be from 32 to 8192", self.hop_length, "use e.g. 512")
        _need(20.0 <= self.start_bpm <= 400.0, "start_bpm must be from 20 to 400", self.start_bpm, "use e.g. 120")


INTRO_CHOICES = ("title", "drift", "none")
OUTRO_CHOICES = ("drift", "none")


@dataclass(frozen=True)
class ScheduleConfig:
    """Keyframes and the motion of the picture (musivid/schedule.py, interpolate.py): the glide
    from line to line, and the walk that keeps the picture moving with the music everywhere else.
    """

    snap_window_s: float = 0.35  # a keyframe moves to the nearest beat within this distance
    reactivity: float = 0.5  # how strongly the music drives the picture: 0 = today's pure glide
    # (no walk, no intro/outro motion); the glide follows the percussion by this fraction (1: it
    # moves only on hits) and the walk's size is `walk` x reactivity
    pulse: float = 0.0  # noise nudge on onsets (0 = off)
    walk: float = 0.8  # how far the picture strays from a line's image in holds and breaks: the
    # walk's angle on the z sphere (radians, about) at full loudness and reactivity 1
    energy: float = 0.5  # how strongly loudness sizes the walk: 0 = same size everywhere, 1 = none
    # in silence (the walk's size is `walk` x reactivity x (1 - energy + energy x loudness))
    walk_pace: float = 0.5  # new walk directions per beat (the walk moves mostly on the hits)
    settle_beats: float = 2.0  # the walk fades out over this many beats before each keyframe and in
    # after it, so each line's image is exactly what is shown at its keyframe
    intro: str = "title"  # before the first line: "title" glides from an image of the song's title
    # (when the first line starts >= title_min_s in), "drift" wanders into the first line's image,
    # "none" holds it still
    outro: str = "drift"  # after the last line: "drift" wanders ever further away; "none" holds still
    title: str | None = None  # the intro's prompt (default: the audio file's name)
    drift: float = 2.5  # how far the intro starts from / the outro ends from the line's image, in walks
    title_min_s: float = 3.0  # a shorter intro drifts instead of showing a title image

    def __post_init__(self) -> None:
        _as_floats(self)
        _typed(self)
        _need(0.0 <= self.snap_window_s <= 5.0, "snap_window_s must be from 0 to 5", self.snap_window_s,
              "use e.g. 0.35")
        _need(0.0 <= self.reactivity <= 1.0, "reactivity must be from 0 to 1", self.reactivity,
              "pass --reactivity between 0 (pure glide) and 1 (motion only on hits)")
        _need(0.0 <= self.pulse <= 5.0, "pulse must be from 0 to 5", self.pulse, "pass e.g. --pulse 0.3 (0 = off)")
        _need(0.0 <= self.walk <= 3.0, "walk must be from 0 to 3", self.walk, "pass e.g. --walk 0.8 (0 = no walk)")
        _need(0.0 <= self.energy <= 1.0, "energy must be from 0 to 1", self.energy,
              "pass e.g. --energy 0.5 (0: loudness does not matter)")
        _need(0.05 <= self.walk_pace <= 8.0, "walk_pace must be from 0.05 to 8", self.walk_pace, "use e.g. 0.5")
        _need(0.0 <= self.settle_beats <= 32.0, "settle_beats must be from 0 to 32", self.settle_beats, "use e.g. 2")
        _need(self.intro in INTRO_CHOICES, f"intro must be one of {', '.join(INTRO_CHOICES)}", self.intro,
              "pass e.g. --intro title")
        _need(self.outro in OUTRO_CHOICES, f"outro must be one of {', '.join(OUTRO_CHOICES)}", self.outro,
              "pass e.g. --outro drift")
        _need(self.title is None or 0 < len(self.title.strip()) <= 300, "title must be 1 to 300 characters",
              self.title, "pass e.g. --title 'Northern Lights'")
        _need(1.0 <= self.drift <= 10.0, "drift must be from 1 to 10", self.drift, "use e.g. 2.5")
        _need(0.0 <= self.title_min_s <= 600.0, "title_min_s must be from 0 to 600", self.title_min_s, "use e.g. 3")


@dataclass(frozen=True)
class RenderConfig:
    """Video output (musivid/render.py)."""

    fps: float = 24.0
    size: int = 256  # the frame's short side in pixels (the square image's side): BigGAN's native 128/256/512,
    # or resized from it
    batch: int = 16  # frames generated per forward pass (and handed to the encoder thread at once)
    crf: int = 20  # x264 quality: 0 lossless .. 51 worst; 18-23 is visually good
    preset: str = "medium"  # x264 speed/size trade-off: ultrafast .. veryslow (same quality, other size)
    audio_bitrate: int = 192_000
    captions: str = "none"  # none | line (the lyric line being sung) | karaoke (and its word highlighted)
    font: str | None = None  # caption font file tried first (else found per line: musivid/fonts.py)
    aspect: str = "1:1"  # the frame's shape, width:height (16:9 of size 720: 1280 x 720; video/frame.py)
    fill: str = "blur"  # around the square image: blur (the image blurred and darkened), mirror, black
    caption_size: float = 1.0  # caption text size, times the default (1/16 of the frame's short side)
    caption_position: str = "bottom"  # bottom | middle | top

    @property
    def frame(self) -> tuple[int, int]:
        """The video's (width, height) in pixels (frame_size)."""
        return frame_size(self.aspect, self.size)

    def __post_init__(self) -> None:
        if isinstance(self.captions, bool):  # projects and API calls from before karaoke: true/false
            object.__setattr__(self, "captions", "line" if self.captions else "none")
        _as_floats(self)
        _typed(self)
        _need(self.captions in CAPTION_MODES, f"captions must be one of {', '.join(CAPTION_MODES)}", self.captions,
              "pass --captions line or --captions karaoke")
        _need(0 < self.fps <= 240, "fps must be in (0, 240]", self.fps, "pass e.g. --fps 24")
        _need(32 <= self.size <= 2048 and self.size % 2 == 0, "size must be an even number of pixels from 32 "
              "to 2048", self.size, "pass e.g. --size 256")
        _need(1 <= self.batch <= 4096, "render batch must be from 1 to 4096", self.batch, "use e.g. 8")
        _need(0 <= self.crf <= 51, "crf must be from 0 to 51", self.crf, "pass e.g. --crf 20 (lower is better)")
        _need(self.preset in X264_PRESETS, f"preset must be one of {', '.join(X264_PRESETS)}", self.preset,
              "pass e.g. --preset medium")
        _need(16_000 <= self.audio_bitrate <= 1_024_000, "audio_bitrate must be from 16000 to 1024000",
              self.audio_bitrate, "use e.g. 192000")
        _need(self.aspect in ASPECTS, f"aspect must be one of {', '.join(ASPECTS)}", self.aspect,
              "pass e.g. --aspect 16:9 (width:height)")
        _need(self.fill in FILLS, f"fill must be one of {', '.join(FILLS)}", self.fill, "pass e.g. --fill blur")
        _need(0.25 <= self.caption_size <= 4.0, "caption_size must be from 0.25 to 4", self.caption_size,
              "pass e.g. --caption-size 0.75 (1: text 1/16 of the frame's short side)")
        _need(self.caption_position in CAPTION_POSITIONS, f"caption_position must be one of "
              f"{', '.join(CAPTION_POSITIONS)}", self.caption_position, "pass e.g. --caption-position bottom")


@dataclass(frozen=True)
class ModelConfig:
    """Which models to use and where their weights come from (musivid/models/)."""

    clip: str = AUTO_CLIP  # registry name, or auto: ViT-B-32/openai for English lyrics, multilingual otherwise
    biggan: str = "biggan-deep-256"  # registry name
    clip_path: str | None = None  # explicit local weight file (overrides the registry)
    biggan_path: str | None = None
    untrained: bool = False  # tiny random-init models of the same classes (tests, previews)
    offline: bool = False  # never touch the network (weights and speech recognition)
    cache_dir: str | None = None  # default: $MUSIVID_CACHE or ~/.cache/musivid

    def __post_init__(self) -> None:
        _typed(self)

    def model_name(self, kind: str) -> str:
        """How a model is named to people (messages, a video's provenance), one spelling everywhere:
        "clip" or "biggan" -> its registry name, "NAME (local file FILE)", or the untrained tiny one."""
        if self.untrained:
            return {"clip": "untrained tiny CLIP", "biggan": "untrained tiny BigGAN-deep"}[kind]
        name, path = {"clip": (self.clip, self.clip_path), "biggan": (self.biggan, self.biggan_path)}[kind]
        return f"{name} (local file {Path(path).name})" if path else name


@dataclass(frozen=True)
class TimingConfig:
    """Lyric timing for plain lyrics or none (musivid/timing.py). LRC lyrics are used as given."""

    asr: str = "auto"  # auto | faster-whisper | openai-whisper | none
    whisper_model: str | None = None  # name or local CTranslate2 directory; None: the default

    def __post_init__(self) -> None:
        _as_floats(self)
        _typed(self)
        _need(self.asr in ASR_CHOICES, f"asr must be one of {', '.join(ASR_CHOICES)}", self.asr,
              "pass e.g. --asr faster-whisper")


@dataclass(frozen=True)
class DirectionConfig:
    """Creative direction (musivid/images/targets.py): what every line's image is optimized for
    besides its words. All of it keys the latents: a change re-optimizes every line."""

    style: str = ""  # a second text target of every line (README: why not appended to the prompt)
    style_weight: float = 0.5  # its weight (the line's own prompt weighs 1)
    avoid: str = ""  # a negative target: every image is pushed away from this text's embedding
    avoid_weight: float = 0.5  # the negative target's weight (the line's own target weighs 1)
    classes: str = ""  # ImageNet class names, comma-separated: class vectors start on and stay in them
    images: tuple = ()  # image prompts: (path, sha256, weight) each; the sha256 keys the latents

    def __post_init__(self) -> None:
        _as_floats(self)
        _typed(self)
        _need(len(self.style) <= 300 and len(self.avoid) <= 300, "style and avoid must be at most 300 characters",
              (self.style[:40], self.avoid[:40]), "pass a shorter --style / --avoid")
        _need(0.0 < self.avoid_weight <= 10.0, "avoid_weight must be in (0, 10]", self.avoid_weight, "use e.g. 0.5")
        _need(0.0 < self.style_weight <= 10.0, "style_weight must be in (0, 10]", self.style_weight,
              "pass e.g. --style-weight 0.5")
        try:  # from JSON: lists
            images = tuple((str(p), str(h), float(w)) for p, h, w in self.images)
        except (TypeError, ValueError):
            images = None
        _need(images is not None and all(0.0 < w <= 10.0 and math.isfinite(w) for _, _, w in images),
              "images must be (path, sha256, weight) with a weight in (0, 10]", self.images,
              "pass e.g. --image-prompt look.png:0.5")
        object.__setattr__(self, "images", images or ())


@dataclass(frozen=True)
class RunSettings:
    """Everything a run is made with. Stored in the project as JSON."""

    optimize: OptimizeConfig = field(default_factory=OptimizeConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    models: ModelConfig = field(default_factory=ModelConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    rhythm: RhythmConfig = field(default_factory=RhythmConfig)
    timing: TimingConfig = field(default_factory=TimingConfig)
    direction: DirectionConfig = field(default_factory=DirectionConfig)
    device: str = "auto"  # auto | cpu | cuda | cuda:N

    def __post_init__(self) -> None:
        _as_floats(self)
        _typed(self)
        _need(bool(DEVICE_PATTERN.match(self.device)), "device must be auto, cpu, cuda or cuda:N", self.device,
              "pass e.g. --device auto")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunSettings":
        """Settings from a project's JSON. Unknown keys (from a newer version) are ignored; a
        project written before `timing` existed keeps its `asr`/`whisper_model`."""
        kinds = {"optimize": OptimizeConfig, "render": RenderConfig, "models": ModelConfig,
                 "schedule": ScheduleConfig, "rhythm": RhythmConfig, "timing": TimingConfig,
                 "direction": DirectionConfig}
        timing = data.get("timing") or {k: data[k] for k in ("asr", "whisper_model") if k in data}
        kw = {name: from_dict(kind, (timing if name == "timing" else data.get(name)) or {})
              for name, kind in kinds.items()}
        return cls(**kw, device=data.get("device", "auto"))


@dataclass(frozen=True)
class BenchConfig:
    """`musivid bench` (musivid/bench.py)."""

    device: str = "auto"
    untrained: bool = False  # tiny random models
    full_size: bool = False  # full-size architectures, random weights (throughput only)
    clip: str = "ViT-B-32/openai"
    biggan: str = "biggan-deep-256"
    cutouts: int = 32
    batches: tuple[int, ...] = (1, 4, 16)
    steps: int = 10  # timed steps per measurement
    warmup: int = 2  # untimed steps before each measurement
    compile: bool = False  # also measure the torch.compile'd step (CUDA), in the same run

    def __post_init__(self) -> None:
        _as_floats(self)
        _typed(self)
        _need(bool(DEVICE_PATTERN.match(self.device)), "device must be auto, cpu, cuda or cuda:N", self.device,
              "pass e.g. --device cuda")
        _need(1 <= self.cutouts <= 1024, "cutouts must be from 1 to 1024", self.cutouts, "pass e.g. --cutouts 32")
        _need(len(self.batches) > 0 and all(1 <= b <= 4096 for b in self.batches),
              "batch sizes must be whole numbers from 1 to 4096", ",".join(map(str, self.batches)),
              "pass e.g. --batch 1,4,16")
        _need(1 <= self.steps <= 100_000, "steps must be from 1 to 100000", self.steps, "pass e.g. --steps 10")
        _need(0 <= self.warmup <= 1000, "warmup must be from 0 to 1000", self.warmup, "use e.g. 2")
        _need(not (self.untrained and self.full_size), "--untrained and --full-size exclude each other",
              "both", "pick one")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a config from JSON data, ignoring unknown keys (written by a newer version)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Compute:
    """Where a run computes: the torch device, and the dtype the models compute in there (amp:
    bfloat16 on CUDA; None: the models' own float32)."""

    device: Any  # torch.device
    amp: Any = None  # torch.dtype | None


def resolve_device(name: str) -> Compute:
    """'auto' → CUDA when present; bf16 compute on CUDA, the models' own fp32 on the CPU."""
    import torch

    _need(bool(DEVICE_PATTERN.match(name)), "device must be auto, cpu, cuda or cuda:N", name,
          "pass e.g. --device auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"--device {name}: no CUDA GPU is available here: use --device cpu or auto")
        index = int(name.split(":")[1]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise InputError(f"--device {name}: this machine has {torch.cuda.device_count()} GPU(s): "
                             f"use cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    dev = torch.device(name)
    return Compute(dev, torch.bfloat16 if dev.type == "cuda" else None)
