"""What each image is optimized for: its CLIP targets (creative direction).

A line's `Target` is its prompt (its words, or the image prompt written after ` | ` in the
lyrics), the video's style (a second text target, weighted: README says why not appended), texts
to avoid (negative targets),
image prompts (CLIP embeddings of image files, by content digest: the video's `--image-prompt`
files, then the line's own `[image: FILE[:WEIGHT]]`) and the ImageNet classes its class vector may
use. `Target.key` is one string that says all of it: it keys the line's latents
and seeds (project.latent_key, rng.seed_for), so a change to any part re-optimizes the lines it
changes and no other; a line with nothing but its words keeps its words as its key (the latents
of projects made before targets existed stay valid).

`target_tensors` turns targets into what the optimizer's objective reads: per latent a stack of
unit embeddings (N, T, D) with weights (N, T) (1 for the prompt, style_weight for the style,
`weight` for an image prompt, -avoid_weight for a text to avoid; 0 for padding) and, where classes
are named, a 0/1 class mask (N, num_classes).

The ImageNet-1k class names (imagenet_classes.txt, index = line number - 1) are the standard
list as shipped in pytorch/hub (imagenet_classes.txt, commit c7895df7; from Keras'
imagenet_class_index.json), which pytorch_pretrained_biggan's class indices follow.
"""
from __future__ import annotations

import difflib
import functools
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import InputError, MusividError

CLASSES_FILE = Path(__file__).with_name("imagenet_classes.txt")
MASKED_LOGIT = -1.0e4  # a class logit outside the allowed classes: sigmoid is exactly 0, and so its gradient
START_LOGIT = 0.0  # where the allowed classes' logits start (around; the seed's noise is kept)
_OPTION = re.compile(r"\[\s*(classes|avoid|image)\s*:\s*([^\]]*)\]", re.IGNORECASE)
_DIGEST = re.compile(r"^(.*?)\s+sha256=([0-9a-f]{64})$")  # a line's [image: PATH:WEIGHT sha256=DIGEST], as stored


# ---- ImageNet classes ----------------------------------------------------------------------------

