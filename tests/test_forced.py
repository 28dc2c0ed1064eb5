"""Forced alignment parts that need no model: text units, syllable weights, tokens to characters,
voice activity, the support measure, line starts and ends from a path. The walk itself runs on
real songs in tests/test_alignment.py."""
import json

import numpy as np
import pytest

from musivid.song import alignment as forced
from musivid.song.alignment import LineTokens, VoiceActivity, weight
from musivid.text import units

STEP = 512 / 16000


def test_units_are_words_and_cjk_characters():
    assert units("the violin, is playing!") == ["the", "violin,", "is", "playing!"]
    assert units("月亮代表我的心。") == ["月", "亮", "代", "表", "我", "的", "心。"]
    assert units("Hello 你好 ok") == ["Hello", "你", "好", "ok"]
    assert units("カラオケ") == list("カラオケ")
    assert units("  ") == [] and units("— la la —") == ["—", "la", "la", "—"]


def test_weight_counts_syllables():
    assert [weight(w) for w in ["the", "golden", "montañas", "über", "strength", "月", "a"]] == [1, 2, 3, 2, 1, 1, 1]
    assert weight("...") == 1  # never zero


def test_voice_activity_hysteresis_and_rising_edge():
    prob = np.array([0, 0.05, 0.2, 0.3, 0.6, 0.9, 0.4, 0.45, 0.9, 0.2, 0.1, 0, 0.7, 0.8, 0], np.float32)
    v = VoiceActivity.from_prob(prob, min_gap=0.0)
    # on at 0.6, held through 0.4/0.45 (above 0.35), off at 0.2; the rise from 0.2 counts
    assert v.voiced.tolist() == [False, False, True, True, True, True, True, True, True, False, False, False,
                                 True, True, False]
    assert np.allclose(v.onsets(), np.array([2, 12]) * STEP)
    assert np.allclose(v.offsets(), np.array([9, 14]) * STEP)
    assert v.fraction(2 * STEP, 9 * STEP) == 1.0 and v.fraction(9 * STEP, 12 * STEP) == 0.0


def test_voice_activity_bridges_short_pauses():
    prob = np.array([0.9] * 10 + [0.0] * 5 + [0.9] * 10 + [0.0] * 8 + [0.9] * 5, np.float32)
    v = VoiceActivity.from_prob(prob, min_gap=0.2)  # 5 steps = 0.16 s bridged, 8 = 0.256 s not
    assert v.voiced[:25].all() and not v.voiced[25:33].any() and v.voiced[33:].all()
    assert np.allclose(v.onsets(), [0, 33 * STEP])


def lt_of(text: str) -> LineTokens:
    us = tuple(units(text))
    return LineTokens(text, us, tuple(range(len(us))), tuple(np.cumsum([len(u) for u in us])), ())


def vad_from(spans, duration=60.0):
    """A VoiceActivity voiced exactly over the (start, end) spans."""
    prob = np.zeros(int(duration / STEP), np.float32)
    for a, b in spans:
        prob[int(round(a / STEP)):int(round(b / STEP))] = 0.95
    return VoiceActivity.from_prob(prob)


def test_line_start_skips_units_stretched_over_the_music():
    """After a long gap the path spreads the first two units over it; the start is measured
    from the first unstretched unit, then moved to the voice onset that runs into it."""
    lt = lt_of("hold on tight we are flying through the night")
    us = np.array([17.6, 26.2, 33.5, 33.8, 34.1, 34.3, 34.6, 34.9, 35.0])
    ue = np.append(us[1:], 35.4)
    rate = forced._rate(lt, us)
    assert 0.15 < rate < 0.35
    no_vad = forced._line_start(lt, us, ue, rate, None, 0.0)
    assert 32.9 < no_vad < 33.3  # 33.5 less "hold on" at the line's rate
    vad = vad_from([(2.0, 4.3), (33.09, 35.5)])
    assert forced._line_start(lt, us, ue, rate, vad, 18.0) == pytest.approx(33.09, abs=STEP)
    # an onset the previous line owns (before its end) is not taken
    assert forced._line_start(lt, us, ue, rate, vad, 34.0) == pytest.approx(no_vad)


