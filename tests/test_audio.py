import numpy as np
import pytest

from conftest import write_audio
from musivid.song.audio import decode
from musivid.errors import InputError


def test_decodes_the_sample_to_mono_float(sample):
    a = decode(sample["mp3"], 22050)
    assert a.samples.dtype == np.float32 and a.samples.ndim == 1
    assert a.sample_rate == 22050
    assert abs(a.duration - sample["truth"]["duration"]) < 0.05


def test_resamples_and_keeps_duration(tmp_path):
    sr = 16000
    y = 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(2.5 * sr)) / sr)
    p = write_audio(tmp_path / "a.wav", y, sr)
    a = decode(p, 22050)
    assert abs(a.duration - 2.5) < 0.01
    assert 0.2 < np.abs(a.samples).max() <= 0.31


def test_video_file_uses_its_audio_track(tmp_path):
    import av

    p = tmp_path / "v.mp4"
    out = av.open(str(p), "w")
    vs = out.add_stream("libx264", rate=10)
    vs.width = vs.height = 32
    vs.pix_fmt = "yuv420p"
    ast = out.add_stream("aac", rate=22050)
    ast.layout = "mono"
    for i in range(20):
        fr = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 10, np.uint8), format="rgb24")
        fr.pts = i
        for pk in vs.encode(fr):
            out.mux(pk)
    y = (0.3 * np.sin(np.arange(44100) / 10)).astype(np.float32)[None]
    for lo in range(0, y.shape[1], 1024):
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(y[:, lo:lo + 1024]), format="fltp", layout="mono")
        fr.sample_rate = 22050
        fr.pts = lo
        for pk in ast.encode(fr):
            out.mux(pk)
    for s in (vs, ast):
        for pk in s.encode(None):
            out.mux(pk)
    out.close()
    a = decode(p)
    assert 1.9 < a.duration < 2.2


@pytest.mark.parametrize("kind", ["missing", "empty", "text", "truncated", "zero_length", "directory"])
def test_bad_audio_gives_one_clear_line(tmp_path, kind):
    p = tmp_path / "song.mp3"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("this is not audio at all\n" * 50)
    elif kind == "truncated":
        full = write_audio(tmp_path / "full.mp3", 0.2 * np.sin(np.arange(22050 * 3) / 5.0))
        p.write_bytes(full.read_bytes()[:300])
    elif kind == "zero_length":
        p = write_audio(tmp_path / "z.wav", np.zeros(0))
    elif kind == "directory":
        p = tmp_path / "dir.mp3"
        p.mkdir()
    with pytest.raises(InputError) as e:
        decode(p)
    msg = str(e.value)
    assert str(p) in msg and "\n" not in msg


# ---- truncated and partly corrupt files (decoded length against the stated one) --------------------

def _encode(path, codec, *, sr=44100, seconds=6.0, layout="mono", fmt=None, muxer_opts=None, codec_opts=None,
            vbr=None, video=False):
    """A music-like test file (silence, a tone, then noise: VBR encoders vary their bitrate) written
    with PyAV in the given codec and container, optionally with a video track."""
    import av

    t = np.arange(int(seconds * sr)) / sr
    y = (0.3 * np.sin(2 * np.pi * 440 * t) * (t > 1) + 0.2 * np.random.default_rng(0).standard_normal(len(t))
         * (t > 3)).astype(np.float32)
    ch = 1 if layout == "mono" else 2
    out = av.open(str(path), "w", format=fmt, options=muxer_opts or {})
    if video:
        vs = out.add_stream("libx264", rate=10)
        vs.width = vs.height = 32
        vs.pix_fmt = "yuv420p"
    st = out.add_stream(codec, rate=sr, options=codec_opts or {})
    st.layout = layout
    if vbr is not None:
        st.codec_context.flags |= av.codec.context.Flags.qscale
        st.codec_context.qscale = vbr
    s16 = codec in ("pcm_s16le", "flac")
    data = (y * 32767).astype(np.int16)[None] if s16 else np.repeat(y[None], ch, 0)
    for lo in range(0, len(y), 960):
        fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, lo:lo + 960]), format="s16" if s16 else "fltp",
                                        layout=layout)
        fr.sample_rate = sr
        fr.pts = lo
        for p in st.encode(fr):
            out.mux(p)
    for p in st.encode(None):
        out.mux(p)
    if video:
        for i in range(int(seconds * 10)):
            f = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            f.pts = i
            for p in vs.encode(f):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    out.close()
    return path