@functools.cache
def class_names() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names, in class-index order."""
    names = tuple(n.strip() for n in CLASSES_FILE.read_text(encoding="utf-8").splitlines() if n.strip())
    if len(names) != 1000:
        raise MusividError(f"{CLASSES_FILE}: {len(names)} class names, expected 1000: reinstall musivid")
    return names


def _norm(name: str) -> str:
    return " ".join(name.replace("_", " ").split()).casefold()


def class_indices(spec: str, what: str = "--classes") -> tuple[int, ...]:
    """'seashore, volcano' -> the sorted class indices (a name used by two classes, like
    'crane', names both). An unknown name is one InputError naming it, with the closest names."""
    index: dict[str, list[int]] = {}
    for i, n in enumerate(class_names()):
        index.setdefault(_norm(n), []).append(i)
    out: set[int] = set()
    for raw in spec.split(","):
        name = _norm(raw)
        if not name:
            continue
        if name not in index:
            close = difflib.get_close_matches(name, list(index), n=1, cutoff=0.6)
            hint = (f"did you mean {close[0]!r}?" if close
                    else "use ImageNet class names (musivid/images/imagenet_classes.txt)")
            raise InputError(f"{what} {raw.strip()!r}: not an ImageNet class name: {hint}")
        out.update(index[name])
    return tuple(sorted(out))


# ---- image prompts ---------------------------------------------------------------------------------

def check_image(path: str | Path, what: str = "--image-prompt") -> str:
    """The sha256 of an image prompt file, after checking that it reads as an image: an
    InputError naming the file, the problem and the fix otherwise."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{what} {path}: no such file: check the path")
    if path.is_dir():
        raise InputError(f"{what} {path}: is a directory, not an image file: give a .png or .jpg file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"{what} {path}: cannot be read ({e.strerror}): check its permissions") from None
    _decode(data, path, what)
    return hashlib.sha256(data).hexdigest()


def _decode(data: bytes, path: Path, what: str):
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
        img.load()
        return img.convert("RGB")
    except UnidentifiedImageError:
        raise InputError(f"{what} {path}: not an image (PIL cannot identify it): give a .png or .jpg file") from None
    except Exception as e:  # noqa: BLE001 - truncated or damaged image data
        raise InputError(f"{what} {path}: damaged image ({type(e).__name__}: {str(e)[:60]}): re-export it as "
                         ".png or .jpg") from None


def parse_image_prompt(value: str, what: str = "--image-prompt") -> tuple[str, float]:
    """'FILE' or 'FILE:WEIGHT' -> (FILE, WEIGHT) (weight 1 when none is given; a ':' in a file
    name stays part of it unless what follows the last one is a number)."""
    path, sep, w = value.rpartition(":")
    if sep and path:
        try:
            weight = float(w)
        except ValueError:
            return value, 1.0
        if not 0.0 < weight <= 10.0:
            raise InputError(f"{what} {value}: the weight must be in (0, 10]: pass e.g. FILE:0.5")
        return path, weight
    return value, 1.0


def preprocess(image, size: int):
    """A PIL RGB image as CLIP's own inputs are made (open_clip's preprocess without the
    normalisation, which Clip.encode_image applies): the shorter side resized to `size` (bicubic),
    the centre `size` x `size` cropped; (1, 3, size, size) float32 in [0, 1]."""
    import numpy as np
    import torch
    from PIL import Image

    w, h = image.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    image = image.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    image = image.crop((left, top, left + size, top + size))
    arr = np.asarray(image, dtype=np.float32) / 255.0  # (S, S, 3)
    return torch.from_numpy(arr).permute(2, 0, 1)[None].contiguous()


def image_embedding(clip, prompt: "ImagePrompt"):
    """(D,) unit CLIP embedding of an image prompt's file, which must still hold the digest that
    keys the latents."""
    import torch

    path = Path(prompt.path)
    if not prompt.path:
        raise MusividError("image prompts are embedded in the process that optimizes: run this project without "
                           "--gpus/--workers, or without --image-prompt and [image: ...]")
    data = path.read_bytes() if path.is_file() else b""
    if hashlib.sha256(data).hexdigest() != prompt.sha256:
        raise InputError(f"image prompt {path}: the file is gone or changed since the project recorded it: put it "
                         "back, or give it again (--image-prompt, or the line's [image: ...]) to re-optimize with the "
                         "new file")
    pixels = preprocess(_decode(data, path, "image prompt"), clip.image_size).to(clip.device)
    with torch.no_grad():
        return clip.encode_image(pixels)[0].float()


# ---- targets ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImagePrompt:
    path: str  # where the file is ("" where only the key was kept)
    sha256: str  # what keys the latents
    weight: float = 1.0


@dataclass(frozen=True)
class Target:
    """What one image is optimized for."""

    prompt: str  # the line's words, or its own image prompt (without [classes:] / [avoid:])
    style: str = ""
    style_weight: float = 0.5
    avoid: tuple[str, ...] = ()  # texts to avoid: the video's, then the line's
    avoid_weight: float = 0.5
    classes: tuple[int, ...] = ()  # the class indices the class vector may use; (): every class
    images: tuple[ImagePrompt, ...] = field(default=())

    @property
    def plain(self) -> bool:
        """Nothing but a prompt: one text target of weight 1, every class."""
        return not (self.style or self.avoid or self.classes or self.images)

    @property
    def key(self) -> str:
        """Everything that decides the image, as one string (no file paths: image prompts by
        digest). A plain target's key is its prompt (no lyric line holds a newline)."""
        if self.plain:
            return self.prompt
        parts = [self.prompt]
        if self.style:
            parts += [f"style: {self.style}", f"style weight: {self.style_weight:g}"]
        parts += [f"avoid: {a}" for a in self.avoid]
        if self.avoid:
            parts.append(f"avoid weight: {self.avoid_weight:g}")
        if self.classes:
            parts.append("classes: " + ",".join(map(str, self.classes)))
        parts += [f"image: {im.sha256} {im.weight:g}" for im in self.images]
        return "\n".join(parts)

    @classmethod
    def from_key(cls, key: str) -> "Target":
        """The target a key says (image prompts without their paths)."""
        first, *rest = key.split("\n")
        kw: dict = {"avoid": [], "images": []}
        for part in rest:
            name, _, value = part.partition(": ")
            if name == "style":
                kw["style"] = value
            elif name == "style weight":
                kw["style_weight"] = float(value)
            elif name == "avoid":
                kw["avoid"].append(value)
            elif name == "avoid weight":
                kw["avoid_weight"] = float(value)
            elif name == "classes":
                kw["classes"] = tuple(int(c) for c in value.split(","))
            elif name == "image":
                digest, weight = value.split(" ")
                kw["images"].append(ImagePrompt("", digest, float(weight)))
        return cls(first, **{k: tuple(v) if isinstance(v, list) else v for k, v in kw.items()})

    def texts(self) -> list[tuple[str, float]]:
        """The weighted text targets: the prompt at 1, the style at style_weight, each text to
        avoid at -avoid_weight."""
        style = [(self.style, self.style_weight)] if self.style else []
        return [(self.prompt, 1.0)] + style + [(a, -self.avoid_weight) for a in self.avoid]


def split_options(prompt: str) -> tuple[str, str, str]:
    """A line's image prompt -> (its text, its [classes: ...] names, its [avoid: ...] text)."""
    found = {"classes": "", "avoid": ""}
    for m in _OPTION.finditer(prompt):
        found[m.group(1).lower()] = m.group(2).strip()
    text = " ".join(_OPTION.sub(" ", prompt).split()).strip(" ,")
    return text, found["classes"], found["avoid"]


def _image_options(prompt: str) -> list[str]:
    """The values of a line prompt's `[image: ...]` options, in order."""
    return [m.group(2).strip() for m in _OPTION.finditer(prompt) if m.group(1).lower() == "image"]


def _line_image(value: str, base: Path | None, where: str) -> ImagePrompt:
    """One `[image: ...]` value -> its ImagePrompt. With `base` (set time: the lyrics read, a
    prompt set) the file is read and hashed, a relative path taken from `base`, and any recorded
    digest ignored; without, a recorded digest is trusted (a project re-opened) and a value
    without one is read from the current folder."""
    what = f"{where}: [image:]"
    recorded = _DIGEST.match(value)
    spec, digest = (recorded.group(1), recorded.group(2)) if recorded else (value, "")
    if not spec.strip():
        raise InputError(f"{what} names no file: write [image: FILE] or [image: FILE:WEIGHT]")
    name, weight = parse_image_prompt(spec.strip(), what)
    path = Path(name).expanduser()
    if base is not None and not path.is_absolute():
        path = base / path
    if base is None and digest:
        return ImagePrompt(str(path), digest, weight)
    path = path.resolve()
    return ImagePrompt(str(path), check_image(path, what), weight)


def line_images(prompt: str | None, where: str = "", base: Path | None = None) -> tuple[ImagePrompt, ...]:
    """A line prompt's own image prompts (`[image: FILE]`, `[image: FILE:WEIGHT]`, repeatable);
    `where` ("line 3") starts any error. See _line_image for `base`."""
    return tuple(_line_image(v, base, where or "line") for v in _image_options(prompt or ""))


def resolve_line_images(prompt: str, base: Path, where: str) -> str:
    """A line prompt as stored: each `[image: ...]` written `[image: ABSOLUTE_PATH:WEIGHT
    sha256=DIGEST]` (relative paths taken from `base`; each file read and checked now: one
    InputError naming `where`, the file, the problem and the fix), so that a re-opened project
    keys the line by the recorded digest wherever it runs."""
    def canonical(m: re.Match) -> str:
        if m.group(1).lower() != "image":
            return m.group(0)
        im = _line_image(m.group(2).strip(), base, where)
        return f"[image: {im.path}:{im.weight:g} sha256={im.sha256}]"

    return _OPTION.sub(canonical, prompt)


def line_target(words: str, prompt: str | None, direction, line: int | None = None) -> Target:
    """The Target of a line with the words `words` and its own image prompt `prompt` (None: its
    words), under the video's direction (config.DirectionConfig). The line's `[image: ...]`
    files join the video's image prompts (by their recorded digests, see resolve_line_images)."""
    text, classes, avoid = split_options(prompt) if prompt else ("", "", "")
    where = f"line {line}: [classes:]" if line is not None else "[classes:]"
    allowed = class_indices(classes, where) if classes else (
        class_indices(direction.classes) if direction.classes else ())
    one = " ".join  # one line each: a key holds one part per line
    avoids = tuple(a for a in (one(direction.avoid.split()), avoid) if a)
    images = tuple(ImagePrompt(p, h, w) for p, h, w in direction.images)
    images += line_images(prompt, f"line {line}" if line is not None else "")
    return Target(text or words, one(direction.style.split()), direction.style_weight, avoids,
                  direction.avoid_weight, allowed, images)


# ---- what the objective reads -----------------------------------------------------------------------

@dataclass(frozen=True)
class TargetTensors:
    """The objective's targets for N latents."""

    emb: object  # torch.Tensor (N, D) when every target is plain, else (N, T, D): unit embeddings
    weights: object  # torch.Tensor (N, T) | None: None when every target is plain (one target of weight 1)
    class_mask: object  # torch.Tensor (N, num_classes) of 0/1 | None: every class allowed for every latent


def as_target(t: "str | Target") -> Target:
    return t if isinstance(t, Target) else Target.from_key(t)


def target_tensors(clip, targets: Sequence["str | Target"], num_classes: int, text_embeddings) -> TargetTensors:
    """The embeddings, weights and class mask of `targets` (Targets, or their keys).
    `text_embeddings(clip, texts)` -> (len(texts), D): each distinct text encoded alone."""
    import torch

    ts = [as_target(t) for t in targets]
    if all(t.plain for t in ts):
        return TargetTensors(text_embeddings(clip, [t.prompt for t in ts]), None, None)
    texts = [t.texts() for t in ts]
    flat = [s for tx in texts for s, _ in tx]
    temb = text_embeddings(clip, flat)  # (sum T_i, D)
    images: dict[ImagePrompt, torch.Tensor] = {}
    for t in ts:
        for im in t.images:
            if im not in images:
                images[im] = image_embedding(clip, im).to(temb.device)
    width = max(len(tx) + len(t.images) for tx, t in zip(texts, ts))
    emb = torch.zeros(len(ts), width, temb.shape[1], device=temb.device)
    w = torch.zeros(len(ts), width, device=temb.device)
    k = 0
    for i, (tx, t) in enumerate(zip(texts, ts)):
        for j, (_, weight) in enumerate(tx):
            emb[i, j], w[i, j] = temb[k], weight
            k += 1
        for j, im in enumerate(t.images, len(tx)):
            emb[i, j], w[i, j] = images[im], im.weight
    mask = None
    if any(t.classes for t in ts):
        mask = torch.ones(len(ts), num_classes, device=temb.device)
        for i, t in enumerate(ts):
            if t.classes:
                mask[i] = 0.0
                mask[i, list(t.classes)] = 1.0
    return TargetTensors(emb, w, mask)


def start_classes(cls_logits, mask):
    """Initial class logits confined to each latent's allowed classes: those start near
    START_LOGIT (the seed's noise kept), the others at MASKED_LOGIT."""
    import torch

    if mask is None:
        return cls_logits
    restricted = (mask.amin(dim=1, keepdim=True) == 0)  # (N, 1): rows with named classes; the others as they were
    noise = cls_logits - cls_logits.mean(dim=1, keepdim=True)
    confined = torch.where(mask > 0, START_LOGIT + noise, torch.full_like(cls_logits, MASKED_LOGIT))
    return torch.where(restricted, confined, cls_logits)


def check_direction(direction, lyrics=None):
    """Every check of a run's direction (config.DirectionConfig) before any work: the class names
    (the video's, and each lyric line's `[classes: ...]`) and the image prompt files (the video's,
    whose digests it records, and each lyric line's `[image: ...]`, relative to the lyrics' folder).
    Returns the direction with the files' absolute paths and digests."""
    import dataclasses

    if direction.classes:
        class_indices(direction.classes)
    for n, ln in enumerate(lyrics.lines if lyrics is not None else (), 1):
        if ln.prompt:
            classes = split_options(ln.prompt)[1]
            if classes:
                class_indices(classes, f"{lyrics.path}: line {n}: [classes:]")
            line_images(ln.prompt, f"{lyrics.path}: line {n}", lyrics_folder(lyrics))
    images = tuple((str(Path(p).expanduser().resolve()), check_image(Path(p).expanduser()), w)
                   for p, _, w in direction.images)
    return dataclasses.replace(direction, images=images)


def lyrics_folder(lyrics) -> Path:
    """Where a lyrics file's relative `[image: ...]` paths are read from: its folder (the current
    folder for lyrics without a file)."""
    return Path(lyrics.path).expanduser().resolve().parent if lyrics.path is not None else Path.cwd()
