import numpy as np
import pytest

from conftest import write_audio
from musivid.audio import decode
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
