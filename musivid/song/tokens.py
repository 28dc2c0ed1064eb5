"""A lyric line as Whisper tokens, unit by unit (`musivid.text.unit_spans`: words, or characters
of scripts written without spaces), with the character each token completes: what the forced
aligner (alignment.py) maps a token path back to words with."""
from __future__ import annotations

from dataclasses import dataclass

from ..text import unit_spans


@dataclass(frozen=True)
class LineTokens:
    """A lyric line as Whisper tokens: unit u covers characters [char_spans[u]) of `chars`, token
    j ends at character `ends[j]` of `chars` (a partly decoded character counts as not yet)."""

    text: str
    units: tuple[str, ...]
    tokens: tuple[int, ...]
    ends: tuple[int, ...]  # (len(tokens),) cumulative characters decoded after each token
    char_spans: tuple[tuple[int, int], ...]  # (len(units), 2)


def tokenize(text: str, tokenizer) -> LineTokens:
    """Tokens of a line, word by word (a leading space before words of spaced scripts, as Whisper
    writes them), with the character each token completes."""
    us = unit_spans(text)
    tokens: list[int] = []
    ends: list[int] = []
    spans: list[tuple[int, int]] = []
    done = 0
    for unit in us:
        u = unit.text
        piece = u if unit.no_space else " " + u
        ids = tokenizer.encode(piece)
        start = done
        for j in range(1, len(ids) + 1):
            dec = tokenizer.decode(ids[:j])
            ok = len(dec.lstrip(" ").split("\ufffd")[0]) if "\ufffd" in dec else len(dec.lstrip(" "))
            ends.append(start + min(ok, len(u)))
        tokens.extend(ids)
        if ids:
            ends[-1] = start + len(u)
        done = start + len(u)
        spans.append((start, done))
    return LineTokens(text, tuple(u.text for u in us), tuple(tokens), tuple(ends), tuple(spans))
