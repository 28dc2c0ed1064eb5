"""Real sung recordings (samples/songs/*_real: excerpts of freely licensed songs, truth checked
against the audio; NOTICE.md there), aligned with the real multilingual Whisper base: no sung
line may be lost, and most line starts must land near the truth.

The target is the peer's (DESIGN.md §6: stable-ts put 91 % of line starts within 1 s on real sung
songs): at least 90 % of each song's sung lines within 1.0 s, every line placed. The truth of
en_fishin_real is uncertain by up to ~0.5 s on a few lines (NOTICE.md), hence 1.0 s here; the
benchmark (benchmarks/align_songs.py) reports 0.3 s as well."""
import pytest

from conftest import SONGS, song

REAL = sorted(p.name.removesuffix(".truth.json") for p in SONGS.glob("*_real.truth.json"))
WITHIN_S = 1.0
MIN_FRACTION = 0.9


@pytest.fixture(scope="module")
def base_aligner(whisper_base):
    from musivid.song import timing

    return timing.aligner("faster-whisper", str(whisper_base), required=True)


def test_there_are_real_songs():
    assert len(REAL) >= 2, REAL


@pytest.mark.parametrize("name", REAL)
def test_a_real_sung_song_keeps_every_line_near_its_truth(name, base_aligner):
    from musivid.song.audio import decode
    from musivid.song.lyrics import load

    sg = song(name)
    texts = [ln.text for ln in load(sg["txt"]).lines]
    truth = sg["truth"]["lines"]
    assert texts == [r["text"] for r in truth]
    res = base_aligner(decode(sg["mp3"]), texts, source=sg["txt"])
    placed = {i: seg.start for i, seg in zip(res.lines, res.segments)}
    sung = [(i, r["start"]) for i, r in enumerate(truth) if r["start"] is not None]
    lost = [f'{i} "{truth[i]["text"]}"' for i, _ in sung if i not in placed]
    assert not lost, (f"{name}: the aligner left out sung line(s) {', '.join(lost)} (issue 23: no sung line may be "
                      f"lost); warnings: {res.warnings}")
    errors = {i: round(abs(placed[i] - t), 2) for i, t in sung}
    near = sum(e <= WITHIN_S for e in errors.values()) / len(sung)
    assert near >= MIN_FRACTION, (
        f"{name}: {near:.0%} of line starts within {WITHIN_S} s of the truth, want >= {MIN_FRACTION:.0%} (the peer "
        f"stable-ts reaches 91 %); errors (s) by line: {errors}")
