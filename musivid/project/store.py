"""A run's state on disk, so that work is never done twice or lost.

    <song>.musivid/
      project.json        inputs (with sha256), settings, timing, keyframes, latents index,
                          scores, picked variants (per line, and per text), outputs
      rhythm.npz          the beat analysis of the song (reused by every later command)
      latents/<key>.pt    one finished (line text, variant) latent: z, class logits, score, and
                          its optimizer state, and its index entry (text, variant, seed, steps)
      checkpoint.pt       the running optimization (OptimState), saved every few seconds and
                          on interrupt; removed when its latents are finished
      storyboard.png      contact sheet of every line's variants
      thumbs/<key>.png    every variant's keyframe image, small (the studio shows them)
      .lock               the project lock (see `locked`): the PID of the command writing it

A latent's key hashes the line's text, the variant number and every setting that changes its
optimization (models, seed, lr, cutouts...), so editing one lyric line re-optimizes that line only,
and render-only settings (fps, size) re-optimize nothing. All writes are atomic. Callers use the
accessors below; only this module knows the layout of project.json.

A latent file is written before the index that lists it (project.json is written once per batch of
latents), so a crash, a signal or a full disk between the two leaves latent files the index does
not list. `Project.open` finds them (latents/*.pt not in the index: none, normally, so only the
directory is listed) and indexes each from its own contents, with an info line: a rerun
optimizes nothing that had finished. A file that cannot be read that way stays unlisted.
A disk that refuses a write (full, over quota, read-only) is one WriteError line naming the file.

Damage is met with one line naming the file and what to do: a project.json that cannot be read, is
malformed or comes from a newer musivid stops the command; a latent file that cannot be read is
forgotten with a warning (its line is optimized again); a damaged checkpoint is discarded with a
warning (its lines start over).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import config as C
from ..errors import InputError, MusividError
from ..files import atomic_torch_save, atomic_write_bytes, sha256_file
from ..song.segments import Segment, retime
from ..video.motion import Keyframe
from .checkpoints import Checkpoint, read_checkpoint, state_dict, state_from, write_checkpoint
from .lock import LOCK

log = logging.getLogger(__name__)

VERSION = 1
INDEX = "project.json"  # the project's index: inputs, settings, timing, keyframes, latents, picks, outputs
FILES = {INDEX, "rhythm.npz", "latents", "checkpoint.pt", "checkpoints", "storyboard.png", "thumbs",
         LOCK}  # what a project holds
# OptimizeConfig fields that do not key a latent: they do not change it (variants, micro_batch,
# compile, checkpointing), or, for steps, a finished latent keeps its optimizer state and a run
# with more steps continues it (see pipeline.optimize_pending)
NOT_LATENT = frozenset({"variants", "micro_batch", "compile", "checkpoint_every_s", "steps"})


_told: set[tuple[str, tuple[str, ...]]] = set()  # latent files found unlisted, already told about


def default_dir(out: Path) -> Path:
    return out.with_name(out.stem + ".musivid")


def index_file(root: str | Path) -> Path:
    """The project's index file (its modification time tells readers the project changed)."""
    return Path(root) / INDEX


def is_project(root: str | Path) -> bool:
    """Whether `root` holds a project (its index file), whatever state it is in."""
    return index_file(root).is_file()


def latent_settings(opt: C.OptimizeConfig, models: C.ModelConfig) -> dict:
    """The settings that key a run's latents (see latent_key)."""
    d = {k: v for k, v in C.to_dict(opt).items() if k not in NOT_LATENT}
    d["clip"] = (("untrained" if models.clip in (C.AUTO_CLIP, C.DEFAULT_CLIP) else f"untrained {models.clip}")
                 if models.untrained else (models.clip_path or models.clip))  # the tiny multilingual CLIP differs
    d["biggan"] = "untrained" if models.untrained else (models.biggan_path or models.biggan)
    return d


