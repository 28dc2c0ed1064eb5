"""The text rules (musivid/text.py): scripts written without spaces, units shared by alignment and
karaoke captions, the normalisation for matching, and a line's language from its script."""
import pytest

from musivid.song import alignment
from musivid.text import (SCRIPTS, is_no_space, is_punct, likely_language, line_language, line_languages,
                          normalize_words, script_of, unit_spans, units, words_language)


@pytest.mark.parametrize("ch,no_space", [
    ("月", True), ("々", True), ("か", True), ("カ", True), ("ｶ", True), ("ก", True), ("ກ", True),
    ("က", True), ("ក", True), ("ཀ", True), ("𠀋", True),  # Han (ext. B), kana, Thai, Lao, Burmese, Khmer, Tibetan
    ("한", False), ("a", False), ("é", False), ("я", False), ("ا", False), ("क", False),  # spaced scripts
    ("。", False), ("、", False), ("・", False), ("ฯ", True), ("๏", False), ("\u0e31", False),  # punctuation, marks
])
def test_which_characters_are_written_without_spaces(ch, no_space):
    assert is_no_space(ch) is no_space


def test_script_table_is_consistent():
    ranges = sorted((lo, hi) for s in SCRIPTS for lo, hi in s.ranges)
    assert all(hi >= lo for lo, hi in ranges)
    assert all(a[1] < b[0] for a, b in zip(ranges, ranges[1:]))  # no code point in two scripts
    assert {s.name for s in SCRIPTS if not s.spaced} == {"Han", "Kana", "Thai", "Lao", "Khmer", "Burmese", "Tibetan"}
    assert script_of("한").name == "Hangul" and script_of("a") is None and script_of("。") is None


def test_punctuation_is_what_is_not_sung():
    assert is_punct("。") and is_punct("!?") and is_punct("—") and is_punct("♪") and is_punct("\u200b")
    assert not is_punct("") and not is_punct("a!") and not is_punct("1")


@pytest.mark.parametrize("text,expected", [
    ("the violin, is playing!", ["the", "violin,", "is", "playing!"]),
    ("Hello 世界!", ["Hello", "世", "界!"]),
    ("こんにちは、world", ["こ", "ん", "に", "ち", "は、", "world"]),
    ("月亮代表我的心，Hello月", ["月", "亮", "代", "表", "我", "的", "心，", "Hello", "月"]),
    ("月！？", ["月！？"]),  # a run of punctuation stays with the character before it
    ("「月亮」代表", ["「月", "亮」", "代", "表"]),  # opening punctuation goes with the character after it
    ("Hello「月", ["Hello", "「月"]),
    ("2024年", ["2024", "年"]),
    ("ジョン・レノン", ["ジ", "ョ", "ン・", "レ", "ノ", "ン"]),
    ("สวัสดีครับ", ["ส", "วั", "ส", "ดี", "ค", "รั", "บ"]),  # Thai: per character, marks kept with it
    ("เพลงไทย", ["เพ", "ล", "ง", "ไท", "ย"]),  # a vowel written first opens its consonant's unit
    ("ក្រុង", ["ក្រុ", "ង"]),  # Khmer: a consonant stacked after the coeng joins
    ("사랑해요 당신을", ["사랑해요", "당신을"]),  # Hangul is written with spaces
    ("— la la —", ["—", "la", "la", "—"]),  # punctuation alone between spaces is a unit
    ("  ", []),
])
def test_units(text, expected):
    assert units(text) == expected
    assert "".join(units(text)) == "".join(text.split())


@pytest.mark.parametrize("text", ["Hello 世界!", "สวัสดีครับ", "こんにちは、world", "月亮代表我的心。", "Où es-tu, mon cœur ?",
                                  "「カラオケ」で歌おう♪", "ສະບາຍດີ ເພື່ອນ", "မင်္ဂလာပါ"])
