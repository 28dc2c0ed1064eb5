"""The command line's options, shared by its commands (cli.py): parameter types, option groups,
the sections of `musivid --help`, and the RunSettings the main command's options make. Nothing
here prints or runs anything."""
from __future__ import annotations

import math
from pathlib import Path

import click

from ..config import (ASR_CHOICES, DEFAULT_WHISPER, INTRO_CHOICES, OUTRO_CHOICES, X264_PRESETS, DirectionConfig,
                      OptimizeConfig, RenderConfig, ScheduleConfig)


def verbosity(f):
    f = click.option("-v", "--verbose", is_flag=True, help="Also diagnostics and the time of every stage.")(f)
    return click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress bars.")(f)


class DeviceChoice(click.Choice):
    """auto, cpu, cuda, or cuda:N."""

    def __init__(self) -> None:
        super().__init__(["auto", "cpu", "cuda", "cuda:N"])

    def convert(self, value, param, ctx):
        if isinstance(value, str) and value.startswith("cuda:") and value[5:].isdigit():
            return value
        if value == "cuda:N":
            self.fail("give a GPU number, e.g. cuda:0", param, ctx)
        return super().convert(value, param, ctx)


def device_option(default: str | None = "auto"):
    text = "Where to run: auto (a GPU if there is one), cpu, cuda or cuda:N."
    if default is None:
        text += " Default: the project's."
    return click.option("--device", type=DeviceChoice(), default=default, show_default=default is not None, help=text)


class Finite(click.ParamType):
    """A float that is a number (nan and inf are refused), at least `min` (above it if `min_open`);
    other ranges are checked by the configs, with the option's name."""

    name = "number"

    def __init__(self, min: float | None = None, min_open: bool = False) -> None:
        self.min, self.min_open = min, min_open

    def convert(self, value, param, ctx):
        try:
            v = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if self.min is not None and (v < self.min or (self.min_open and v == self.min)):
            self.fail(f"{value!r}: must be {'more than' if self.min_open else 'at least'} {self.min:g}", param, ctx)
        return v


OFFLINE = click.option("--offline", is_flag=True, help="Never touch the network (also MUSIVID_OFFLINE=1).")
ACCEPT_TRUNCATED = click.option("--accept-truncated", is_flag=True,
                                 help="Use an audio file that decodes shorter than it says it is (warns).")
OVERWRITE = click.option("-y", "--overwrite", is_flag=True,
                          help="Replace an existing output file (this project's own last video is replaced anyway).")


def motion_options(render: bool = False):
    """The walk and the intro/outro: options of the main command, and one-off options of `render`
    (whose default is the project's)."""
    d = {k: "the project's" if render else f"{getattr(ScheduleConfig, k):g}" for k in ("walk", "energy")}
    d |= {k: "the project's" if render else getattr(ScheduleConfig, k) for k in ("intro", "outro")}
    return combine(
        click.option("--walk", type=Finite(), default=None, help="How far the picture wanders from a line's image in "
                     f"the breaks, 0 (no walk) to 3, times --reactivity (default {d['walk']})."),
        click.option("--energy", type=Finite(), default=None, help="How strongly loudness sizes the walk: 0 (not at "
                     f"all) to 1 (no walk in silence) (default {d['energy']})."),
        click.option("--intro", type=click.Choice(INTRO_CHOICES), default=None, help="Before the first line: glide "
                     f"from an image of the title, drift into the first line, or hold still (default {d['intro']})."),
        click.option("--outro", type=click.Choice(OUTRO_CHOICES), default=None, help="After the last line: drift "
                     f"away or hold still (default {d['outro']})."))


PRESET = click.option("--preset", type=click.Choice(X264_PRESETS), default=None,
                       help=f"x264 speed/size trade-off at the same quality (default {RenderConfig.preset}).")
EXCERPT = [click.option("--start", type=Finite(min=0), default=0.0, help="Render from this time (s): a preview."),
            click.option("--duration", type=Finite(min=0, min_open=True), default=None,
                         help="Render this many seconds (with --start: a quick preview excerpt).")]


