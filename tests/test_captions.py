"""Captions: which frames show which line (the .srt and the burned-in caption agree to the frame),
karaoke word highlighting checked in the decoded pixels, enhanced LRC out and back in."""
import re

import av
import numpy as np
import pytest

from conftest import musivid, write_audio
from musivid.text import unit_spans as units
from musivid.video.captions import CURRENT, CaptionTrack, draw_caption, exact_fps, frame_span, layout, unit_times, word_spans, write_lrc, write_srt
from musivid.video.fonts import FontFinder
from musivid.song.lyrics import load
from musivid.song.segments import Segment, Word

SRT_TIME = re.compile(r"(\d+):(\d+):(\d+),(\d+) --> (\d+):(\d+):(\d+),(\d+)")


def srt_entries(path):
    """[(start s, end s, text)] of an .srt file."""
    out = []
    for block in path.read_text().strip().split("\n\n"):
        rows = block.split("\n")
        m = SRT_TIME.match(rows[1])
        g = [int(x) for x in m.groups()]
        out.append((g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000, g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000,
                    "\n".join(rows[2:])))
    return out


def decode(path):
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]).astype(np.int16)


# ---- frames, SRT, LRC --------------------------------------------------------------------------------

@pytest.mark.parametrize("fps", [24, 25, 29.97])
def test_frame_span_is_start_inclusive_end_exclusive(fps):
    rate = exact_fps(fps)
    for start, end in [(0.0, 1.0), (0.37, 1.13), (2.0, 2.0), (1 / rate * 7, 1 / rate * 19), (10.01, 12.345)]:
        a, b = frame_span(start, end, rate)
        shown = [i for i in range(int(15 * rate)) if start <= i / rate < end
                 or abs(i / rate - start) < 1e-9 and i / rate < end]
        assert list(range(a, b)) == shown, (start, end)


def test_srt_with_fps_gives_frame_times_and_drops_lines_shorter_than_a_frame(tmp_path):
    p = tmp_path / "a.srt"
    segs = [Segment(0, "one", 0.37, 1.13), Segment(1, "blink", 1.501, 1.52), Segment(2, "two", 2.0, 3.0)]
    write_srt(segs, p, fps=25)
    assert srt_entries(p) == [(0.4, 1.16, "one"), (2.0, 3.0, "two")]  # frames 10..28 and 50..74
    write_srt(segs, p, fps=25, frames=(25, 60))  # excerpt 1.0-2.4 s: timed from its first frame
    assert srt_entries(p) == [(0.0, 0.16, "one"), (1.0, 1.4, "two")]


def test_units_split_words_and_cjk_characters():
    assert [u.text for u in units("Hello  world, again")] == ["Hello", "world,", "again"]
    assert [u.text for u in units("月亮代表我的心，Hello月")] == ["月", "亮", "代", "表", "我", "的", "心，", "Hello", "月"]
    assert [u.space for u in units("a b月")] == [False, True, False]


def test_unit_times_from_words_and_by_characters_without_them():
    seg = Segment(0, "Hello big world", 10.0, 14.0, (Word("hello", 10.2, 10.8), Word("world!", 12.0, 13.0)))
    t = unit_times(seg, units(seg.text))
    assert t[0] == 10.2 and t[2] == 12.0 and 10.8 < t[1] < 12.0  # "big" between its neighbours
    plain = Segment(0, "aa bbbb cc", 0.0, 8.0)
    assert unit_times(plain, units(plain.text)) == [0.0, 2.0, 6.0]  # by character count: 2, 4, 2
    assert word_spans("Hello big world", seg.words) == [(0, 5), (10, 15)]


