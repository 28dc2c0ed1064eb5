"""End-to-end: the CLI on the bundled sample with tiny random models (--untrained)."""
import json
import time

import av
import numpy as np
import pytest

from conftest import SAMPLES, run_cli

FAST = ["--untrained", "--steps", "6", "--cutouts", "4", "--fps", "12", "--size", "64", "--asr", "none"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e") / "demo.mp4"
    t = time.time()
    r = run_cli(str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.lrc"), "-o", str(out), *FAST)
    print(f"CLI run: {time.time() - t:.1f} s\n{r.stderr}")
    assert r.returncode == 0, r.stderr
    return out, r


def test_video_golden_metadata(rendered, sample):
    out, r = rendered
    duration = sample["truth"]["duration"]
    with av.open(str(out)) as c:
        v, a = c.streams.video, c.streams.audio
        assert len(v) == 1 and len(a) == 1
        assert v[0].codec_context.name == "h264" and a[0].codec_context.name == "aac"
        assert v[0].codec_context.pix_fmt == "yuv420p"
        assert (v[0].codec_context.width, v[0].codec_context.height) == (64, 64)
        assert v[0].average_rate == 12
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        vdur = float(v[0].duration * v[0].time_base)
        adur = float(a[0].duration * a[0].time_base)
        assert "UNTRAINED" in c.metadata.get("title", "") and "UNTRAINED" in c.metadata.get("comment", "")
    assert len(frames) == round(duration * 12)
    assert abs(vdur - adur) < 1 / 12 and abs(vdur - duration) < 1 / 12
    # frames between two keyframes differ (the picture glides)
    kfs = json.loads((out.with_name("demo.musivid") / "project.json").read_text())["keyframes"]
    i0, i1 = int(kfs[2]["time"] * 12) + 1, int(kfs[3]["time"] * 12) - 1
    moving = [np.abs(frames[i + 1].astype(int) - frames[i].astype(int)).mean() for i in range(i0, i1)]
    assert sum(m > 0 for m in moving) > len(moving) // 2
    assert "UNTRAINED" in r.stderr  # said in the log too


def test_side_outputs(rendered, sample):
    out, r = rendered
    srt = out.with_suffix(".srt").read_text()
    assert srt.count("-->") == len(sample["truth"]["lines"])
    pdir = out.with_name("demo.musivid")
    assert (pdir / "storyboard.png").stat().st_size > 1000
    data = json.loads((pdir / "project.json").read_text())
    assert len(data["timing"]["segments"]) == 8 and data["untrained"] is True
    assert len(data["latents"]) == 7  # 8 lines, one repeated: 7 distinct texts optimized
    assert "wrote" in r.stdout


def test_help_is_instant():
    t = time.time()
    r = run_cli("--help")
    assert r.returncode == 0 and "music video" in r.stdout
    assert time.time() - t < 3.0


def test_offline_without_weights_fails_fast_and_clearly(tmp_path):
    t = time.time()
    r = run_cli(str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.lrc"), "-o", str(tmp_path / "x.mp4"),
                env={"MUSIVID_OFFLINE": "1", "MUSIVID_CACHE": str(tmp_path / "cache")})
    elapsed = time.time() - t
    assert r.returncode == 2
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert "offline" in lines[0] and "--untrained" in lines[0] and "clip-vit-b-32" in lines[0]
    assert elapsed < 10
    assert not (tmp_path / "x.mp4").exists()


def test_align_writes_lrc_and_srt(tmp_path, sample):
    from musivid.timing import bundled_tiny_en
    from musivid.lyrics import load

    out = tmp_path / "demo.lrc"
    r = run_cli("align", str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.txt"), "-o", str(out), "--srt",
                "--whisper-model", str(bundled_tiny_en()))
    assert r.returncode == 0, r.stderr
    lyr = load(out)
    truth = [l["start"] for l in sample["truth"]["lines"]]
    assert [l.text for l in lyr.lines] == SAMPLES.joinpath("demo.txt").read_text().splitlines()
    assert max(abs(l.time - t) for l, t in zip(lyr.lines, truth)) < 0.3
    assert out.with_suffix(".srt").read_text().count("-->") == 8


def test_plain_lyrics_are_aligned_automatically(tmp_path, sample):
    out = tmp_path / "plain.mp4"
    args = [a for a in FAST if a not in ("--asr", "none")]
    r = run_cli(str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.txt"), "-o", str(out), *args)
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "plain.musivid" / "project.json").read_text())
    assert data["timing"]["method"] == "aligned"
    starts = [s["start"] for s in data["timing"]["segments"]]
    truth = [l["start"] for l in sample["truth"]["lines"]]
    assert max(abs(a - b) for a, b in zip(starts, truth)) < 0.3


def test_models_list_and_fetch_offline(tmp_path):
    env = {"MUSIVID_CACHE": str(tmp_path / "cache")}
    r = run_cli("models", "list", env=env)
    assert r.returncode == 0
    assert "ViT-B-32/openai" in r.stdout and "biggan-deep-256" in r.stdout and str(tmp_path / "cache") in r.stdout
    r = run_cli("models", "fetch", "--offline", "biggan-deep-256", env=env)
    assert r.returncode == 2 and "offline" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("models", "fetch", "no-such-model", env=env)
    assert r.returncode == 2 and "unknown model" in r.stderr


def test_no_lyrics_transcribes_the_song(tmp_path):
    out = tmp_path / "nl.mp4"
    r = run_cli(str(SAMPLES / "demo.mp3"), "-o", str(out), *[a for a in FAST if a not in ("--asr", "none")])
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "nl.musivid" / "project.json").read_text())
    assert data["timing"]["method"] == "transcribed"
    assert "fox" in data["timing"]["segments"][0]["text"].lower()
    assert len(data["chosen"]) == len(data["timing"]["segments"])
