import pytest

from musivid.errors import InputError
from musivid.song.lyrics import MAX_LINE_CHARS, check_times, clip_text, load, parse_lrc, parse_plain


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
    from musivid.song.lyrics import guess_language

    assert guess_language(lines) == lang


def test_enhanced_lrc_word_tags_become_word_times(tmp_path):
    from musivid.song.lyrics import timed_segments

    p = tmp_path / "e.lrc"
    p.write_text("[00:12.00]<00:12.00>Hello <00:12.50>world\n"
                 "[00:14.00] <00:14.00> A2 <00:14.40> form <00:15.00>\n"  # the A2 extension: a trailing end time
                 "[00:16.00]<00:16.00>月<00:16.50>亮<00:17.00>\n", encoding="utf-8")
    lyr = load(p)
    assert [l.text for l in lyr.lines] == ["Hello world", "A2 form", "月亮"]
    segs = timed_segments(lyr, 20.0)
    assert [(w.text, w.start, w.end) for w in segs[0].words] == [("Hello", 12.0, 12.5), ("world", 12.5, 14.0)]
    assert [(w.text, w.start, w.end) for w in segs[1].words] == [("A2", 14.0, 14.4), ("form", 14.4, 15.0)]
    assert [(w.text, w.start, w.end) for w in segs[2].words] == [("月", 16.0, 16.5), ("亮", 16.5, 17.0)]
    assert not lyr.warnings


def test_bad_word_tags_are_ignored_with_a_warning():
    lines, warnings = parse_lrc("[00:01.00]<00:01.00>one <0x:zz>two <00:00.50>three <00:02.00>four\n")
    assert lines[0].text == "one two three four"
    # "two" follows a bad tag and "three" a backwards one: both untimed (captions place them by characters)
    assert [(w.text, w.start, w.end) for w in lines[0].words] == [("one", 1.0, 2.0), ("four", 2.0, float("inf"))]
    assert any("bad word tag '<0x:zz>'" in w for w in warnings)
    assert any("goes back in time" in w for w in warnings)


def test_repeated_line_tags_move_word_times_along_and_offset_applies():
    lines, _ = parse_lrc("[offset:+500]\n[00:10.00][00:30.00]<00:10.00>la <00:10.50>la\n")
    assert [[w.start for w in l.words] for l in lines] == [[9.5, 10.0], [29.5, 30.0]]


def test_empty_timed_lines_end_the_line_before_them(tmp_path):
    from musivid.song.lyrics import timed_segments

    p = tmp_path / "g.lrc"
    p.write_text("[00:01.00]one\n[00:03.00]\n[00:08.00]two\n[00:09.00]three\n[00:12.00]\n")
    lyr = check_times(load(p), 20.0)
    assert lyr.gaps == (3.0, 12.0)
    assert [(s.text, s.start, s.end) for s in timed_segments(lyr, 20.0)] == [
        ("one", 1.0, 3.0), ("two", 8.0, 9.0), ("three", 9.0, 12.0)]


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