def test_alignment_and_karaoke_cut_a_line_alike(text):
    """The units alignment times are the units karaoke highlights: one Word per highlighted unit."""
    from musivid.video.captions import layout

    class Tok:  # one token per character: enough for tokenize's bookkeeping
        def encode(self, s):
            return [ord(c) for c in s]

        def decode(self, ids):
            return "".join(map(chr, ids))

    lt = alignment.tokenize(text, Tok())
    karaoke = layout(text, 4000, 400).units  # a wide frame: one row (a font lacking glyphs only warns)
    spans = unit_spans(text)
    assert list(lt.units) == [u.text for u in karaoke] == [u.text for u in spans]
    assert [text[u.a:u.b] for u in spans] == [u.text for u in spans]


def test_unit_spans_offsets_and_spaces():
    us = unit_spans("a b月 世界")
    assert [(u.text, u.a, u.b, u.space, u.no_space) for u in us] == [
        ("a", 0, 1, False, False), ("b", 2, 3, True, False), ("月", 3, 4, False, True),
        ("世", 5, 6, True, True), ("界", 6, 7, False, True)]


def test_normalize_words_for_matching():
    assert normalize_words("Über den Wolken, muss!") == ["über", "den", "wolken", "muss"]
    assert normalize_words("月亮代表我的心。") == list("月亮代表我的心")
    assert normalize_words("사랑해요, 당신") == ["사", "랑", "해", "요", "당", "신"]  # Hangul: syllable by syllable
    assert normalize_words("ｶﾗｵｹ Hello世界") == ["カ", "ラ", "オ", "ケ", "hello", "世", "界"]  # NFKC


@pytest.mark.parametrize("text,lang", [
    ("月亮代表我的心", "zh"), ("夜空にきらめく星のように", "ja"), ("カラオケ", "ja"), ("사랑해요 당신을", "ko"),
    ("สวัสดีครับ", "th"), ("مرحبا بالعالم", "ar"), ("שלום עולם", "he"), ("Καλημέρα κόσμε", "el"),
    ("नमस्ते दुनिया", "hi"), ("ສະບາຍດີ", "lo"), ("សួស្តី", "km"),
    ("Hello world", None), ("Привет мир", None), ("", None), ("123 !!", None),
    ("I love you 我爱你", None),  # mostly Latin: too mixed to tell
    ("我爱你 baby", "zh"),
])
def test_line_language(text, lang):
    assert line_language(text) == lang


def test_likely_language_takes_russian_for_cyrillic():
    assert likely_language("Привет мир") == "ru" and line_language("Привет мир") is None
    assert likely_language("月亮代表我的心") == "zh"


@pytest.mark.parametrize("text,lang", [
    ("der Mond scheint hell über dem Wasser", "de"), ("les étoiles dansent dans la nuit", "fr"),
    ("el viento canta una canción de amor", "es"), ("y la noche se termina", "es"),
    ("the violin is playing in the dark forest", "en"), ("die with me tonight", "en"),
    ("la la la", None), ("Amor", None), ("", None),
])
def test_words_language(text, lang):
    assert words_language(text) == lang


def test_line_languages_take_the_script_then_the_words():
    assert line_languages(["月亮代表我的心", "der Wind singt leise über dem Meer", "Привет мир", "oh oh oh"]) == [
        "zh", "de", "ru", None]


@pytest.mark.parametrize("name", ["en_spoken", "de_spoken", "fr_spoken", "es_spoken", "zh_spoken", "mix_spoken"])
def test_no_line_of_the_test_songs_is_taken_for_another_language(name):
    """Every line whose text tells its language tells the right one (the truth's, per line for
    the mixed song)."""
    import json

    from conftest import SONGS

    truth = json.loads((SONGS / f"{name}.truth.json").read_text(encoding="utf-8"))
    for row, lang in zip(truth["lines"], line_languages([r["text"] for r in truth["lines"]])):
        assert lang in (None, row.get("language", truth["language"])), row