def latent_key(settings: dict, text: str, variant: int) -> str:
    blob = json.dumps([settings, text, variant], sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


@dataclass(frozen=True)
class InputFile:
    path: Path
    sha256: str

    @classmethod
    def of(cls, path: Path) -> "InputFile":
        return cls(path.resolve(), sha256_file(path))


@dataclass(frozen=True)
class LatentInfo:
    """The index entry of one finished latent."""

    key: str
    text: str
    variant: int
    seed: int
    score: float
    steps: int


@dataclass(frozen=True)
class SavedLatent:
    z: Any  # torch.Tensor (z_dim,) or (rows, z_dim)
    cls: Any  # torch.Tensor (num_classes,) class logits
    score: float
    state: Any  # the one-row OptimState it was optimized with (None in old files)


@dataclass(frozen=True)
class TimedLines:
    """The lines as timed from the inputs, cached in the project."""

    segments: list[Segment]
    method: str  # timing.TimingResult.method
    confidence: tuple[float, ...] = ()  # per segment, 0..1; () where not measured


@dataclass(frozen=True)
class Chosen:
    """What a render showed for one keyframe."""

    segment: int
    text: str
    variant: int
    score: float


class Project:
    """The project directory: a JSON index plus latent, rhythm and checkpoint files."""

    def __init__(self, root: Path, data: dict):
        self.root = root
        self._data = data
        self._saved: bytes | None = None  # project.json as last read or written: save() skips a no-op write

    @classmethod
    def open(cls, root: str | Path, *, must_exist: bool = False) -> "Project":
        root = Path(root)
        index = index_file(root)
        if not index.exists():
            if must_exist:
                raise InputError(f"{root}: not a musivid project (no project.json): "
                                 "give the <song>.musivid directory written by a run")
            p = cls(root, {"version": VERSION, "latents": {}, "picked": {}})
            p.index_found_latents()  # a first run stopped before its first project.json
            return p
        fix = f"restore it from a backup, or delete {root} to start over (the song and lyrics are not in it)"
        try:
            data = json.loads(index.read_bytes().decode("utf-8"), parse_constant=_no_constant)
        except UnicodeDecodeError as e:
            raise InputError(f"{index}: damaged project file (not UTF-8 at byte {e.start}): {fix}") from None
        except json.JSONDecodeError as e:
            raise InputError(f"{index}: damaged or truncated project file ({e.msg} at byte {e.pos}): {fix}") from None
        except ValueError as e:  # NaN or Infinity: no number JSON allows
            raise InputError(f"{index}: damaged project file ({e}): {fix}") from None
        except OSError as e:
            raise InputError(f"{index}: cannot read the project file ({e.strerror}): check its permissions") from None
        version = data.get("version") if isinstance(data, dict) else None
        if isinstance(version, int) and not isinstance(version, bool) and version > VERSION:
            raise InputError(f"{index}: written by a newer musivid (project version {version}; this one reads "
                             f"{VERSION}): upgrade musivid, or start a new project with --project")
        if version != VERSION:
            raise InputError(f"{index}: not a musivid project file (version {version!r}, expected {VERSION}): {fix}")
        data.setdefault("latents", {})
        data.setdefault("picked", {})
        p = cls(root, data)
        p._saved = p._blob()
        try:
            p.check()
        except (KeyError, TypeError, ValueError, AttributeError, InputError) as e:
            raise InputError(f"{index}: damaged project file ({type(e).__name__}: {str(e)[:100]}): {fix}") from None
        p.index_found_latents()
        return p

    def check(self) -> None:
        """Read every part of project.json once (settings, timing, keyframes, latents index, picks,
        inputs, outputs), so a malformed file fails here, in one line, not in the middle of a run."""
        d = self._data
        if "settings" in d:
            C.RunSettings.from_json(d["settings"])
        self.segments()
        self.keyframes()
        self.chosen()
        for key in d["latents"]:
            m = d["latents"][key]
            LatentInfo(key, str(m["text"]), int(m["variant"]), int(m["seed"]), float(m["score"]), int(m["steps"]))
        if not all(isinstance(k, str) and isinstance(v, int) for k, v in d["picked"].items()):
            raise ValueError("picked: not a map from line text to variant number")
        if not all(k.isdigit() and isinstance(v, dict) and isinstance(v.get("text"), str)
                   and isinstance(v.get("variant"), int) for k, v in d.get("line_picks", {}).items()):
            raise ValueError("line_picks: not a map from line index to {text, variant}")
        if not all(k.isdigit() and isinstance(v, str) for k, v in d.get("prompts", {}).items()):
            raise ValueError("prompts: not a map from line index to text")
        if not all(k.isdigit() and isinstance(v, dict) and isinstance(v.get("prompt"), (str, type(None)))
                   for k, v in d.get("prompt_edits", {}).items()):
            raise ValueError("prompt_edits: not a map from line index to {prompt, was}")
        for kind in ("audio", "lyrics"):
            self.input(kind)
        for kind in ("video", "srt"):
            self.output(kind)

    @property
    def exists(self) -> bool:
        return is_project(self.root)

    def _blob(self) -> bytes:
        return json.dumps(self._data, indent=1, ensure_ascii=False).encode("utf-8")

    def save(self) -> None:
        """Write project.json (atomically) if it changed since it was read or last written: opening
        a project and reading it writes nothing."""
        blob = self._blob()
        if blob == self._saved and self.exists:
            return
        atomic_write_bytes(index_file(self.root), blob, "the project's index")
        self._saved = blob

    # ---- inputs and settings --------------------------------------------------------------------
    def set_inputs(self, audio: InputFile, lyrics: InputFile | None) -> None:
        self._data["inputs"] = {k: (None if f is None else {"path": str(f.path), "sha256": f.sha256})
                                for k, f in (("audio", audio), ("lyrics", lyrics))}

    def input(self, kind: str) -> InputFile | None:
        """The recorded "audio" or "lyrics" input (None if none)."""
        d = self._data.get("inputs", {}).get(kind)
        return InputFile(Path(d["path"]), d["sha256"]) if d else None

    @property
    def accept_truncated(self) -> bool:
        """Whether the run that made the project accepted a truncated audio file (so do later ones)."""
        return bool(self._data.get("accept_truncated", False))

    def set_accept_truncated(self, value: bool) -> None:
        self._data["accept_truncated"] = bool(value)

    @property
    def settings(self) -> C.RunSettings:
        if "settings" not in self._data:
            raise InputError(f"{self.root}: the project has no settings yet: run the full command first")
        return C.RunSettings.from_json(self._data["settings"])

    def set_settings(self, s: C.RunSettings) -> None:
        self._data["settings"] = s.to_json()
        self._data["untrained"] = s.models.untrained  # for readers of project.json

    # ---- timing, rhythm, keyframes --------------------------------------------------------------
    def cached_timing(self, key: dict) -> "TimedLines | None":
        t = self._data.get("timing")
        if not t or t.get("key") != key:
            return None
        segments = [Segment.from_json(s) for s in t["segments"]]
        confidence = tuple(float(c) for c in t.get("confidence", ()))
        return TimedLines(segments, t["method"], confidence if len(confidence) == len(segments) else ())

    def set_timing(self, key: dict, method: str, segments: list[Segment], duration: float | None = None,
                   confidence: tuple[float, ...] = ()) -> None:
        """The lines as timed from the inputs (and the song's duration: where the last line may end;
        how sure the timing is of each line, 0..1, where it was measured)."""
        self._data["timing"] = {"key": key, "method": method, "segments": [s.to_json() for s in segments]}
        if duration is not None:
            self._data["timing"]["duration"] = round(float(duration), 4)
        if confidence:
            self._data["timing"]["confidence"] = [round(float(c), 4) for c in confidence]

    def segments(self) -> list[Segment]:
        """The timed lines, with the line edits applied (see `edited`)."""
        return self.edited(self.timed_segments())

    def timed_segments(self) -> list[Segment]:
        """The lines as timed from the inputs, before any line edit."""
        return [Segment.from_json(s) for s in self._data.get("timing", {}).get("segments", [])]

    # ---- line edits: a line's text or start changed by hand (the studio), kept beside the timing --
    def edit_line(self, index: int, *, text: str | None = None, start: float | None = None) -> None:
        """Record a new text and/or start for segment `index`. It applies on top of the inputs' timing
        for as long as the inputs still give that line the same text and start (see `edited`)."""
        raw = self.timed_segments()[index]
        e = self._data.setdefault("edits", {}).setdefault(str(index), {"was": [raw.text, raw.start]})
        if text is not None:
            e["text"] = text
        if start is not None:
            e["start"] = round(float(start), 4)
        if e.get("text") == raw.text:
            del e["text"]
        if e.get("start") is not None and abs(e["start"] - raw.start) < 1e-4:
            del e["start"]
        if set(e) == {"was"}:
            del self._data["edits"][str(index)]

    def edited(self, segments: list[Segment], duration: float | None = None) -> list[Segment]:
        """`segments` (as timed from the inputs) with the recorded line edits applied. An edit whose
        line has since changed in the inputs is dropped, with a warning."""
        edits = self._data.get("edits", {})
        duration = duration if duration is not None else self._data.get("timing", {}).get("duration")
        out = list(segments)
        for k in sorted(edits, key=int):
            i, e = int(k), edits[k]
            if i >= len(out) or segments[i].text != e["was"][0] or abs(segments[i].start - e["was"][1]) > 1e-3:
                log.warning("line %d changed in the lyrics since it was edited by hand: that edit is dropped", i + 1)
                del edits[k]
                continue
            if "text" in e:
                out[i] = dataclasses.replace(out[i], text=e["text"])
            if "start" in e:
                try:
                    out = retime(out, i, e["start"], duration)
                except InputError as err:  # its neighbours moved in the inputs
                    log.warning("the start set by hand for line %d no longer fits (%s): it is dropped", i + 1, err)
                    del e["start"]
        return out

    # ---- image prompts: what a line's image shows when not its words --------------------------------
    # "prompts": segment index -> the prompt its lyrics line gives after ` | ` (set from the lyrics
    # each time they are read); "prompt_edits": segment index -> {"prompt": text or None (cleared),
    # "was": the line's words in the inputs}, set by hand (`musivid prompt`, the studio), which wins
    # for as long as the inputs give that line the same words.
    def set_lyric_prompts(self, prompts: list[str | None]) -> None:
        """The image prompts the lyrics give, one per segment (None: none)."""
        found = {str(i): p for i, p in enumerate(prompts) if p}
        if found:
            self._data["prompts"] = found
        else:
            self._data.pop("prompts", None)

    def set_line_prompt(self, index: int, prompt: str | None) -> None:
        """Give segment `index` its own image prompt by hand; None clears it (the image follows the
        words, whatever the lyrics say)."""
        raw = self.timed_segments()[index]
        self._data.setdefault("prompt_edits", {})[str(index)] = {"prompt": prompt, "was": raw.text}

    def line_prompts(self, count: int | None = None) -> list[str | None]:
        """Every segment's image prompt (None: its words): the hand edit, else the lyrics'. A hand
        edit whose line has new words in the inputs is dropped, with a warning."""
        raw = self.timed_segments()
        count = len(raw) if count is None else count
        out = [self._data.get("prompts", {}).get(str(i)) for i in range(count)]
        edits = self._data.get("prompt_edits", {})
        for k in sorted(edits, key=int):
            i, e = int(k), edits[k]
            if i >= len(raw) or raw[i].text != e.get("was"):
                log.warning("line %d changed in the lyrics since its image prompt was set by hand: that prompt is "
                            "dropped", i + 1)
                del edits[k]
                continue
            if i < count:
                out[i] = e.get("prompt") or None
        return out

    @property
    def rhythm_file(self) -> Path:
        return self.root / "rhythm.npz"

    def cached_rhythm(self, key: dict):
        """The saved beat analysis if it was made from the same audio and settings, else None."""
        from ..song.rhythm import Rhythm

        if self._data.get("rhythm_key") != key or not self.rhythm_file.is_file():
            return None
        try:
            return Rhythm.load(self.rhythm_file)
        except Exception as e:  # noqa: BLE001 - a damaged cache only costs the analysis
            log.warning("%s is unreadable (%s): analysing the song again", self.rhythm_file, type(e).__name__)
            return None

    def rhythm(self):
        """The saved beat analysis (rhythm.Rhythm), whatever it was made from; None if none."""
        from ..song.rhythm import Rhythm

        return Rhythm.load(self.rhythm_file) if self.rhythm_file.is_file() else None

    def set_rhythm(self, key: dict, rhythm) -> None:
        atomic_write_bytes(self.rhythm_file, rhythm.to_bytes(), "the beat analysis")
        self._data["rhythm_key"] = key
        self._data["tempo"] = round(rhythm.tempo, 3)

    def set_keyframes(self, kfs: list[Keyframe]) -> None:
        self._data["keyframes"] = [k.to_json() for k in kfs]

    def keyframes(self) -> list[Keyframe]:
        return [Keyframe(**k) for k in self._data.get("keyframes", [])]

    # ---- latents ------------------------------------------------------------------------------
    def latent_file(self, key: str) -> Path:
        return self.root / "latents" / f"{key}.pt"

    def latent_info(self, key: str) -> LatentInfo | None:
        m = self._data["latents"].get(key)
        if m is None or not self.latent_file(key).is_file():
            return None
        return LatentInfo(key, m["text"], int(m["variant"]), int(m["seed"]), float(m["score"]), int(m["steps"]))

    def save_latent(self, key: str, text: str, variant: int, state, steps: int) -> None:
        """Save one latent: its best z / class logits / score, and its whole one-row optimizer
        state (so a later run with more steps continues it)."""
        meta = {"text": text, "variant": int(variant), "seed": int(state.seeds[0]),
                "score": round(float(state.best_score[0]), 6), "steps": int(steps)}
        path = self.latent_file(key)
        if path.exists() and not path.is_file():  # a directory (or a pipe) where the file goes
            try:
                path.rmdir()
                log.warning("%s was an empty directory where a latent file goes: removed", path)
            except OSError:
                raise MusividError(f"{path}: is not a file but must become this line's latent file: move it out of "
                                   "the project, then run the same command again") from None
        atomic_torch_save({"z": state.best_z[0].clone(), "cls": state.best_cls[0].clone(), **meta,
                           "score": float(state.best_score[0]), "state": state_dict(state)}, path,
                          f"the finished latent of line {text[:30]!r}, variant {variant}")
        self._data["latents"][key] = meta

    def index_found_latents(self) -> list[str]:
        """Index the latent files the index does not list (see the module docstring) from their
        own contents; returns their keys."""
        try:
            found = sorted(f for f in (self.root / "latents").glob("*.pt") if f.stem not in self._data["latents"])
        except OSError:
            return []
        if not found:
            return []
        import torch

        keys = []
        for f in found:
            try:
                blob = torch.load(f, map_location="cpu", weights_only=True)
                meta = {"text": str(blob["text"]), "variant": int(blob["variant"]), "seed": int(blob["seed"]),
                        "score": round(float(blob["score"]), 6), "steps": int(blob["steps"])}
            except Exception as e:  # noqa: BLE001 - damaged, or from before latent files said what they are
                log.debug("%s: not indexed (%s)", f, type(e).__name__)
                continue
            self._data["latents"][f.stem] = meta
            keys.append(f.stem)
        if keys and (str(self.root), tuple(keys)) not in _told:  # once, however often it is opened
            _told.add((str(self.root), tuple(keys)))
            log.info("%d finished latent file(s) missing from %s (a run stopped before saving it): indexed again",
                     len(keys), index_file(self.root))
        return keys

    def load_latent(self, key: str) -> SavedLatent:
        """A finished latent; a file that cannot be read is a one-line MusividError."""
        import torch

        path = self.latent_file(key)
        try:
            blob = torch.load(path, map_location="cpu", weights_only=True)
            state = state_from(blob["state"]) if "state" in blob else None
            z, cls = blob["z"], blob["cls"]
            if not (isinstance(z, torch.Tensor) and isinstance(cls, torch.Tensor) and cls.ndim == 1):
                raise ValueError("no latent tensors")
            return SavedLatent(z, cls, float(blob["score"]), state)
        except Exception as e:  # noqa: BLE001 - a truncated, foreign or damaged file
            raise MusividError(f"{path}: unreadable latent file ({type(e).__name__}): run the full command "
                               "(`musivid AUDIO LYRICS ...`) again to optimize that line again") from None

    def try_latent(self, key: str) -> SavedLatent | None:
        """A finished latent, or None when its file cannot be read: then it is forgotten, with a
        warning, so that its line is optimized again (and the file replaced)."""
        try:
            return self.load_latent(key)
        except MusividError:
            meta = self._data["latents"].pop(key, {})
            log.warning("%s cannot be read (damaged or truncated): line %r, variant %s will be optimized again",
                        self.latent_file(key), str(meta.get("text", "?"))[:40], meta.get("variant", "?"))
            return None

    def thumbnail_file(self, key: str) -> Path:
        return self.root / "thumbs" / f"{key}.png"

    def thumbnail(self, key: str) -> bytes | None:
        """A variant's thumbnail (PNG bytes), None if it was never drawn or cannot be read."""
        try:
            return self.thumbnail_file(key).read_bytes()
        except OSError:
            return None

    def save_thumbnail(self, key: str, png: bytes) -> None:
        atomic_write_bytes(self.thumbnail_file(key), png, "a thumbnail")

    def shown_variant(self, text: str, settings_key: dict, line: int | None = None) -> int | None:
        """The variant a line shows: the one picked for segment `line` (0-based; None: the title
        image, which has no line), else the one picked for its words `text`, else the best-scoring;
        None if it has none."""
        have = self.variants_of(text, settings_key)
        if not have:
            return None
        for v in (self.line_pick(line, text) if line is not None else None, self._data["picked"].get(text)):
            if v is not None and v in have:
                return v
        return max(have, key=lambda vv: self.latent_info(latent_key(settings_key, text, vv)).score)

    def variants_of(self, text: str, settings_key: dict) -> list[int]:
        """Finished variant numbers for a line text under the given latent settings."""
        out = []
        for key, meta in self._data["latents"].items():
            if meta["text"] == text and key == latent_key(settings_key, text, meta["variant"]):
                if self.latent_file(key).is_file():
                    out.append(meta["variant"])
        return sorted(out)

    # ---- choices and outputs --------------------------------------------------------------------
    # A choice is kept per line ("line_picks": segment index -> {text, variant}), so that lines with
    # the same words (which share their latents) can show different variants; and per text
    # ("picked": text -> variant), the variant last picked for those words: what a line with them
    # shows when it has no pick of its own (and the title image), and all older projects recorded.
    def picked(self, text: str, line: int | None = None) -> int | None:
        """The variant picked by hand for segment `line` (its own pick, else its words' pick) or,
        with `line` None, for the text; None if none."""
        v = self.line_pick(line, text) if line is not None else None
        return v if v is not None else self._data["picked"].get(text)

    def pick(self, text: str, variant: int) -> None:
        """Record the variant picked for a text (see `pick_line` for one line of it)."""
        self._data["picked"][text] = int(variant)

    def line_pick(self, line: int, text: str) -> int | None:
        """The variant picked for segment `line` itself, if it was picked for the words `text` it
        has now. A pick made for other words (the line was re-worded, in the lyrics or by hand) is
        dropped, with a warning."""
        picks = self._data.get("line_picks", {})
        e = picks.get(str(line))
        if e is None:
            return None
        if e["text"] != text:
            log.warning("line %d has new words since variant %d was picked for it: that pick is dropped", line + 1,
                        e["variant"])
            del picks[str(line)]
            return None
        return int(e["variant"])

    def pick_line(self, line: int, text: str, variant: int | None) -> None:
        """Record the variant segment `line` (0-based), with the words `text`, shows; None forgets it."""
        picks = self._data.setdefault("line_picks", {})
        if variant is None:
            picks.pop(str(line), None)
        else:
            picks[str(line)] = {"text": text, "variant": int(variant)}

    def set_chosen(self, chosen: list[Chosen]) -> None:
        self._data["chosen"] = [dataclasses.asdict(c) | {"score": round(c.score, 6)} for c in chosen]

    def chosen(self) -> list[Chosen]:
        return [Chosen(**c) for c in self._data.get("chosen", [])]

    def set_outputs(self, video: Path, srt: Path) -> None:
        self._data["outputs"] = {"video": str(video.resolve()), "srt": str(srt.resolve())}

    def output(self, kind: str = "video") -> Path | None:
        """The last rendered "video" or "srt" (None before the first render)."""
        p = self._data.get("outputs", {}).get(kind)
        return Path(p) if p else None

    # ---- checkpoint ---------------------------------------------------------------------------
    @property
    def checkpoint_file(self) -> Path:
        return self.root / "checkpoint.pt"

    def save_checkpoint(self, keys: list[str], state) -> None:
        write_checkpoint(self.checkpoint_file, keys, state)

    def load_checkpoint(self) -> "Checkpoint | None":
        """The Checkpoint of an interrupted optimization, or None."""
        return read_checkpoint(self.checkpoint_file)

    def shard_checkpoint_file(self, keys: list[str]) -> Path:
        """Where a worker optimizing these latents (one shard, musivid/shard.py) checkpoints them;
        named by the keys, so the shards of different runs never overwrite each other."""
        digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
        return self.root / "checkpoints" / f"shard-{digest}.pt"

    def shard_checkpoints(self) -> "list[Checkpoint]":
        """Every shard checkpoint that reads back."""
        found = (read_checkpoint(f) for f in sorted((self.root / "checkpoints").glob("shard-*.pt")))
        return [c for c in found if c is not None]

    def clear_checkpoint(self) -> None:
        self.checkpoint_file.unlink(missing_ok=True)
        for f in (self.root / "checkpoints").glob("shard-*.pt"):
            f.unlink(missing_ok=True)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")