class CaptionChoice(click.Choice):
    """line | karaoke | none; a bare `--captions` means line. Says how to fix a value that was a
    file name swallowed by the option (`--captions song.mp3`)."""

    def __init__(self) -> None:
        super().__init__(["line", "karaoke", "none"])

    def convert(self, value, param, ctx):
        if value not in self.choices and isinstance(value, str) and ("." in value or "/" in value):
            self.fail(f"{value!r} is not line, karaoke or none: put --captions after the files, or write "
                      "--captions=line", param, ctx)
        return super().convert(value, param, ctx)


def captions_option(help_text: str):
    return click.option("--captions", type=CaptionChoice(), is_flag=False, flag_value="line", default=None,
                        help=help_text)


def frame_options(render: bool = False):
    """The frame's shape and the captions' size and place: options of the main command, and one-off
    options of `render` (whose default is the project's)."""
    d = {k: "default: the project's" if render else f"default {getattr(RenderConfig, k)}"
         for k in ("aspect", "fill", "caption_position")}
    d["caption_size"] = "default: the project's" if render else f"default {RenderConfig.caption_size:g}"
    return combine(
        click.option("--aspect", default=None, metavar="16:9|9:16|4:3|1:1", help="Frame shape, width:height, with "
                     "--size its short side: --aspect 16:9 --size 720 is 1280x720 (the long side rounded to an even "
                     f"number, as H.264 needs: 16:9 of 480 is 854) ({d['aspect']})."),
        click.option("--fill", default=None, metavar="blur|mirror|black", help="Around the square image in a wider or "
                     "taller frame: the image blurred and darkened, mirrored at its edges, or black "
                     f"({d['fill']})."),
        click.option("--platform", default=None, metavar="youtube|shorts|square", help="The frame for a platform: "
                     "youtube 1920x1080 (16:9), shorts 1080x1920 (9:16), square 1080x1080; an --aspect or --size "
                     "given with it wins."),
        click.option("--caption-size", "caption_size", type=Finite(), default=None, help="Caption text size, times "
                     f"the default (1/16 of the frame's short side), 0.25 to 4 ({d['caption_size']})."),
        click.option("--caption-position", "caption_position", default=None, metavar="bottom|middle|top",
                     help=f"Where captions go ({d['caption_position']}); an untrained preview's mark "
                          "takes the corner away from them."))


def frame_settings(platform: str | None, aspect: str | None, size: int | None) -> tuple[str | None, int | None]:
    """(aspect, size) with --platform's filled in where they were not given (None: the default)."""
    from ..config import PLATFORMS
    from ..errors import InputError

    if platform is None:
        return aspect, size
    if platform not in PLATFORMS:
        raise InputError(f"--platform {platform}: no such platform: pass {', '.join(PLATFORMS)} (or --aspect and "
                         "--size)")
    return aspect or PLATFORMS[platform][0], size or PLATFORMS[platform][1]


FONT = click.option("--font", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
                     help="Caption font file (.ttf/.otf/.ttc), tried first; lines it cannot draw get a font that can.")


def combine(*decorators):
    def apply(f):
        for d in reversed(decorators):
            f = d(f)
        return f

    return apply


# sections of `musivid --help`, in order: (title, option names)
HELP_SECTIONS = [
    ("Output", ["output", "overwrite", "project_dir", "captions", "font", "fps", "size", "aspect", "fill", "platform",
                "caption_size", "caption_position", "crf", "preset", "start", "duration"]),
    ("Images", ["steps", "variants", "cutouts", "seed", "device", "use_compile", "micro_batch", "checkpoint_every"]),
    ("Several devices", ["gpus", "workers", "ray_address", "no_ray"]),
    ("Direction", ["style", "style_weight", "avoid", "image_prompts", "classes"]),
    ("Motion", ["reactivity", "walk", "energy", "intro", "outro", "title", "pulse"]),
    ("Lyric timing", ["asr", "whisper_model"]),
    ("Models", ["clip", "biggan", "offline", "untrained"]),
    ("Input", ["accept_truncated"]),
    ("Messages", ["quiet", "verbose"]),
]


