"""Text hygiene of lyrics and captions (issue 24): LRC lines with the same time tag, control
characters and escape sequences, UTF-16/UTF-32 lyrics."""
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from musivid.errors import InputError
from musivid.song.lyrics import load, parse_lrc, parse_plain, timed_segments
from musivid.song.segments import Segment, Word, from_times
from musivid.text import clean_line, has_invisible
from musivid.video.captions import CaptionTrack, layout, write_lrc, write_srt

BAD = ("\x07", "\x1b", "\x7f", "\x00", "\x9b", "\u202e", "\u200b", "\ufeff")


# ---- same-time LRC lines -----------------------------------------------------------------------

def test_three_identical_time_tags_give_three_captions_in_order_with_a_warning(tmp_path):
    p = tmp_path / "same.lrc"
    p.write_text("[ti:song]\n[00:02.00]one\n[00:02.00]two\n[00:02.00]three\n[00:05.00]four\n")
    lyr = load(p)
    assert [ln.text for ln in lyr.lines] == ["one", "two", "three", "four"]
    [w] = [w for w in lyr.warnings if "share a time tag" in w]
    assert "lines 2-4" in w and "[00:02.00]" in w
    segs = timed_segments(lyr, 10.0)
    assert [(s.index, s.text, s.start, s.end) for s in segs] == [
        (0, "one", 2.0, 3.0), (1, "two", 3.0, 4.0), (2, "three", 4.0, 5.0), (3, "four", 5.0, 10.0)]
    srt = tmp_path / "same.srt"
    write_srt(segs, srt, fps=25)
    blocks = srt.read_text().strip().split("\n\n")
    assert [b.split("\n")[2] for b in blocks] == ["one", "two", "three", "four"]


def test_same_time_lines_share_until_a_gap_mark_or_the_end():
    segs = from_times(["a", "b"], [1.0, 1.0], 9.0, gaps=[5.0])
    assert [(s.start, s.end) for s in segs] == [(1.0, 3.0), (3.0, 5.0)]
    segs = from_times(["x", "a", "b", "c"], [0.0, 3.0, 3.0, 3.0], 9.0)
    assert [(s.text, s.start, s.end) for s in segs] == [("x", 0.0, 3.0), ("a", 3.0, 5.0), ("b", 5.0, 7.0),
                                                         ("c", 7.0, 9.0)]


def test_same_time_lines_with_word_tags_start_at_their_first_word():
    lines, warnings = parse_lrc("[00:02.00]<00:02.00>one <00:02.50>two\n"
                                "[00:02.00]<00:04.00>three <00:04.50>four <00:05.00>\n"
                                "[00:02.00]five\n[00:08.00]six\n")
    assert any("lines 1-3 at [00:02.00]" in w for w in warnings)
    segs = from_times([ln.text for ln in lines], [ln.time for ln in lines], 10.0, (), [ln.words for ln in lines])
    assert [(s.text, s.start, s.end) for s in segs] == [
        ("one two", 2.0, 4.0), ("three four", 4.0, 6.0), ("five", 6.0, 8.0), ("six", 8.0, 10.0)]
    assert [(w.text, w.start, w.end) for w in segs[0].words] == [("one", 2.0, 2.5), ("two", 2.5, 4.0)]
    assert [(w.text, w.start, w.end) for w in segs[1].words] == [("three", 4.0, 4.5), ("four", 4.5, 5.0)]


def test_different_times_give_no_warning_and_keep_their_spans():
    lines, warnings = parse_lrc("[00:01.00]a\n[00:02.00]b\n")
    assert not any("share" in w for w in warnings)
    assert [(s.start, s.end) for s in from_times(["a", "b"], [1.0, 2.0], 4.0)] == [(1.0, 2.0), (2.0, 4.0)]


# ---- control characters ------------------------------------------------------------------------