def test_lrc_with_words_round_trips_through_the_parser(tmp_path):
    segs = [Segment(0, "Hello world, again", 1.0, 3.2, (Word("Hello", 1.0, 1.5), Word("world,", 1.5, 2.2),
                                                       Word("again", 2.2, 3.2))),
            Segment(1, "月亮代表", 5.0, 7.0, tuple(Word(c, 5.0 + 0.5 * k, 5.5 + 0.5 * k) for k, c in enumerate("月亮代表"))),
            Segment(2, "no words", 7.0, 9.0)]
    p = tmp_path / "a.lrc"
    write_lrc(segs, p)
    text = p.read_text()
    assert "[00:01.00]<00:01.00>Hello <00:01.50>world, <00:02.20>again<00:03.20>" in text
    assert "[00:05.00]<00:05.00>月<00:05.50>亮<00:06.00>代<00:06.50>表<00:07.00>" in text
    assert "[00:03.20]\n" in text  # the gap after line 1
    lyr = load(p)
    from musivid.song.lyrics import timed_segments

    back = timed_segments(lyr, 10.0)
    assert [(s.text, s.start, s.end) for s in back] == [(s.text, s.start, s.end) for s in segs]
    assert [s.words for s in back] == [s.words for s in segs]


def test_lrc_time_carries_rounding_into_the_minute():
    from musivid.video.captions import lrc_time

    assert lrc_time(59.999) == "01:00.00" and lrc_time(61.234) == "01:01.23"


# ---- rendered videos -------------------------------------------------------------------------------------

GAP_LRC = """[ti:gaps]
[00:00.37]first line here
[00:01.13]
[00:01.62]<00:01.62>second <00:02.00>line
[00:02.43]third one
[00:03.05]
"""


@pytest.fixture(scope="module")
def gap_project(tmp_path_factory):
    """A 3.6 s song with an LRC that has a gap after line 1, back-to-back lines 2 and 3, and an
    outro without a line; rendered with and without captions from the same project."""
    d = tmp_path_factory.mktemp("gaps")
    sr = 22050
    t = np.arange(int(3.6 * sr)) / sr
    audio = write_audio(d / "song.wav", 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)), sr)
    lrc = d / "song.lrc"
    lrc.write_text(GAP_LRC)
    base = ["--untrained", "--cutouts", "2", "--steps", "2", "--size", "128", "--crf", "12", "-q"]
    r = musivid(audio, lrc, "-o", d / "cap.mp4", "--fps", "25", "--captions", *base)
    assert r.returncode == 0, r.stderr
    pdir = d / "cap.musivid"
    r = musivid("render", pdir, "-o", d / "plain.mp4", "--no-captions", "-q")
    assert r.returncode == 0, r.stderr
    return d, pdir


def captions_match_the_srt(cap, plain, srt, fps) -> list[int]:
    """Asserts that each SRT entry's caption shows on exactly its frames; returns the line each
    frame shows (-1: none)."""
    entries = srt_entries(srt)
    texts = ["first line here", "second line", "third one"]
    assert [e[2] for e in entries] == texts
    shown = caption_line_per_frame(cap, plain, texts, fps)
    print("line per frame:", "".join("." if k < 0 else str(k + 1) for k in shown))
    for k, (start, end, _) in enumerate(entries):
        frames = [i for i, s in enumerate(shown) if s == k]
        assert frames == list(range(round(start * fps), round(end * fps))), (k, frames, start, end)
    return shown


def caption_line_per_frame(cap, plain, texts, fps):
    """Which line each decoded frame shows: -1 when its caption region equals the caption-free
    render's (up to encoding noise); else the line whose drawing on the caption-free frame is
    nearest to it."""
    h, w = cap.shape[1:3]
    finder = FontFinder()
    lays = [layout(t, w, h, finder) for t in texts]
    region = slice(int(h * 0.6), h)
    out = []
    for c, p in zip(cap, plain):
        diff = np.abs(c[region] - p[region]).mean()
        if diff < 2.0:
            out.append(-1)
            continue
        p8 = np.clip(p, 0, 255).astype(np.uint8)
        dist = [np.abs(c[region] - draw_caption(p8, lay).astype(np.int16)[region]).mean() for lay in lays]
        out.append(int(np.argmin(dist)))
    return out


def test_burned_in_captions_match_the_srt_to_the_frame(gap_project):
    d, _ = gap_project
    fps = 25
    cap, plain = decode(d / "cap.mp4"), decode(d / "plain.mp4")
    assert cap.shape == plain.shape and len(cap) == 90
    shown = captions_match_the_srt(cap, plain, d / "cap.srt", fps)
    # the gap after line 1, the intro and the outro show nothing; the truth from the LRC
    assert shown[:10] == [-1] * 10  # 0.37 s -> frame 10 is the first with a caption
    assert all(s == -1 for s in shown[29:41])  # 1.13-1.62 s: the gap
    assert shown[41:61] == [1] * 20 and shown[61:77] == [2] * 16  # 1.62-2.43 s, 2.43-3.05 s back to back
    assert all(s == -1 for s in shown[77:])