def gpus_callback(ctx, param, value):
    if value is None or value == "all":
        return value
    if not value.isdigit() or int(value) < 1:
        raise click.BadParameter(f"{value!r}: give a number of GPUs (1 or more) or 'all'")
    return int(value)


# what every video-making command takes (musivid AUDIO and musivid batch)
SETTINGS = [
    captions_option("Burn the lyric line being sung into the picture; `--captions karaoke` also highlights the "
                    "word being sung."),
    FONT,
    click.option("--fps", type=Finite(), default=None, help=f"Video frame rate (default {RenderConfig.fps:g})."),
    click.option("--size", type=int, default=None,
                 help=f"The frame's short side in pixels, even (default {RenderConfig.size})."),
    frame_options(),
    click.option("--crf", type=int, default=None,
                 help=f"H.264 quality, 0 (lossless) to 51 (worst) (default {RenderConfig.crf})."),
    PRESET,
    click.option("--steps", type=int, default=None, help=f"Optimization steps per line (default {OptimizeConfig.steps})."),
    click.option("--variants", type=int, default=None,
                 help=f"Variants per lyric line (default {OptimizeConfig.variants})."),
    click.option("--cutouts", type=int, default=None,
                 help=f"CLIP cutouts per image and step (default {OptimizeConfig.cutouts})."),
    click.option("--seed", type=int, default=None, help=f"Run seed (default {OptimizeConfig.seed})."),
    click.option("--micro-batch", "micro_batch", type=click.IntRange(min=1), default=None,
                 help="Latents per forward pass (default: all at once; with --gpus, pending / GPUs)."),
    click.option("--checkpoint-every", "checkpoint_every", type=Finite(), default=None,
                 help=f"Save the running optimization every SECONDS (default {OptimizeConfig.checkpoint_every_s:g})."),
    device_option(),
    click.option("--compile/--no-compile", "use_compile", default=None,
                 help="torch.compile the optimizer step on CUDA: pays on long runs, costs a minute or two "
                      "to compile (default: off; see benchmarks/RESULTS.md)."),
    click.option("--style", default=None, help="A look for the whole video (e.g. 'oil painting, dramatic light'): a "
                 "second CLIP target of every line; changing it re-optimizes every line."),
    click.option("--style-weight", "style_weight", type=Finite(), default=None,
                 help="The style's weight against the line's own prompt, which weighs 1 "
                      f"(default {DirectionConfig.style_weight:g})."),
    click.option("--avoid", default=None, help="Push every image away from this text (a negative CLIP target)."),
    click.option("--image-prompt", "image_prompts", multiple=True, metavar="FILE[:WEIGHT]",
                 help="An image whose CLIP embedding joins every line's targets (weight 1 unless given); repeatable."),
    click.option("--classes", default=None, help="ImageNet class names, comma-separated (e.g. 'seashore, volcano'): "
                 "every image starts on them and uses no other class."),
    click.option("--reactivity", type=Finite(), default=None, help="How strongly the music drives the picture: 0 (a "
                 f"pure glide from line to line, no walk) .. 1 (motion only on hits) (default {ScheduleConfig.reactivity:g})."),
    motion_options(),
    click.option("--title", default=None, help="The intro's title image shows this (default: the audio file's name)."),
    click.option("--pulse", type=Finite(), default=None,
                 help=f"Kick on onsets, 0 (off) to 5 (default {ScheduleConfig.pulse:g})."),
    click.option("--asr", type=click.Choice(ASR_CHOICES), default="auto", show_default=True,
                 help="Speech recogniser for plain or missing lyrics."),
    click.option("--whisper-model", default=None,
                 help=f"Whisper model name or local CTranslate2 directory (default {DEFAULT_WHISPER})."),
    click.option("--clip", "clip", default=None, help="CLIP registry name or a local weight file (default: "
                 "ViT-B-32/openai for English lyrics, the multilingual xlm-roberta-base-ViT-B-32 for others)."),
    click.option("--biggan", "biggan", default=None, help="BigGAN registry name, weight file or directory."),
    OFFLINE,
    click.option("--untrained", is_flag=True, help="Tiny random-weight models of the same classes: a preview, not real images."),
]