FORMATS = {  # name: (file name, encoder arguments, whether a cut file still says its full length)
    "mp3 CBR": ("cbr.mp3", dict(codec="libmp3lame"), True),
    "mp3 VBR": ("vbr.mp3", dict(codec="libmp3lame", vbr=4), True),
    # no Xing header: FFmpeg estimates the length from the first frames' bitrate (off by 2x here)
    "mp3 VBR, no header": ("vbr-noxing.mp3", dict(codec="libmp3lame", vbr=4, muxer_opts={"write_xing": "0"}), False),
    "mp3 CBR, no header": ("cbr-noxing.mp3", dict(codec="libmp3lame", muxer_opts={"write_xing": "0"}), False),
    "ogg vorbis": ("a.ogg", dict(codec="vorbis", layout="stereo", codec_opts={"strict": "-2"}), False),
    "ogg opus": ("a.opus", dict(codec="libopus", sr=48000, fmt="ogg"), False),
    "flac": ("a.flac", dict(codec="flac"), True),
    "wav": ("a.wav", dict(codec="pcm_s16le"), True),
    "m4a": ("a.m4a", dict(codec="aac"), None),  # cut: the index at the end is lost, not readable at all
    "aac ADTS": ("a.aac", dict(codec="aac", fmt="adts"), False),  # length estimated from the bitrate
    "mp4 video": ("v.mp4", dict(codec="aac", video=True), None),
    "mkv video": ("v.mkv", dict(codec="aac", video=True), True),
    "webm": ("a.webm", dict(codec="libopus", sr=48000, fmt="webm"), True),
}


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    d = tmp_path_factory.mktemp("formats")
    return {name: _encode(d / fname, **kw) for name, (fname, kw, _) in FORMATS.items()}


@pytest.mark.parametrize("name", FORMATS)
def test_good_files_of_every_format_are_accepted_whole(formats, name):
    """The length check never rejects a good file: encoder delay and padding, a VBR mp3 without a
    header (stated length 2x off), ADTS AAC (estimated) and a video's audio track all pass."""
    a = decode(formats[name])
    assert abs(a.duration - 6.0) < 0.1, a.duration


@pytest.mark.parametrize("name", FORMATS)
def test_a_file_cut_at_half_is_refused_when_its_container_knows_better(formats, name, tmp_path):
    full = formats[name].read_bytes()
    cut = tmp_path / formats[name].name
    cut.write_bytes(full[: len(full) // 2])
    states_length = FORMATS[name][2]
    if states_length is None:  # mp4/m4a with the index at the end: unreadable, one line
        with pytest.raises(InputError, match="not a readable audio file"):
            decode(cut)
    elif states_length:
        with pytest.raises(InputError) as e:
            decode(cut)
        msg = str(e.value)
        assert str(cut) in msg and "truncated or corrupt" in msg and "--accept-truncated" in msg and "\n" not in msg
        assert "the file says 6.0" in msg  # both lengths: decoded ... but the file says 6.00 s
        a = decode(cut, accept_truncated=True)  # accepted on request, as far as it decodes
        assert 1.0 < a.duration < 5.0
    else:  # nothing states another length: a shorter song, used as it is
        assert 1.0 < decode(cut).duration < 5.0


def test_a_truncated_real_length_mp3_is_refused_with_both_lengths(tmp_path, caplog):
    """The case from the field: an mp3 whose header says 52 s, cut after 0.78 s."""
    full = _encode(tmp_path / "song.mp3", "libmp3lame", seconds=52.0)
    assert abs(decode(full).duration - 52.0) < 0.05
    data = full.read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: int(len(data) * 0.78 / 52)])
    with pytest.raises(InputError) as e:
        decode(cut)
    msg = str(e.value)
    print(msg)
    assert f"{cut}: truncated or corrupt audio (decoded 0.7" in msg and "the file says 52.0" in msg
    with caplog.at_level("WARNING", logger="musivid"):
        a = decode(cut, accept_truncated=True)
    assert 0.5 < a.duration < 1.0
    assert "--accept-truncated" in caplog.text and "52.0" in caplog.text


def test_corrupt_packets_in_the_middle_are_counted_and_refused(tmp_path):
    """FLAC frames overwritten with garbage in the middle: the lost stretch is measured (and kept as
    silence, so what follows stays in time); more than a quarter second of it is an error."""
    full = _encode(tmp_path / "a.flac", "flac")
    data = bytearray(full.read_bytes())
    lo = len(data) // 2
    data[lo:lo + len(data) // 5] = np.random.default_rng(1).integers(0, 256, len(data) // 5, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.flac"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="truncated or corrupt") as e:
        decode(bad)
    print(e.value)
    a = decode(bad, accept_truncated=True)
    assert a.duration > 4.0


def test_decoding_leaves_ffmpeg_logging_as_it_was(formats):
    import av.logging

    before = av.logging.get_level()
    decode(formats["aac ADTS"])
    assert av.logging.get_level() == before
