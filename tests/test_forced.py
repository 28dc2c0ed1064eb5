"""Forced alignment parts that need no model: text units, syllable weights, tokens to characters,
voice activity, the support measure, line starts and ends from a path. The walk itself runs on
real songs in tests/test_alignment.py."""
import json

import numpy as np
import pytest

from musivid.song import alignment as forced
from musivid.song.tokens import LineTokens
from musivid.song import voice
from musivid.song.voice import VoiceActivity, weight
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


# ---- lines not confirmed by the walk -----------------------------------------------------------------

def test_place_in_voice_puts_lines_on_the_voice_in_order():
    # two lines of 4 syllables at 0.25 s each (1 s) on two voiced stretches: one on each
    assert voice.place_in_voice([4, 4], [(10.0, 11.5), (13.0, 14.2)], 0.25, 9.0, 16.0) == [(10.0, 11.0),
                                                                                            (13.0, 14.0)]
    # one long stretch: back to back inside it
    assert voice.place_in_voice([4, 4], [(10.0, 14.0)], 0.25, 9.0, 16.0) == [(10.0, 11.0), (11.0, 12.0)]
    # a voice onset too late for the lines after it to fit: the line before it keeps going
    got = voice.place_in_voice([4, 8], [(10.0, 10.5), (14.5, 15.0)], 0.25, 9.0, 16.0)
    assert got[0] == (10.0, 11.0) and got[1][1] <= 16.0 and got[1][0] >= got[0][1]
    # less time than the lines need: all shrunk alike, inside [t0, t1]
    got = voice.place_in_voice([4, 4], [(10.0, 11.0)], 0.25, 10.0, 11.0)
    assert got == [(10.0, 10.5), (10.5, 11.0)]


def test_voice_between_lines_leaves_out_the_neighbours_tails():
    vad = vad_from([(2.0, 4.3), (4.3, 4.5), (8.0, 9.0), (12.0, 14.0)])
    assert voice.voiced_runs(vad, 4.2, 11.9) == [(pytest.approx(8.0, abs=STEP), pytest.approx(9.0, abs=STEP))]
    assert voice.voiced_runs(vad, 4.2, 7.9) == []  # the line before's last 0.3 s is its own
    assert voice.voiced_runs(None, 4.2, 7.9) == [(4.2, 7.9)]  # without voice activity: all of it


def test_a_line_searched_again_needs_voice_for_a_weak_support():
    def placed(support, squeezed=False, short=False, at_edge=False):
        return forced._Placed(0, np.array([1.0, 1.5]), np.array([1.5, 2.0]), support, at_edge, squeezed, short)

    assert placed(0.5, squeezed=True).found_again(False)  # heard, though no voice activity there
    assert not placed(0.5, squeezed=True, short=True).found_again(True)  # the path gives it no time
    assert placed(0.2).found_again(True) and not placed(0.2).found_again(False)
    assert not placed(0.2, squeezed=True).found_again(True) and not placed(0.1).found_again(True)
    assert not placed(0.9, at_edge=True).found_again(True)


def test_a_line_the_text_does_not_tell_takes_the_language_detected_in_its_window():
    class Inner:
        is_multilingual = True
        calls = 0

        def detect_language(self, enc):
            Inner.calls += 1
            return [[("<|fr|>", 0.8), ("<|es|>", 0.1)]]

    class Model:
        model = Inner()

    song = forced._Song(Model(), [], ["de", None, "zh"], None, None, {})
    assert [song.language(k, "enc", 0.0) for k in range(3)] == ["de", "fr", "zh"]
    assert song.language(1, "enc", 0.0) == "fr" and Inner.calls == 1  # once per window
    song.language(1, "enc2", 25.0)
    assert Inner.calls == 2
    Inner.is_multilingual = False  # an English-only model has no language token
    assert forced._Song(Model(), [], ["de"], None, None, {}).language(0, "enc", 0.0) is None