@pytest.mark.parametrize("raw,clean", [
    ("a \x1b[31mred\x1b[0m line", "a red line"),
    ("ring\x07 the bell", "ring the bell"),
    ("del\x7fete", "delete"),
    ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\ text", "link text"),
    ("\x9b1mC1 csi", "C1 csi"),
    ("\u202eevil\u202c \u2066iso\u2069 \u200fmark", "evil iso mark"),
    ("zero\u200bwidth\u2060join soft\u00adhyphen \ufeffbom", "zerowidthjoin softhyphen bom"),
    ("hid\U000E0041\U000E0042den", "hidden"),
    ("tab\there\x0bvt\x0cff", "tab here vt ff"),  # whitespace controls are whitespace
    ("نمی\u200cخواهم", "نمی\u200cخواهم"),  # ZWNJ shapes Persian: kept
    ("👩\u200d🚀", "👩\u200d🚀"),  # ZWJ joins emoji: kept
    ("🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F flag",
     "🏴\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F flag"),  # an emoji flag's tags: kept
    ("Café 東京 caf\u00e9\u0301", "Café 東京 caf\u00e9\u0301"),
])
def test_clean_line(raw, clean):
    assert clean_line(raw) == clean
    assert clean_line(clean) == clean  # idempotent
    assert has_invisible(raw) == (clean != " ".join(raw.split()))


def test_control_characters_are_removed_from_lyrics_with_one_warning(tmp_path):
    p = tmp_path / "ctl.txt"
    p.write_text("clean line\n\x1b[31mred\x1b[0m line\nbell\x07 line\n\u202eright to left\nlast\n", encoding="utf-8")
    lyr = load(p)
    assert [ln.text for ln in lyr.lines] == ["clean line", "red line", "bell line", "right to left", "last"]
    [w] = [w for w in lyr.warnings if "control characters" in w]
    assert "lines 2-4" in w and str(p) in w


def test_control_characters_in_lrc_never_reach_srt_lrc_or_captions(tmp_path):
    p = tmp_path / "ctl.lrc"
    p.write_text("\x1b[1m[00:01.00]<00:01.00>loud\x07 <00:01.50>bell\x1b[0m\n[00:03.00]qu\x7fiet\u202e\n",
                 encoding="utf-8")
    lyr = load(p)
    assert [ln.text for ln in lyr.lines] == ["loud bell", "quiet"]
    assert [w.text for w in lyr.lines[0].words] == ["loud", "bell"]
    assert any("lines 1-2" in w for w in lyr.warnings)
    segs = timed_segments(lyr, 5.0)
    srt, lrc = tmp_path / "o.srt", tmp_path / "o.lrc"
    write_srt(segs, srt, fps=25)
    write_lrc(segs, lrc)
    for out in (srt, lrc):
        assert not any(c in out.read_text(encoding="utf-8") for c in BAD)


def test_caption_writers_and_layout_clean_segments_from_elsewhere(tmp_path):
    # a transcription's segments are not read through the lyrics stage: the writers defend
    segs = [Segment(0, "\x1b[31mred\x1b[0m alert\x07", 0.0, 1.0,
                    (Word("\x1b[31mred", 0.0, 0.5), Word("alert\x07", 0.5, 1.0))),
            Segment(1, "\x07\x1b[0m", 1.0, 1.5),  # nothing left to show: not written
            Segment(2, "\u202eplain\u202c", 1.5, 2.0)]
    srt, lrc = tmp_path / "t.srt", tmp_path / "t.lrc"
    write_srt(segs, srt)
    text = srt.read_text(encoding="utf-8")
    assert not any(c in text for c in BAD)
    assert [b.split("\n")[2] for b in text.strip().split("\n\n")] == ["red alert", "plain"]
    write_lrc(segs, lrc)
    text = lrc.read_text(encoding="utf-8")
    assert not any(c in text for c in BAD)
    assert "[00:00.00]<00:00.00>red <00:00.50>alert<00:01.00>" in text
    lay = layout("ring\x07 the \x1b[31mbell", 320, 240)
    assert [u.text for u in lay.units] == ["ring", "the", "bell"]
    assert "".join(r[0] for r in lay.rows) == "ring the bell"
    track = CaptionTrack(segs, 25)
    assert [s.text for s in track.segments] == ["red alert", "plain"]
    assert [u.text for u in track.layout(0, 320, 240).units] == ["red", "alert"]


