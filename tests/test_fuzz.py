"""Property-based tests (Hypothesis) of the parsers of untrusted input: lyrics files and audio files.

Whatever the bytes, the result is a value or a MusividError (a one-line message for the user),
never another exception. Derandomized (a fixed seed derived from each test), no example database,
so CI runs the same cases every time; the case counts are in COUNTS (2,550 in all), and no
deadline: a loaded machine's slow example is no failure.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_audio
from musivid.song.audio import decode
from musivid.errors import MusividError
from musivid.song.lyrics import LyricLine, load, parse_lrc, parse_plain

FUZZ = dict(derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
COUNTS = {"parse_lrc": 800, "parse_plain": 500, "load": 400, "audio_bytes": 300, "audio_cut": 300,
          "audio_flip": 250}

# LRC-like text, built from fragments (cheap to generate): tags good and odd, huge numbers,
# metadata and offset lines, words, stray brackets, blank lines, a BOM
_FRAGMENTS = ["[00:01.00]", "[00:12.345]", "[1:2]", "[999:99.999]", "[00:00:00]", "[0:60.5]", "[12:34.56]",
              "[offset:+500]", "[offset:-250]", "[offset: 1000000]", "[OFFSET:3]", "[offset:" + "9" * 400 + "]",
              "[ar:someone]", "[ti:a song]", "[length:03:00]", "[#:note]", "[x:]", "[", "]", ":", ".", "[]",
              "[00:", "0" * 30, "9" * 400, "-", "+", "٣", "\ufeff", " ", "\t", "\n", "\n", "\n", "\r\n",
              "la la la", "snow", "Café", "東京", "\u0301", "\x00"]
_lrc_text = st.lists(st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=4)), max_size=40).map("".join)


def _check_lines(lines):
    for ln in lines:
        assert isinstance(ln, LyricLine) and ln.text.strip() == ln.text and ln.text
        assert ln.time is None or (ln.time >= 0 and ln.time == ln.time)  # not negative, not nan


@settings(max_examples=COUNTS["parse_lrc"], **FUZZ)
@given(_lrc_text)
def test_parse_lrc_always_returns_sorted_lines(text):
    try:
        lines, warnings = parse_lrc(text)
    except MusividError:
        return
    _check_lines(lines)
    assert [ln.time for ln in lines] == sorted(ln.time for ln in lines)
    assert all(isinstance(w, str) for w in warnings)


@settings(max_examples=COUNTS["parse_plain"], **FUZZ)
@given(st.text())
def test_parse_plain_always_returns_clean_lines(text):
    lines = parse_plain(text)
    _check_lines(lines)
    assert all(ln.time is None for ln in lines)


@pytest.fixture(scope="module")
def scratch():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@settings(max_examples=COUNTS["load"], **FUZZ)
@given(st.one_of(st.binary(max_size=2000), _lrc_text.map(lambda t: t.encode("utf-8", "surrogatepass"))),
       st.sampled_from([".lrc", ".txt", ""]))
def test_load_any_bytes_gives_lyrics_or_a_musivid_error(scratch, data, suffix):
    p = scratch / f"lyrics{suffix}"
    p.write_bytes(data)
    try:
        lyr = load(p)
    except MusividError as e:
        assert "\n" not in str(e) and str(p) in str(e)
        return
    assert lyr.lines
    _check_lines(lyr.lines)


# ---- audio ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_files(scratch):
    """Short real files in the formats users bring (1.5 s each: decoding stays fast)."""
    sr = 22050
    t = np.arange(int(1.5 * sr)) / sr
    y = (0.3 * np.sin(2 * np.pi * 330 * t) + 0.05 * np.random.default_rng(0).standard_normal(len(t))).astype(np.float32)
    out = {}
    for name in ("a.mp3", "a.wav", "a.flac", "a.m4a"):
        out[name] = write_audio(scratch / name, y, sr).read_bytes()
    return out


def _decodes_or_refuses(path: Path) -> None:
    try:
        a = decode(path, 22050)
    except MusividError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return
    assert a.samples.dtype == np.float32 and a.samples.ndim == 1 and len(a.samples) >= 2205
    assert np.isfinite(a.samples).all() and np.abs(a.samples).max() <= 1.0


@settings(max_examples=COUNTS["audio_bytes"], **FUZZ)
@given(st.binary(min_size=1, max_size=4000), st.sampled_from([".mp3", ".wav", ".ogg", ".m4a", ".flac", ".bin"]))
def test_decode_random_bytes(scratch, data, suffix):
    p = scratch / f"random{suffix}"
    p.write_bytes(data)
    _decodes_or_refuses(p)


@settings(max_examples=COUNTS["audio_cut"], **FUZZ)
@given(st.sampled_from(["a.mp3", "a.wav", "a.flac", "a.m4a"]), st.floats(0.0, 1.0))
def test_decode_real_files_cut_at_any_offset(scratch, real_files, name, where):
    data = real_files[name]
    p = scratch / f"cut-{name}"
    p.write_bytes(data[: max(1, int(len(data) * where))])
    _decodes_or_refuses(p)


@settings(max_examples=COUNTS["audio_flip"], **FUZZ)
@given(st.sampled_from(["a.mp3", "a.wav", "a.flac", "a.m4a"]),
       st.lists(st.tuples(st.floats(0.0, 1.0, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8))
def test_decode_real_files_with_corrupt_bytes(scratch, real_files, name, edits):
    data = bytearray(real_files[name])
    for where, value in edits:
        data[int(len(data) * where)] = value
    p = scratch / f"flip-{name}"
    p.write_bytes(bytes(data))
    _decodes_or_refuses(p)
