"""Caption fonts: a line is drawn with a face that has its glyphs (checked per character), CJK
lines render as glyphs and not as .notdef boxes, and a line no font covers is named in a warning."""
import logging
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw

from musivid.video import fonts
from musivid.video.captions import CaptionTrack, draw_caption, layout
from musivid.errors import InputError
from musivid.video.fonts import Face, FontFinder, needed, script_of
from musivid.song.segments import Segment

ZH = "月亮代表我的心"
NOTDEF = "\U0010FFFD"  # a private-use code point no font maps: drawn as the .notdef glyph


@pytest.fixture
def no_cjk_fonts(monkeypatch):
    """The font search restricted to the Latin default: no fontconfig, no bundled CJK subset."""
    monkeypatch.setattr(fonts, "FONTCONFIG", False)
    monkeypatch.setattr(fonts, "BUNDLED_CJK", None)


def test_bundled_subset_covers_everyday_cjk_and_latin():
    face = Face(str(fonts.BUNDLED_CJK))
    assert fonts.BUNDLED_CJK.stat().st_size < 2.5e6
    assert face.missing(needed(ZH + "夜空にきらめく星のように 사랑해요 Hello, café!")) == []
    assert face.missing("𠀀") == ["𠀀"]  # a rare CJK Extension B character: outside the subset


def test_chinese_caption_is_drawn_as_glyphs_not_notdef_boxes(caplog):
    """Each character's box in the burned-in caption differs from the same box drawn with the
    .notdef glyph of the same font, and holds ink."""
    finder = FontFinder()
    with caplog.at_level(logging.WARNING, logger="musivid"):
        face = finder.face_for(ZH, 1)
    assert face is not None and face.missing(ZH) == [] and not caplog.records
    black = np.zeros((256, 256, 3), np.uint8)
    lay = layout(ZH, 256, 256, finder)
    img = draw_caption(black, lay).astype(int).sum(-1)
    assert len(lay.boxes) == len(ZH)  # one box per character
    for ch, u, (x0, y0, x1, y1), origin in zip(ZH, lay.units, lay.boxes, lay.origins):
        tofu = Image.fromarray(black.copy())  # the .notdef glyph of the same font, drawn at the same place
        ImageDraw.Draw(tofu).text(origin, NOTDEF, font=lay.font, fill=(255, 255, 255), stroke_width=lay.stroke,
                                  stroke_fill=(0, 0, 0))
        ref = np.asarray(tofu).astype(int).sum(-1)
        box = (slice(int(y0), int(y1)), slice(int(x0), int(x1)))
        glyph, notdef = img[box] > 200, ref[box] > 200
        differ = (glyph != notdef).mean()
        print(u.text, "ink", glyph.mean().round(3), "differs from .notdef", differ.round(3))
        assert u.text == ch and glyph.mean() > 0.05 and notdef.mean() > 0.02 and differ > 0.1


def test_a_line_no_font_covers_is_named_in_one_warning(no_cjk_fonts, caplog):
    segs = [Segment(0, "hello there", 0, 1), Segment(1, ZH, 1, 2)]
    with caplog.at_level(logging.WARNING, logger="musivid"):
        track = CaptionTrack(segs, 24)
        track(30, np.zeros((64, 64, 3), np.uint8))  # drawing it does not warn again
        track(31, np.zeros((64, 64, 3), np.uint8))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "line 2" in warnings[0] and "Han" in warnings[0] and "--font" in warnings[0]


def test_storyboard_finds_cjk_glyphs_or_warns(no_cjk_fonts, caplog):
    from musivid.video.storyboard import Row, storyboard_png

    with caplog.at_level(logging.WARNING, logger="musivid"):
        storyboard_png([Row(3, 1.0, "사랑해요 당신을", [], None)])
    assert any("line 3" in r.getMessage() and "Hangul" in r.getMessage() for r in caplog.records)


def test_user_font_is_tried_first_and_other_fonts_fill_in(caplog, tmp_path):
    dejavu = fonts._by_name(fonts.DEFAULT_FONTS[0])
    if dejavu is None:
        pytest.skip("DejaVu Sans Bold is not installed")
    finder = FontFinder(dejavu.path)
    assert finder.face_for("Über den Wolken") == dejavu
    with caplog.at_level(logging.INFO, logger="musivid"):
        face = finder.face_for(ZH, 4)
    assert face is not None and face != dejavu and face.missing(ZH) == []
    assert any("--font" in r.getMessage() and "line 4" in r.getMessage() for r in caplog.records)
    bad = tmp_path / "font.ttf"
    bad.write_text("not a font")
    with pytest.raises(InputError, match="not a font file"):
        FontFinder(str(bad))


@pytest.mark.skipif(shutil.which("fc-list") is None, reason="fontconfig is not installed")
def test_fontconfig_faces_cover_the_characters_asked_for():
    chars = ("ŵ", "Ŷ")  # Latin Extended-A: above Latin-1, so fontconfig is asked
    faces = fonts.fontconfig_faces(chars)
    assert faces and all(f.missing(chars) == [] for f in faces)
    assert fonts.fontconfig_faces(("a", "é")) == []  # Latin-1: the defaults cover it


def test_script_names():
    assert [script_of(c) for c in "月あア한aЖ,"] == ["Han (Chinese/Japanese)", "Hiragana", "Katakana", "Hangul",
                                                     "Latin", "Cyrillic", "symbols"]
    assert needed("a b\u200bc a") == ["a", "b", "c"]