SCALE = [
    click.option("--gpus", default=None, callback=gpus_callback, metavar="N|all",
                 help="Shard the lines over N GPUs (all: every visible one), one worker each; without a GPU "
                      "(or with --device cpu), N CPU worker processes."),
    click.option("--workers", type=click.IntRange(min=1), default=None,
                 help="Worker processes on --device (on the CPU: for tests and CPU clusters)."),
    click.option("--ray-address", default=None, metavar="auto|HOST:PORT",
                 help="Run the workers on this Ray cluster (default: a local Ray instance if Ray is installed)."),
    click.option("--no-ray", is_flag=True, help="Never use Ray: local worker processes (batch: one song at a time, "
                                                 "in this process, unless --workers)."),
]


def run_settings(*, captions=None, font=None, fps=None, size=None, crf=None, preset=None, steps=None, variants=None,
                 cutouts=None, seed=None, micro_batch=None, checkpoint_every=None, device="auto", use_compile=None,
                 reactivity=None, walk=None, energy=None, intro=None, outro=None, title=None, pulse=None, asr="auto",
                 whisper_model=None, clip=None, biggan=None, offline=False, untrained=False, style=None, avoid=None,
                 image_prompts=(), classes=None, style_weight=None, aspect=None, fill=None, platform=None,
                 caption_size=None, caption_position=None):
    """RunSettings from the SETTINGS options (a default wherever an option was not given); every bad
    value is named in one message (`--fps 0 --reactivity 5`: both)."""
    from ..config import DirectionConfig, RunSettings, TimingConfig, collect_errors
    from ..images.targets import parse_image_prompt

    def given(**kw):
        return {k: v for k, v in kw.items() if v is not None}

    aspect, size = frame_settings(platform, aspect, size)
    with collect_errors():
        return RunSettings(
            optimize=OptimizeConfig(**given(steps=steps, variants=variants, cutouts=cutouts, seed=seed,
                                            micro_batch=micro_batch, checkpoint_every_s=checkpoint_every,
                                            compile=use_compile)),
            render=RenderConfig(**given(fps=fps, size=size, crf=crf, preset=preset, captions=captions,
                                        font=str(font.expanduser().resolve()) if font else None, aspect=aspect,
                                        fill=fill, caption_size=caption_size, caption_position=caption_position)),
            schedule=ScheduleConfig(**given(reactivity=reactivity, pulse=pulse, walk=walk, energy=energy,
                                            intro=intro, outro=outro, title=title)),
            models=model_config(clip, biggan, offline, untrained),
            timing=TimingConfig(asr=asr, whisper_model=whisper_model), device=device,
            direction=DirectionConfig(**given(style=style and " ".join(style.split()),
                                              avoid=avoid and " ".join(avoid.split()),
                                              classes=classes and " ".join(classes.split()),
                                              style_weight=style_weight),
                                      images=tuple((p, "", w) for p, w in map(parse_image_prompt, image_prompts))))


def model_config(clip, biggan, offline, untrained):
    """--clip/--biggan take a registry name, or else a local path."""
    from ..config import ModelConfig
    from ..images.models.registry import REGISTRY

    kw = {"offline": offline, "untrained": untrained}
    for name, value in (("clip", clip), ("biggan", biggan)):
        if value is None:
            continue
        if value in REGISTRY:
            kw[name] = value
        else:
            kw[f"{name}_path"] = str(Path(value).expanduser())
    return ModelConfig(**kw)