WIDE_LRC = """[00:00.40]first line here
[00:01.10]
[00:01.50]second line
[00:02.40]third one
[00:02.90]
"""


@pytest.fixture(scope="module")
def wide_project(tmp_path_factory):
    """`musivid song.wav lyrics.lrc --untrained --aspect 16:9 --size 720 --captions`: a 3.2 s song
    at 8 fps (26 frames of 1280x720), and the project rendered again without captions."""
    d = tmp_path_factory.mktemp("wide")
    sr = 22050
    t = np.arange(int(3.2 * sr)) / sr
    audio = write_audio(d / "song.wav", 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t)), sr)
    lrc = d / "song.lrc"
    lrc.write_text(WIDE_LRC)
    base = ["--untrained", "--cutouts", "2", "--steps", "1", "--fps", "8", "--crf", "12", "--preset", "ultrafast", "-q"]
    r = musivid(audio, lrc, "-o", d / "wide.mp4", "--aspect", "16:9", "--size", "720", "--captions", *base)
    assert r.returncode == 0, r.stderr
    pdir = d / "wide.musivid"
    r = musivid("render", pdir, "-o", d / "plain.mp4", "--no-captions", "-q")  # the project's frame, kept
    assert r.returncode == 0, r.stderr
    return d, pdir


def test_wide_video_golden_metadata_and_captions_match_the_srt_to_the_frame(wide_project):
    """16:9 at --size 720 is 1280x720 H.264 (BT.709) + AAC, frame-exact; `musivid render PROJECT`
    keeps the project's frame; the captions burned into it show each .srt line on exactly its
    frames, laid out for the wide frame."""
    import json

    d, pdir = wide_project
    fps = 8
    with av.open(str(d / "wide.mp4")) as c:
        v, a = c.streams.video[0], c.streams.audio
        cc = v.codec_context
        assert (cc.name, cc.pix_fmt, cc.width, cc.height, v.average_rate) == ("h264", "yuv420p", 1280, 720, fps)
        assert int(cc.colorspace) == 1 and len(a) == 1 and a[0].codec_context.name == "aac"
        vdur, adur = float(v.duration * v.time_base), float(a[0].duration * a[0].time_base)
        assert abs(vdur - 3.25) < 1e-6 and abs(adur - 3.2) < 1 / fps  # 26 frames; the song's 3.2 s
        assert "UNTRAINED" in c.metadata.get("title", "")
    assert json.loads((pdir / "project.json").read_text())["settings"]["render"]["aspect"] == "16:9"
    cap, plain = decode(d / "wide.mp4"), decode(d / "plain.mp4")
    assert cap.shape == plain.shape == (26, 720, 1280, 3)
    shown = captions_match_the_srt(cap, plain, d / "wide.srt", fps)
    assert shown == [-1] * 4 + [0] * 5 + [-1] * 3 + [1] * 8 + [2] * 4 + [-1] * 2  # from the LRC's times


def test_excerpt_captions_are_indexed_in_the_song(gap_project):
    d, pdir = gap_project
    r = musivid("render", pdir, "-o", d / "ex.mp4", "--start", "1.2", "--duration", "1.6", "-q")
    assert r.returncode == 0, r.stderr
    entries = srt_entries(d / "ex.srt")
    # frames 30..70 of the song; line 2 from song frame 41 (1.64 s), line 3 from 61 to 70 (cut)
    assert [(round(a * 25), round(b * 25), t) for a, b, t in entries] == [(11, 31, "second line"), (31, 40, "third one")]


