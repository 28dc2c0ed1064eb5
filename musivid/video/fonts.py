"""Fonts for captions and the storyboard: a face that has a glyph for every character of a line.

A line is drawn with the first face that covers all of its characters (checked per character in
the font's cmap with fontTools, not guessed from the script), tried in this order:
  1. the user's `--font FILE` (RenderConfig.font);
  2. DejaVu Sans Bold (most Linux systems; Latin, Greek, Cyrillic);
  3. fontconfig's fonts that cover the line's characters (`fc-list :charset=...`, bold sans first),
     where fontconfig is installed;
  4. the Noto Sans CJK subset musivid ships (musivid/data: Chinese, Japanese, Korean everyday
     characters; see tools/make_cjk_font.py);
  5. Pillow's own default font.
When no face covers a line, the one covering most of it is used and a warning names the line, its
script and the characters that will show as boxes (once per line).
"""
from __future__ import annotations

import functools
import logging
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InputError

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parents[1] / "data"
BUNDLED_CJK: Path | None = DATA / "NotoSansCJKsc-Bold-subset.otf"
# tried by name (Pillow looks in the system font directories) and at the usual Debian path
DEFAULT_FONTS = ("DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
FONTCONFIG = True  # ask fontconfig for covering fonts where `fc-list` exists (tests switch it off)


@dataclass(frozen=True)
class Face:
    """One font face: a file (and the face's index inside a .ttc collection)."""

    path: str
    index: int = 0

    @property
    def name(self) -> str:
        return Path(self.path).name

    def missing(self, chars: Iterable[str]) -> list[str]:
        """The characters of `chars` this face has no glyph for (in the order given)."""
        cmap = _cmap(self.path, self.index)
        return [c for c in chars if ord(c) not in cmap]

    def pil(self, size: int):
        """This face as a Pillow font of `size` px."""
        return _pil_font(self.path, self.index, size)


def needed(text: str) -> list[str]:
    """The characters of `text` that need a glyph: no spaces, controls or invisible formatting."""
    out = []
    for c in dict.fromkeys(text):
        cat = unicodedata.category(c)
        if c.isspace() or cat in ("Cc", "Cf", "Zs", "Zl", "Zp"):
            continue
        out.append(c)
    return out


def script_of(ch: str) -> str:
    """A readable script name for a character (from its Unicode name): Han, Hangul, Arabic..."""
    name = unicodedata.name(ch, "")
    if name.startswith(("CJK UNIFIED", "CJK COMPATIBILITY IDEOGRAPH")):
        return "Han (Chinese/Japanese)"
    if unicodedata.category(ch)[0] in "PSN" or not name:
        return "symbols"
    return name.split()[0].title()


def check_font(user_font: str) -> Face:
    """The face of a `--font FILE`, read in full (every table, and a line drawn with it), so a file
    that is no font, or a truncated one, is refused in one line before any work, not at the render."""
    path = Path(user_font).expanduser()
    if not path.is_file():
        raise InputError(f"--font {user_font}: no such font file: give the path of a .ttf, .otf or .ttc file")
    face = Face(str(path))
    try:
        from fontTools.ttLib import TTFont

        with TTFont(face.path, fontNumber=face.index) as f:
            f.ensureDecompiled()
        _cmap(face.path, face.index)
        face.pil(12).getbbox("Ag")
    except Exception as e:  # noqa: BLE001 - any unreadable file
        raise InputError(f"--font {user_font}: not a font file musivid can read ({type(e).__name__}): "
                         "give a .ttf, .otf or .ttc file") from None
    return face


class FontFinder:
    """Chooses a face per line of text (cached), and warns once per line that nothing covers."""

    def __init__(self, user_font: str | None = None):
        self.user = check_font(user_font) if user_font else None
        self.warned: set[str] = set()

    def candidates(self, chars: Sequence[str]) -> list[Face]:
        """Faces to try for `chars`, best first (see the module docstring)."""
        faces = [self.user] if self.user else []
        faces += [f for f in (_by_name(n) for n in DEFAULT_FONTS) if f is not None][:1]
        if FONTCONFIG:
            faces += fontconfig_faces(tuple(chars))
        if BUNDLED_CJK is not None and BUNDLED_CJK.is_file():
            faces.append(Face(str(BUNDLED_CJK)))
        return list(dict.fromkeys(faces))

    def face_for(self, text: str, line: int | None = None) -> Face | None:
        """The first face covering every character of `text`; else the one covering most, with a
        warning naming `line` (1-based) and the scripts left as boxes. None: no font file at all."""
        chars = needed(text)
        best, best_missing = None, None
        for face in self.candidates(chars):
            try:
                miss = face.missing(chars)
            except Exception:  # noqa: BLE001 - an unreadable system font: skip it
                continue
            if not miss:
                best, best_missing = face, []
                break
            if best_missing is None or len(miss) < len(best_missing):
                best, best_missing = face, miss
        if best_missing and text not in self.warned:
            self.warned.add(text)
            scripts = ", ".join(dict.fromkeys(script_of(c) for c in best_missing))
            where = f"line {line} " if line is not None else ""
            log.warning("%s%r: no font has glyphs for its %s characters (%s): they show as empty boxes; install a "
                        "font that covers them (e.g. Debian's fonts-noto-cjk) or pass --font FILE", where,
                        _short(text), scripts, "".join(best_missing[:8]) + ("..." if len(best_missing) > 8 else ""))
        elif self.user and best is not None and best != self.user and text not in self.warned:
            self.warned.add(text)
            miss = self.user.missing(chars)
            log.info("--font %s has no glyphs for %s of %s: using %s for it", self.user.name,
                     ", ".join(dict.fromkeys(script_of(c) for c in miss)),
                     f"line {line}" if line is not None else repr(_short(text)), best.name)
        return best

    def font(self, text: str, size: int, line: int | None = None):
        """A Pillow font of `size` px for `text` (Pillow's default font when no file is found)."""
        face = self.face_for(text, line)
        if face is None:
            from PIL import ImageFont

            return ImageFont.load_default(size)
        return face.pil(size)


def fontconfig_faces(chars: tuple[str, ...]) -> list[Face]:
    """fontconfig's faces covering every character of `chars`, bold sans-serif first; [] without
    fontconfig or for Latin-1-only text (the defaults cover it)."""
    wanted = [c for c in chars if ord(c) > 0xFF]
    if not wanted:
        return []
    return list(_fc_list(" ".join(f"{ord(c):x}" for c in sorted(wanted)[:64])))


@functools.lru_cache(maxsize=256)
def _fc_list(charset: str) -> tuple[Face, ...]:
    exe = shutil.which("fc-list")
    if exe is None:
        return ()
    try:
        out = subprocess.run([exe, "--format", "%{file}\t%{index}\t%{style}\t%{family}\n", f":charset={charset}"],
                             capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    rows = []
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) < 4 or not parts[0]:
            continue
        style, family = parts[2].lower(), parts[3].lower()
        rank = (("bold" not in style), ("sans" not in family), ("mono" in family), ("serif" in family and "sans" not in family))
        rows.append((rank, parts[0], int(parts[1] or 0)))
    return tuple(Face(path, index) for _, path, index in sorted(rows))


@functools.lru_cache(maxsize=64)
def _by_name(name: str) -> Face | None:
    """A font Pillow finds by file name (system font directories) or path; None if absent."""
    from PIL import ImageFont

    try:
        font = ImageFont.truetype(name, 12)
    except OSError:
        return None
    path = getattr(font, "path", None) or name
    return Face(str(path)) if Path(str(path)).is_file() else None


@functools.lru_cache(maxsize=64)
def _cmap(path: str, index: int) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(path, fontNumber=index, lazy=True) as f:
        return frozenset(f.getBestCmap() or {})


@functools.lru_cache(maxsize=128)
def _pil_font(path: str, index: int, size: int):
    from PIL import ImageFont

    return ImageFont.truetype(path, size, index=index)


def _short(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"
