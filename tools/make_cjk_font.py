"""Build musivid/data/NotoSansCJKsc-Bold-subset.otf: the CJK caption font musivid ships as a fallback.

Captions in Chinese, Japanese or Korean need a font with their glyphs. fontconfig finds one where
the system has it; this subset is what a machine without one (a fresh container, CI) still gets,
so a Chinese line is never burned in as empty boxes silently. The full Noto Sans CJK is 17-20 MB;
this subset keeps the characters of everyday text and is ~2 MB:
  - Simplified Chinese: the 6,763 hanzi of GB 2312;
  - Japanese: hiragana, katakana and the 2,965 level-1 kanji of JIS X 0208;
  - Korean: the 2,350 hangul syllables of KS X 1001;
  - Latin (ASCII, Latin-1, Latin Extended-A), general and CJK punctuation, full-width forms.
Characters outside it fall through to the warning (musivid.video.fonts), naming the line and script.

Source: Noto Sans CJK SC Bold (face 2 of NotoSansCJK-Bold.ttc from Debian's fonts-noto-cjk
1:20220127+repack1-1, sha256 of the .ttc faa5f365...), SIL Open Font License 1.1 (OFL.txt beside
the font; a subset is a Modified Version the licence allows; Noto has no Reserved Font Name).

    apt-get download fonts-noto-cjk && dpkg-deb -x fonts-noto-cjk_*.deb x
    python tools/make_cjk_font.py x/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "musivid" / "data" / "NotoSansCJKsc-Bold-subset.otf"
SOURCE_SHA256 = "faa5f3656a78b2e2d450d27fe8382c778bc2b6bb5ea29c986664a6a435056ceb"
FACE = 2  # Noto Sans CJK SC Bold inside the collection


def encodable(codec: str, lo: int, hi: int, nbytes: int | None = None) -> set[int]:
    """Code points in [lo, hi) that `codec` encodes (in exactly `nbytes` bytes, if given)."""
    out = set()
    for o in range(lo, hi):
        try:
            b = chr(o).encode(codec)
        except UnicodeEncodeError:
            continue
        if nbytes is None or len(b) == nbytes:
            out.add(o)
    return out


def jis_level1() -> set[int]:
    """JIS X 0208 level-1 kanji: Shift_JIS lead bytes 0x88 (from 0x889F) to 0x98 (to 0x9872)."""
    out = set()
    for o in range(0x4E00, 0xA000):
        try:
            b = chr(o).encode("shift_jis")
        except UnicodeEncodeError:
            continue
        if len(b) == 2 and 0x889F <= int.from_bytes(b, "big") <= 0x9872:
            out.add(o)
    return out


def charset() -> set[int]:
    chars = set(range(0x20, 0x7F)) | set(range(0xA0, 0x180)) | set(range(0x2000, 0x2070))
    chars |= set(range(0x3000, 0x3100))  # CJK punctuation, hiragana, katakana
    chars |= set(range(0xFF00, 0xFFF0))  # full-width forms
    chars |= encodable("gb2312", 0x4E00, 0xA000)
    chars |= jis_level1()
    chars |= encodable("euc_kr", 0xAC00, 0xD7A4, nbytes=2)  # KS X 1001 hangul (not the 8-byte compositions)
    return chars


def main(src: str) -> None:
    from fontTools import subset
    from fontTools.ttLib import TTFont

    digest = hashlib.sha256(Path(src).read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        sys.exit(f"{src}: sha256 {digest[:12]}... is not the documented source ({SOURCE_SHA256[:12]}...)")
    font = TTFont(src, fontNumber=FACE)
    opts = subset.Options()
    opts.name_IDs = ["*"]  # keep the copyright and licence records
    opts.notdef_outline = True  # the .notdef box: what a missing glyph looks like (tests compare with it)
    opts.layout_features = ["kern", "vert"]
    opts.hinting = False
    sub = subset.Subsetter(opts)
    chars = charset()
    sub.populate(unicodes=chars)
    sub.subset(font)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    font.save(OUT)
    print(f"{OUT}: {len(chars)} characters, {OUT.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main(sys.argv[1])