def test_karaoke_highlights_the_word_sung_at_its_time(tmp_path):
    """At the truth time of each word (the middle of its enhanced-LRC span), the decoded frame's
    highlight colour sits in that word's box (boxes from the same layout function the renderer
    uses), words before it are in the 'sung' colour; a line without word times highlights its
    words in order by character count."""
    sr, fps = 22050, 8
    t = np.arange(int(4.5 * sr)) / sr
    audio = write_audio(tmp_path / "song.wav", 0.2 * np.sin(2 * np.pi * 330 * t), sr)
    words = [("red", 0.5, 1.0), ("green", 1.0, 1.7), ("blue", 1.7, 2.2), ("sky", 2.2, 3.0)]
    body = " ".join(f"<00:{a:05.2f}>{w}" for w, a, _ in words) + "<00:03.00>"
    lrc = tmp_path / "k.lrc"
    lrc.write_text(f"[00:00.50]{body}\n[00:03.00]no tags in this line\n")
    base = ["--untrained", "--cutouts", "2", "--steps", "2", "--size", "256", "--crf", "10", "--fps", fps, "-q"]
    r = musivid(audio, lrc, "-o", tmp_path / "k.mp4", "--captions", "karaoke", *base)
    assert r.returncode == 0, r.stderr
    r = musivid("render", tmp_path / "k.musivid", "-o", tmp_path / "p.mp4", "--no-captions", "-q")
    assert r.returncode == 0, r.stderr
    cap, plain = decode(tmp_path / "k.mp4"), decode(tmp_path / "p.mp4")
    finder = FontFinder()

    def colour_counts(i, text):
        lay = layout(text, 256, 256, finder)
        changed = np.abs(cap[i] - plain[i]).sum(-1) > 60  # drawn by the caption, not the picture
        c = cap[i]
        cur = changed & (c[..., 0] > 180) & (c[..., 1] > 120) & (c[..., 2] < 110)
        sung = changed & (c[..., 2] > 180) & (c[..., 2] - c[..., 0] > 50)  # light blue, not white
        boxes = [tuple(int(round(v)) for v in b) for b in lay.boxes]
        return ([int(cur[y0:y1, x0:x1].sum()) for x0, y0, x1, y1 in boxes],
                [int(sung[y0:y1, x0:x1].sum()) for x0, y0, x1, y1 in boxes])

    text = "red green blue sky"
    for k, (w, a, b) in enumerate(words):
        i = round((a + b) / 2 * fps)
        cur, sung = colour_counts(i, text)
        print(w, "current-colour pixels per word box:", cur, "sung:", sung)
        assert int(np.argmax(cur)) == k and cur[k] >= 15, (w, cur)
        assert all(cur[j] < cur[k] / 4 for j in range(len(cur)) if j != k)
        assert all(sung[j] >= 10 for j in range(k)) and all(sung[j] < 5 for j in range(k + 1, len(sung)))
    # no word times: the words share 3.0-4.5 s by character count
    text2 = "no tags in this line"
    seg = Segment(1, text2, 3.0, 4.5)
    starts = unit_times(seg, units(text2))
    for k in range(5):
        end = starts[k + 1] if k + 1 < 5 else 4.5
        i = int(np.ceil(starts[k] * fps))
        if i / fps >= end:
            continue  # a unit shorter than a frame
        cur, _ = colour_counts(i, text2)
        assert int(np.argmax(cur)) == k, (k, cur)
    assert CURRENT[2] < 110  # the colour measured above is the one the renderer uses


def test_caption_track_line_and_word_lookup():
    segs = [Segment(0, "a b", 1.0, 2.0, (Word("a", 1.0, 1.5), Word("b", 1.5, 2.0))), Segment(1, "c", 2.0, 2.5)]
    tr = CaptionTrack(segs, 10, "karaoke")
    assert [tr.line_at(i) for i in (9, 10, 19, 20, 24, 25, 99)] == [-1, 0, 0, 1, 1, -1, -1]
    assert [tr.word_at(i) for i in (10, 14, 15, 19, 20)] == [0, 0, 1, 1, 0]
    with pytest.raises(ValueError):
        CaptionTrack(segs, 10, "bold")


def test_lrc_keeps_the_lyric_text_when_a_timed_word_is_not_in_it(tmp_path):
    seg = Segment(0, "Golden lion walks", 1.0, 3.0, (Word("golden", 1.0, 1.4), Word("line", 1.4, 2.0),
                                                     Word("walks", 2.0, 3.0)))
    p = tmp_path / "a.lrc"
    write_lrc([seg], p)
    assert "[00:01.00]<00:01.00>Golden lion <00:02.00>walks<00:03.00>" in p.read_text()
    assert load(p).lines[0].text == "Golden lion walks"
