import pytest

from musivid.errors import InputError
from musivid.lyrics import MAX_LINE_CHARS, check_times, clip_text, load, parse_lrc, parse_plain


def test_plain_skips_blank_lines_and_normalises_space(tmp_path):
    p = tmp_path / "l.txt"
    p.write_text("\ufeffFirst  line\n\n   \nSecond\tline \n", encoding="utf-8")
    lyr = load(p)
    assert [l.text for l in lyr.lines] == ["First line", "Second line"]
    assert not lyr.timed


def test_lrc_multiple_tags_metadata_and_sorting():
    text = "[ar:Someone]\n[ti:Song]\n[00:10.50][00:30.00]Chorus line\n[00:05.00]Verse\n[01:02.3]Late\n[00:20]\n"
    lines, warnings = parse_lrc(text)
    assert [(l.text, l.time) for l in lines] == [
        ("Verse", 5.0), ("Chorus line", 10.5), ("Chorus line", 30.0), ("Late", 62.3)]
    assert any("out of order" in w for w in warnings)


def test_lrc_offset_tag_shifts_times():
    lines, _ = parse_lrc("[offset:+500]\n[00:02.00]a\n[00:04.00]b\n")
    assert [l.time for l in lines] == [1.5, 3.5]


def test_lrc_stamps_past_the_end_are_dropped_with_a_warning(tmp_path):
    p = tmp_path / "s.lrc"
    p.write_text("[00:01.00]one\n[00:50.00]two\n")
    lyr = check_times(load(p), duration=20.0)
    assert [l.text for l in lyr.lines] == ["one"]
    assert any("after the end" in w for w in lyr.warnings)
    with pytest.raises(InputError, match="past the end"):
        check_times(load(p), duration=0.5)


@pytest.mark.parametrize("content,match", [
    (b"", "no lyric lines"),
    (b"\n  \n\t\n", "no lyric lines"),
    (b"\x00\x01\x02binary\x00", "binary"),
    ("caf\u00e9 latin-1".encode("latin-1"), "not UTF-8"),
])
def test_bad_lyrics_files_give_one_clear_error(tmp_path, content, match):
    p = tmp_path / "bad.txt"
    p.write_bytes(content)
    with pytest.raises(InputError, match=match) as e:
        load(p)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_missing_lyrics_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "nope.txt")


def test_non_latin_lyrics_pass_through_untouched(tmp_path):
    lines = ["Über den Wolken muss die Freiheit", "Où es-tu, mon cœur ?", "月亮代表我的心"]
    p = tmp_path / "l.txt"
    p.write_text("\n".join(lines), encoding="utf-8")
    assert [l.text for l in load(p).lines] == lines


def test_long_lines_are_cut_for_clip_only():
    long = "word " * 200
    text, cut = clip_text(long)
    assert cut and len(text) <= MAX_LINE_CHARS
    assert clip_text("short")[1] is False
    assert parse_plain(long)[0].text == long.strip()


@pytest.mark.parametrize("lines,lang", [
    (["The violin is playing in the dark forest", "and I am waiting for you"], "en"),
    (["Über den Wolken muss die Freiheit wohl grenzenlos sein", "und ich bin nicht allein"], "de"),
    (["Où es-tu, mon cœur ?", "Je ne sais pas où tu es dans la nuit"], "fr"),
    (["La luna brilla en el mar", "y yo te espero con el corazón"], "es"),
    (["月亮代表我的心"], "zh"),
    (["夜空にきらめく星のように"], "ja"),
    (["사랑해요 당신을"], "ko"),
    (["la la la"], None),
])
def test_guess_language(lines, lang):
    from musivid.lyrics import guess_language

    assert guess_language(lines) == lang


@pytest.mark.parametrize("marker", ["(x2)", "x2", "×2", "(×2)", "[2x]", "(X 2)", "2x"])
def test_repeat_marker_expands_the_line(marker):
    got = [ln.text for ln in parse_plain(f"first\nshine on me {marker}\nlast")]
    assert got == ["first", "shine on me", "shine on me", "last"]


def test_repeat_marker_counts_and_lone_markers():
    assert [ln.text for ln in parse_plain("la la x3")] == ["la la"] * 3
    # a marker alone repeats the line before it
    assert [ln.text for ln in parse_plain("hold on\n(x2)\nnext")] == ["hold on", "hold on", "next"]
    # not markers: no space before, a number that is part of the text, absurd counts, nothing to repeat
    for text in ["Malcolm X", "mix2", "we are 22", "hello 2x4", "go x100", "x2"]:
        assert [ln.text for ln in parse_plain(text)] == [text]


def test_repeat_markers_in_a_lyrics_file(tmp_path):
    p = tmp_path / "song.txt"
    p.write_text("verse\nchorus line (x2)\nbridge\nchorus line ×2\n", encoding="utf-8")
    assert [ln.text for ln in load(p).lines] == ["verse"] + ["chorus line"] * 2 + ["bridge"] + ["chorus line"] * 2