# ---- encodings ---------------------------------------------------------------------------------

TEXT = "first line\nsecond 月亮 line\n"


@pytest.mark.parametrize("encoding,bom", [
    ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"), ("utf-32-le", b"\xff\xfe\x00\x00"),
    ("utf-32-be", b"\x00\x00\xfe\xff"), ("utf-8", b"\xef\xbb\xbf"),
])
def test_lyrics_with_a_byte_order_mark_are_decoded(tmp_path, encoding, bom):
    p = tmp_path / "l.txt"
    p.write_bytes(bom + TEXT.encode(encoding))
    lyr = load(p)
    assert [ln.text for ln in lyr.lines] == ["first line", "second 月亮 line"]
    assert not lyr.warnings


def test_utf16_lrc_with_a_byte_order_mark(tmp_path):
    p = tmp_path / "l.lrc"
    p.write_bytes("[00:01.00]héllo\r\n[00:02.00]wörld\r\n".encode("utf-16"))
    assert [(ln.text, ln.time) for ln in load(p).lines] == [("héllo", 1.0), ("wörld", 2.0)]


@pytest.mark.parametrize("encoding,name", [("utf-16-le", "UTF-16"), ("utf-16-be", "UTF-16"),
                                           ("utf-32-le", "UTF-32"), ("utf-32-be", "UTF-32")])
def test_utf16_without_a_byte_order_mark_says_re_save(tmp_path, encoding, name):
    p = tmp_path / "l.txt"
    p.write_bytes(TEXT.encode(encoding))
    with pytest.raises(InputError, match=f"looks like {name} text: re-save it as UTF-8") as e:
        load(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value) and "binary" not in str(e.value)


@pytest.mark.parametrize("content", [
    b"\x00\x01\x02binary\x00",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06\x00\x00\x00",
    bytes(range(256)) * 4,
    b"\xff\xfe\x00\x00\x00\x00\x00\x00\x00\x00",  # a byte order mark on NULs
])
def test_binary_files_are_still_called_binary(tmp_path, content):
    p = tmp_path / "b.txt"
    p.write_bytes(content)
    with pytest.raises(InputError, match="binary|not UTF-32") as e:
        load(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_bad_utf16_after_a_byte_order_mark_names_the_encoding(tmp_path):
    p = tmp_path / "l.txt"
    p.write_bytes(b"\xff\xfe" + "ok".encode("utf-16-le") + b"\x00\xd8")  # a lone surrogate
    with pytest.raises(InputError, match="is not UTF-16 .*re-save it as UTF-8"):
        load(p)


# ---- properties --------------------------------------------------------------------------------

_NASTY = st.sampled_from(["\x1b[31m", "\x1b]8;;x\x1b\\", "\x1b", "\x9b2J", "\x07", "\x00", "\x7f", "\x85", "\u202e",
                          "\u2066", "\u200b", "\u200d", "\ufeff", "\U000E0041", "[00:01.00]", "<00:01.50>", " ", "\t",
                          "\n", "la", "月", "é"])
_nasty_text = st.lists(st.one_of(_NASTY, st.text(max_size=3)), max_size=30).map("".join)


def _visible(text: str) -> bool:
    return all(unicodedata.category(c) not in ("Cc", "Cs") and c not in "\u202e\u2066\u200b\ufeff\U000E0041"
               for c in text)


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(_nasty_text)
def test_no_control_character_survives_reading(text):
    assert clean_line(clean_line(text)) == clean_line(text)
    assert _visible(clean_line(text))
    lines, _ = parse_lrc(text)
    for ln in parse_plain(text) + lines:
        assert _visible(ln.text) and all(_visible(w.text) for w in ln.words)