def test_line_start_keeps_a_voiced_long_first_note():
    """A long first unit over voice is a held note, not music: the start stays at the path's."""
    lt = lt_of("shine on me silver light")
    us = np.array([10.0, 11.6, 11.9, 12.2, 12.7])
    ue = np.append(us[1:], 13.5)
    vad = vad_from([(10.0, 13.5)])
    assert forced._line_start(lt, us, ue, forced._rate(lt, us), vad, 5.0) == pytest.approx(10.0, abs=STEP)


def test_line_end_is_cut_where_the_voice_stops_but_not_below_the_last_word():
    p = forced._Placed(0, np.array([10.0, 10.5, 11.0]), np.array([10.5, 11.0, 16.0]), 0.9, False, False)
    assert forced._cap_end(p, None) == 16.0  # the path alone: its last token took the music after
    vad = vad_from([(10.0, 11.4)])
    assert forced._cap_end(p, vad) == pytest.approx(11.4, abs=STEP)
    assert forced._cap_end(p, vad, shortest=0.8) == pytest.approx(11.8)  # VAD lost a held note
    assert forced._cap_end(p, None, longest=1.5) == 12.5


def test_support_tells_heard_from_absent_lines():
    lg = np.log
    # a new line: the language model alone finds it unlikely, the song makes it likely
    assert forced._support(lg(np.array([0.6, 0.8, 0.7])), lg(np.array([0.02, 0.05, 0.03]))) > 0.8
    # a repeated line: the language model expects it already; the song still removes most doubt
    assert forced._support(lg(np.array([0.97, 0.95, 0.99])), lg(np.array([0.7, 0.6, 0.8]))) > forced.MIN_SUPPORT
    # absent: the song changes nothing (new or repeated text)
    assert forced._support(lg(np.array([0.03, 0.05])), lg(np.array([0.03, 0.06]))) < forced.MIN_SUPPORT
    assert forced._support(lg(np.array([0.7, 0.6])), lg(np.array([0.7, 0.62]))) < forced.MIN_SUPPORT
    assert forced._support(np.zeros(0), np.zeros(0)) == 0.0


def test_unit_times_split_a_token_holding_two_characters():
    lt = LineTokens("月亮心", ("月", "亮", "心"), (1, 2), (2, 3), ((0, 1), (1, 2), (2, 3)))
    us, ue = forced._unit_times(lt, np.array([1.0, 2.0]), np.array([2.0, 2.5]))
    assert us.tolist() == [1.0, 1.5, 2.0] and ue.tolist() == [1.5, 2.0, 2.5]


@pytest.fixture(scope="module")
def tokenizers(tiny_en, whisper_base):
    import tokenizers as tk
    from faster_whisper.tokenizer import Tokenizer

    en = Tokenizer(tk.Tokenizer.from_file(str(tiny_en / "tokenizer.json")), False)
    multi = Tokenizer(tk.Tokenizer.from_file(str(whisper_base / "tokenizer.json")), True, "transcribe", "zh")
    return en, multi


@pytest.mark.parametrize("text", ["the violin is playing in the dark forest", "Où es-tu, mon cœur ?",
                                  "月亮代表我的心", "Hello 你好 ok", "über den Wolken"])
def test_tokenize_maps_tokens_to_characters(text, tokenizers):
    tok = tokenizers[1] if any(ord(c) > 0x2FFF for c in text) else tokenizers[0]
    lt = forced.tokenize(text, tok)
    assert "".join(lt.units) == text.replace(" ", "")
    assert list(lt.ends) == sorted(lt.ends) and lt.ends[-1] == len("".join(lt.units))
    assert [b - a for a, b in lt.char_spans] == [len(u) for u in lt.units]
    # the tokens are Whisper's own for the text, word by word
    assert tok.decode(list(lt.tokens)).replace(" ", "") == text.replace(" ", "")


def test_truth_files_match_the_lyrics():
    """The committed songs' truth lists the lyric lines in order (markers expanded)."""
    from conftest import SONGS
    from musivid.song.lyrics import load

    for truth in sorted(SONGS.glob("*.truth.json")):
        name = truth.name.removesuffix(".truth.json")
        t = json.loads(truth.read_text(encoding="utf-8"))
        assert [ln.text for ln in load(SONGS / f"{name}.txt").lines] == [r["text"] for r in t["lines"]], name
        starts = [r["start"] for r in t["lines"] if r["start"] is not None]
        assert starts == sorted(starts) and (SONGS / f"{name}.mp3").stat().st_size < 400_000
