"""The text rules of lyrics, in one place: which scripts are written without spaces, how a line is
cut into the units that are timed (alignment) and highlighted (karaoke), how words are normalised
for matching a transcript, and which language a script names.

Scripts written without spaces. Chinese (Han), Japanese (kana, with Han), Thai, Lao, Khmer,
Burmese and Tibetan put no space between words, so a line in them cannot be cut into words at
spaces; each of their characters is a unit of its own (a syllable or a mora, near enough). Korean
Hangul is written with spaces between words: its words are units, like Latin ones. Other scripts
without spaces (Javanese, Balinese, Yi...) are rare in songs and not listed: a run of them is one
unit, like a spaced word. Only letters and digits of the listed scripts count (`is_no_space`):
their punctuation and symbols are punctuation.

Units (`unit_spans`, `units`), the rules:
1. Whitespace separates units; in a spaced script nothing else does ("violin," is one unit).
2. Each letter or digit of a script written without spaces begins a unit of its own. Combining
   marks stay with the character before them (Thai vowel and tone marks, Japanese voicing marks),
   a consonant stacked after a joiner (Khmer coeng, Burmese virama, zero-width joiner) joins it,
   and a Thai or Lao vowel written before its consonant (เ แ โ ใ ไ) opens that consonant's unit.
3. Punctuation (and symbols, see `is_punct`) after such a character stays with it ("心。",
   "月！？"), so no unit of bare punctuation is highlighted or timed; opening punctuation (「 ( “)
   goes with the character after it ("「月"). Punctuation alone between spaces is a unit ("—").
4. A run of a spaced script touching such a character is a unit of its own ("Hello月" gives
   "Hello", "月").
So "".join(units(t)) is t without its whitespace, and alignment and karaoke cut every line alike.

Matching (`normalize_words`): NFKC, case-folded, punctuation removed, cut as units are, and
Hangul syllables split too: Korean spacing differs between a lyric sheet and a transcript, so
words are matched syllable by syllable (for matching only; Hangul units stay whole words).

Languages (`SCRIPTS`, `line_language`): a script that only one language uses, or that names the
language a song in it most likely has (Han: Chinese unless kana appear, kana: Japanese, Hangul:
Korean, Thai, Arabic, Hebrew, Greek, Devanagari: Hindi...), gives that ISO 639-1 code, one that
Whisper knows. Latin and Cyrillic are written in many languages: they name none (for whole lyrics
`likely_language` takes Russian for Cyrillic, as the lyrics stage always has).

Cleaning (`clean_line`): a lyric line is shown (captions, .srt, .lrc) and given to CLIP, so nothing
in it may act on a terminal, a subtitle player or the text's direction unseen. Removed: terminal
escape sequences whole (`ESC [ 31 m`, OSC strings such as hyperlinks, the C1 forms), every other
control character (C0, DEL, C1: BEL, NUL, backspace...), lone surrogates, and invisible format
characters (Unicode Cf): bidi embeddings, overrides, isolates and marks (U+202A-202E, U+2066-2069,
U+200E/200F, U+061C), zero-width space, word joiner, soft hyphen, BOM and the tag characters that
can hide text. Kept: the zero-width non-joiner and joiner (they shape Persian, Indic scripts and
emoji), the visible prepended number signs (Arabic U+0600-0605...) and the tag characters of an
emoji flag (🏴 + tags). Whitespace controls (tab, vertical tab, form feed, NEL, the line and
paragraph separators) are whitespace: runs of whitespace become one space, none at either end.
"""
from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable

# ---- scripts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """A Unicode script as lyrics use it: its code point ranges, whether words are separated by
    spaces, the language it names on its own (None: several languages share it) and the language
    a whole song in it most likely has."""

    name: str
    ranges: tuple[tuple[int, int], ...]  # inclusive [first, last] code points
    spaced: bool
    language: str | None
    likely: str | None = None  # None: `language`

    @property
    def likely_language(self) -> str | None:
        return self.likely or self.language


SCRIPTS: tuple[Script, ...] = (
    Script("Greek", ((0x0370, 0x03FF), (0x1F00, 0x1FFF)), True, "el"),
    Script("Cyrillic", ((0x0400, 0x052F),), True, None, likely="ru"),
    Script("Armenian", ((0x0530, 0x058F),), True, "hy"),
    Script("Hebrew", ((0x0590, 0x05FF), (0xFB1D, 0xFB4F)), True, "he"),
    Script("Arabic", ((0x0600, 0x06FF), (0x0750, 0x077F), (0x08A0, 0x08FF), (0xFB50, 0xFDFF),
                      (0xFE70, 0xFEFF)), True, "ar"),
    Script("Devanagari", ((0x0900, 0x097F),), True, "hi"),
    Script("Bengali", ((0x0980, 0x09FF),), True, "bn"),
    Script("Gurmukhi", ((0x0A00, 0x0A7F),), True, "pa"),
    Script("Gujarati", ((0x0A80, 0x0AFF),), True, "gu"),
    Script("Tamil", ((0x0B80, 0x0BFF),), True, "ta"),
    Script("Telugu", ((0x0C00, 0x0C7F),), True, "te"),
    Script("Kannada", ((0x0C80, 0x0CFF),), True, "kn"),
    Script("Malayalam", ((0x0D00, 0x0D7F),), True, "ml"),
    Script("Sinhala", ((0x0D80, 0x0DFF),), True, "si"),
    Script("Thai", ((0x0E00, 0x0E7F),), False, "th"),
    Script("Lao", ((0x0E80, 0x0EFF),), False, "lo"),
    Script("Tibetan", ((0x0F00, 0x0FFF),), False, "bo"),
    Script("Burmese", ((0x1000, 0x109F), (0xA9E0, 0xA9FF), (0xAA60, 0xAA7F)), False, "my"),
    Script("Georgian", ((0x10A0, 0x10FF), (0x1C90, 0x1CBF), (0x2D00, 0x2D2F)), True, "ka"),
    Script("Hangul", ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7AF),
                      (0xD7B0, 0xD7FF)), True, "ko"),
    Script("Ethiopic", ((0x1200, 0x137F),), True, "am"),
    Script("Khmer", ((0x1780, 0x17FF), (0x19E0, 0x19FF)), False, "km"),
    Script("Kana", ((0x3040, 0x309F), (0x30A0, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F),
                    (0x1B000, 0x1B16F)), False, "ja"),
    # ideographs, with the ideographic iteration and closing marks and number zero (々 〆 〇)
    Script("Han", ((0x3005, 0x3007), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF),
                   (0x20000, 0x323AF)), False, "zh"),
)

# the names people read for the languages the tools name (Whisper's codes); others are shown by code
LANGUAGE_NAMES = {
    "en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "ja": "Japanese", "ko": "Korean", "zh": "Chinese", "ru": "Russian", "ar": "Arabic",
    "he": "Hebrew", "el": "Greek", "th": "Thai", "hi": "Hindi", "hy": "Armenian", "bn": "Bengali",
    "pa": "Punjabi", "gu": "Gujarati", "ta": "Tamil", "te": "Telugu", "kn": "Kannada", "ml": "Malayalam",
    "si": "Sinhala", "lo": "Lao", "bo": "Tibetan", "my": "Burmese", "ka": "Georgian", "am": "Amharic",
    "km": "Khmer", "pl": "Polish", "sv": "Swedish", "tr": "Turkish", "uk": "Ukrainian",
}


def language_name(code: str | None) -> str:
    """"German" for "de"; an unknown code as itself."""
    return LANGUAGE_NAMES.get(code, code) if code else "unknown"


_TABLE = sorted((lo, hi, s) for s in SCRIPTS for lo, hi in s.ranges)
_FIRSTS = [lo for lo, _, _ in _TABLE]
_HANGUL_SYLLABLES = (0xAC00, 0xD7AF)
# marks that stack the next consonant under the one before it: Burmese virama, Khmer coeng, ZWJ
_JOINERS = frozenset("\u1039\u17d2\u200d")
# Thai and Lao vowels written before the consonant they follow in speech
_PREPOSED = frozenset("\u0e40\u0e41\u0e42\u0e43\u0e44\u0ec0\u0ec1\u0ec2\u0ec3\u0ec4")
# halfwidth katakana voicing marks: spacing letters in Unicode, combining in use
_HALFWIDTH_VOICING = frozenset("\uff9e\uff9f")
_OPENING = ("Ps", "Pi")  # opening brackets and quotes


def script_of(ch: str) -> Script | None:
    """The script of a character from SCRIPTS (None for Latin, digits, punctuation, unlisted)."""
    o = ord(ch)
    k = bisect.bisect_right(_FIRSTS, o) - 1
    if k >= 0 and o <= _TABLE[k][1]:
        return _TABLE[k][2]
    return None


def is_no_space(ch: str) -> bool:
    """A letter or digit of a script written without spaces (Han, kana, Thai, Lao, Khmer, Burmese,
    Tibetan): a unit of its own."""
    s = script_of(ch)
    return s is not None and not s.spaced and unicodedata.category(ch)[0] in "LN" \
        and ch not in _HALFWIDTH_VOICING


def is_mark(ch: str) -> bool:
    """A combining mark: it belongs to the character before it."""
    return unicodedata.category(ch)[0] == "M" or ch in _HALFWIDTH_VOICING


def is_punct(s: str) -> bool:
    """Every character is punctuation, a symbol, a separator or an invisible format character
    (Unicode categories P, S, Z, C): none of them is sung. False for ""."""
    return bool(s) and all(unicodedata.category(c)[0] in "PSZC" for c in s)


# ---- units -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unit:
    """A piece of a line that is timed and highlighted as one: a word, or a character of a script
    written without spaces (see the module's rules)."""

    text: str
    a: int  # span [a, b) in the line's text
    b: int
    space: bool  # whitespace separates it from the unit before it
    no_space: bool = False  # a character of a script written without spaces (no space around it)


def _pieces(word: str, own: Callable[[str], bool]) -> list[tuple[int, int, bool]]:
    """Cut a word (no whitespace) into [a, b) pieces by the unit rules, `own(ch)` telling which
    characters begin a piece of their own; each with whether it is such a piece."""
    out: list[list] = []  # [a, b, own]
    p = 0  # word[p:k] is pending: a spaced run, or punctuation not yet placed
    glue = False  # the next own character joins the last piece (after a joiner or a preposed vowel)

    def attachable(k: int) -> bool:  # nothing pending and the last piece is an own one ending at k
        return p == k and bool(out) and out[-1][2] and out[-1][1] == k

    for k, ch in enumerate(word):
        if is_mark(ch):
            if attachable(k):
                out[-1][1] = p = k + 1
                glue = glue or ch in _JOINERS
        elif own(ch):
            if glue and attachable(k):
                out[-1][1] = p = k + 1
                glue = False
                continue
            start = k
            pending = word[p:k]
            if pending and is_punct(pending):
                start = p  # punctuation opening a word goes with the character after it
            elif pending:
                while start > p and unicodedata.category(word[start - 1]) in _OPENING:
                    start -= 1
                out.append([p, start, False])
            out.append([start, k + 1, True])
            p = k + 1
            glue = ch in _PREPOSED
        elif is_punct(ch) and attachable(k) and unicodedata.category(ch) not in _OPENING:
            out[-1][1] = p = k + 1
            glue = ch in _JOINERS
        else:
            glue = False
    if p < len(word):
        if out and is_punct(word[p:]):
            out[-1][1] = len(word)  # trailing punctuation stays with the unit before it
        else:
            out.append([p, len(word), False])
    return [(a, b, o) for a, b, o in out]


def unit_spans(text: str) -> list[Unit]:
    """The units of a line with their offsets in `text` and whether a space comes before each."""
    out: list[Unit] = []
    for m in re.finditer(r"\S+", text):
        base, word = m.start(), m.group()
        for k, (a, b, own) in enumerate(_pieces(word, is_no_space)):
            out.append(Unit(word[a:b], base + a, base + b, space=bool(out) and k == 0, no_space=own))
    return out


def units(text: str) -> list[str]:
    """The units of a line as strings: "Hello 世界!" gives ["Hello", "世", "界!"]."""
    return [u.text for u in unit_spans(text)]


# ---- matching ----------------------------------------------------------------------------------


def _is_hangul_syllable(ch: str) -> bool:
    return _HANGUL_SYLLABLES[0] <= ord(ch) <= _HANGUL_SYLLABLES[1]


def normalize_words(text: str) -> list[str]:
    """Words for matching a transcript to lyrics: NFKC, case-folded, punctuation removed, cut
    into units, and Hangul syllables split one by one (Korean spacing varies)."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = "".join(" " if is_punct(c) else c for c in t)
    own = lambda c: is_no_space(c) or _is_hangul_syllable(c)  # noqa: E731
    return [w[a:b] for w in t.split() for a, b, _ in _pieces(w, own)]


# ---- languages ---------------------------------------------------------------------------------


def _script_language(text: str, likely: bool) -> str | None:
    counts: dict[str, int] = {}
    for ch in text:
        s = script_of(ch)
        lang = None if s is None else s.likely_language if likely else s.language
        if lang:
            counts[lang] = counts.get(lang, 0) + 1
    letters = sum(ch.isalpha() for ch in text)
    if not counts or sum(counts.values()) < 0.3 * max(letters, 1):
        return None  # mostly Latin (or another script naming no language)
    if counts.get("ja"):
        return "ja"  # kana among Han: Japanese
    return max(counts, key=counts.__getitem__)


def line_language(text: str) -> str | None:
    """A line's language from its script alone, as an ISO 639-1 code: Han without kana "zh",
    with kana "ja", Hangul "ko", Thai "th", Arabic "ar"... (see SCRIPTS). None when no script
    naming a language makes up at least 30 % of its letters (Latin, Cyrillic, too mixed)."""
    return _script_language(text, likely=False)


def likely_language(text: str) -> str | None:
    """As line_language, but a script shared by several languages gives the one a song in it
    most likely has (Cyrillic: "ru")."""
    return _script_language(text, likely=True)


# frequent short words of languages written in Latin script, for telling a line's language by its
# words (`words_language`): only words a line of another of these languages rarely holds (no
# "die", "will", "war", "also", "hell" for German: English lines say them too); words the
# languages share ("la", "de", "que") count for each
STOPWORDS: dict[str, frozenset[str]] = {lang: frozenset(words.split()) for lang, words in {
    "en": "the and you to of a in is it i me my that on for your we with be this all not are love i'm you're "
          "don't can't what when where from just know like but now our was were will can at by up out down "
          "night heart baby through every they them there his her she he have has been never always",
    "de": "der die das und ich du nicht ist ein eine zu mit den sie es wir mir dich auf im dem des über aus nur "
          "noch doch wie wenn mein dein sein kein keine nacht liebe herz immer wieder bin bist uns euch zum zur "
          "vom beim ohne durch oder aber schon dann hier alles nichts morgen heute wird sind einen einem",
    "fr": "le la les et je tu de des un une est que pas mon ma dans qui il elle nous pour du au aux sur avec mais "
          "où vous ils suis sont ton ta sa mes tes ses ce cette plus jamais toujours nuit amour cœur coeur c'est "
          "j'ai d'amour moi toi ne se sans comme tout tous",
    "es": "el la los las y yo tu de que en un una es no mi por con se lo me te del al tú mis tus su sus para pero "
          "como cuando está son soy eres uno muy más nunca siempre noche amor corazón vida canción",
    "it": "il la le e io tu di che un una non mi per con ti sei sono ma lo gli del della nel sul questo quando "
          "come più sempre mai notte amore cuore vita",
    "pt": "o a os as e eu tu de que um uma não meu minha em com se por você me do da no na dos das é sou mais "
          "nunca sempre noite amor coração vida",
    "nl": "de het een en ik je jij niet is van dat op met zijn mijn wij we ook maar naar nog voor",
}.items()}


def words_language(text: str, min_hits: int = 2) -> str | None:
    """The language of Latin-script text from its frequent words (STOPWORDS): the language with
    at least `min_hits` of them and half again as many as any other; None when none does."""
    words = [w.strip(".,!?;:\"()¿¡«»…—-").casefold().replace("\u2019", "'") for w in text.split()]
    score = {lang: sum(w in sw for w in words) for lang, sw in STOPWORDS.items()}
    best = sorted(score.items(), key=lambda kv: -kv[1])
    if best[0][1] >= min_hits and best[0][1] >= 1.5 * best[1][1]:
        return best[0][0]
    return None


def line_languages(texts: list[str] | tuple[str, ...]) -> list[str | None]:
    """Each line's language as its text tells: its script (`line_language`, Cyrillic taken for
    Russian), else its words (`words_language`); None where neither tells (a short line, "la la
    la", a name)."""
    return [likely_language(t) or words_language(t) for t in texts]


# ---- cleaning ----------------------------------------------------------------------------------

# terminal escape sequences, removed whole: CSI (ESC [ or C1 CSI), a string command (OSC, DCS, SOS,
# PM, APC) up to its terminator (BEL or ST), any other escape (ESC, intermediates, a final byte)
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|\x1b[ -/]*[0-~]")
# the tag characters of an emoji flag (a black flag, tags, a cancel tag): the only tags kept
_EMOJI_TAGS = re.compile("\U0001F3F4[\U000E0020-\U000E007E]+\U000E007F")
# format characters that are seen or needed: ZWNJ and ZWJ, prepended concatenation marks
_KEPT_FORMAT = frozenset("\u200c\u200d\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891"
                         "\u08e2\U000110bd\U000110cd")


def _invisible(ch: str) -> bool:
    """A control, surrogate or format character that `clean_line` removes (whitespace is not one)."""
    cat = unicodedata.category(ch)
    if cat == "Cf":
        return ch not in _KEPT_FORMAT
    return cat in ("Cc", "Cs") and not ch.isspace()


def clean_line(text: str) -> str:
    """A lyric line as it is shown and given to CLIP: escape sequences, control characters and
    invisible format characters removed (see the module's cleaning rules), whitespace collapsed
    to single spaces, none at either end. Idempotent."""
    if text.isascii() and text.isprintable():
        return " ".join(text.split())  # the common case: nothing to remove
    text = _ESCAPES.sub("", text)
    flags = [(m.start(), m.end()) for m in _EMOJI_TAGS.finditer(text)]
    out, k = [], 0
    for a, b in flags + [(len(text), len(text))]:
        out.append("".join(" " if ch.isspace() else ch for ch in text[k:a] if not _invisible(ch)))
        out.append(text[a:b])
        k = b
    return " ".join("".join(out).split())


def has_invisible(text: str) -> bool:
    """Whether `clean_line` removes more than whitespace from `text`."""
    return clean_line(text) != " ".join(text.split())
