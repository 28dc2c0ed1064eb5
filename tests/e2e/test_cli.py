"""End-to-end: the CLI on the bundled sample with tiny random models (--untrained), in-process
except where the process itself is what is tested."""
import json

import av
import numpy as np
import pytest

from conftest import SAMPLES, demo_excerpt, musivid, no_network, run_cli

FAST = ["--untrained", "--steps", "6", "--cutouts", "4", "--fps", "12", "--size", "64", "--asr", "none"]
# where only the timing of the lines is checked: the fewest steps and frames that still run every stage
LIGHT = ["--untrained", "--steps", "1", "--cutouts", "2", "--fps", "2", "--size", "32"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """The console entry point in a fresh process, once: the installed command works end to end."""
    out = tmp_path_factory.mktemp("e2e") / "demo.mp4"
    r = run_cli(str(SAMPLES / "demo.mp3"), str(SAMPLES / "demo.lrc"), "-o", str(out), *FAST)
    print(r.stderr)
    assert r.returncode == 0, r.stderr
    return out, r


def decoded_frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


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
        vdur = float(v[0].duration * v[0].time_base)
        adur = float(a[0].duration * a[0].time_base)
        assert "UNTRAINED" in c.metadata.get("title", "") and "UNTRAINED" in c.metadata.get("comment", "")
    frames = decoded_frames(out)
    assert len(frames) == round(duration * 12)
    assert abs(vdur - adur) < 1 / 12 and abs(vdur - duration) < 1 / 12
    assert "UNTRAINED" in r.stderr  # said in the log too


def test_tall_video_golden_metadata(tmp_path):
    """`--aspect 9:16 --size 720` is a 720x1280 video (a 1-second excerpt here): golden metadata,
    the project keeps the frame, and the untrained preview says so in its picture (its mark's
    corner, top-left, is the mark's dark box, not the picture)."""
    from musivid.video.frame import untrained_mark

    song = demo_excerpt(tmp_path / "song.wav", 12.0, 3.0)
    out = tmp_path / "tall.mp4"
    r = musivid(song, song.with_suffix(".lrc"), "-o", out, "--untrained", "--steps", "1", "--cutouts", "2",
                "--fps", "8", "--asr", "none", "--aspect", "9:16", "--size", "720", "--preset", "ultrafast",
                "--captions", "--start", "1", "--duration", "1", "-q")
    assert r.returncode == 0, r.stderr
    with av.open(str(out)) as c:
        v, a = c.streams.video, c.streams.audio
        assert len(v) == 1 and len(a) == 1 and a[0].codec_context.name == "aac"
        cc = v[0].codec_context
        assert (cc.name, cc.pix_fmt, cc.width, cc.height, v[0].average_rate) == ("h264", "yuv420p", 720, 1280, 8)
        vdur, adur = float(v[0].duration * v[0].time_base), float(a[0].duration * a[0].time_base)
        assert "UNTRAINED" in c.metadata.get("title", "")
    frames = decoded_frames(out)
    assert len(frames) == 8 and abs(vdur - 1.0) < 1e-6 and abs(adur - 1.0) < 1 / 8
    x0, y0, x1, y1 = untrained_mark(720, 1280).box
    box = np.stack(frames)[:, y0:y1, x0:x1].astype(float)
    assert box.std(axis=(1, 2, 3)).min() > 30  # white words on a dark box in every frame
    data = json.loads((tmp_path / "tall.musivid" / "project.json").read_text())
    assert (data["settings"]["render"]["aspect"], data["settings"]["render"]["size"]) == ("9:16", 720)


def test_keyframes_show_their_images_and_the_picture_glides(rendered, tiny_models):
    """At each keyframe the frame is the chosen latent's image (up to H.264), and halfway to the
    next keyframe the picture is between the two: farther from both than the encoding error.
    Compared on 4x4-pixel means: the tiny models' images are pixel noise, which H.264 at crf 20
    does not keep exactly; their larger structure it keeps."""
    import torch

    from musivid.project import Project, latent_key, latent_settings

    out, _ = rendered
    _, gen = tiny_models
    def pool(x):  # (..., 64, 64, 3) -> (..., 16, 16, 3)
        return x.reshape(*x.shape[:-3], 16, 4, 16, 4, 3).mean(axis=(-4, -2))

    frames = pool(np.stack([f.astype(float) for f in decoded_frames(out)]))
    p = Project.open(out.with_name("demo.musivid"))
    s = p.settings
    lkey = latent_settings(s.optimize, s.models)
    chosen = {c.segment: c.variant for c in p.chosen()}
    kfs, segs = p.keyframes(), p.segments()
    lat = [p.load_latent(latent_key(lkey, segs[k.segment].text, chosen[k.segment])) for k in kfs]
    want = gen.images_uint8(torch.stack([x.z for x in lat]), torch.sigmoid(torch.stack([x.cls for x in lat])),
                            s.optimize.truncation, 64).astype(float)  # (K, 64, 64, 3)
    want = pool(want)
    at = [int(np.ceil(k.time * 12 - 1e-9)) for k in kfs]
    err = [np.abs(frames[f] - w).mean() for f, w in zip(at, want)]
    print("encoding error at keyframes:", np.round(err, 2))
    for k in range(len(kfs)):
        others = [np.abs(frames[at[k]] - w).mean() for j, w in enumerate(want) if np.abs(w - want[k]).mean() > 0]
        assert err[k] < 0.5 * min(others), k  # the keyframe's own image, not another line's
    for k in range(len(kfs) - 1):
        dist = np.abs(want[k + 1] - want[k]).mean()
        if dist == 0:
            continue  # the same line twice (the repeated chorus): nothing to glide
        mid = frames[(at[k] + at[k + 1]) // 2]
        away = min(np.abs(mid - want[k]).mean(), np.abs(mid - want[k + 1]).mean())
        print(f"keyframes {k + 1}-{k + 2}: images {dist:.2f} apart, midway frame {away:.2f} from the nearer")
        assert 1.5 * max(err) < away < dist  # in between: moving, not holding either end


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


HEAVY = ("torch", "numpy", "librosa", "open_clip", "av", "faster_whisper", "PIL", "ray")


def test_help_is_instant_and_shows_the_main_options():
    """Instant: `--help` in a fresh process imports none of the heavy libraries (torch alone takes
    seconds to import); what it costs in seconds is a benchmark's business, not a test's."""
    import subprocess
    import sys

    code = ("import runpy, sys\nsys.argv = ['musivid', '--help']\ntry:\n    runpy.run_module('musivid', "
            "run_name='__main__')\nexcept SystemExit:\n    pass\nprint('IMPORTED', sorted({m.split('.')[0] for m in "
            f"sys.modules}} & set({HEAVY!r})))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "music video" in r.stdout, r.stderr
    assert r.stdout.splitlines()[-1] == "IMPORTED []", r.stdout.splitlines()[-1]
    for opt in ("--variants", "--steps", "--captions", "--font", "--device", "--crf", "--start", "--duration", "--overwrite",
                "--untrained", "--offline", "--whisper-model"):
        assert opt in r.stdout, opt
    assert "render" in r.stdout and "variants" in r.stdout  # the commands too


def test_a_mistyped_command_is_a_usage_error_with_a_suggestion(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    tried = no_network(monkeypatch)
    r = musivid("rendr", "x")
    assert r.returncode == 2 and "No such command 'rendr'" in r.stderr and "Did you mean 'render'" in r.stderr
    assert "download" not in r.stderr and tried == []
    r = musivid("--device", "tpu", "song.mp3")
    assert r.returncode == 2 and "tpu" in r.stderr and "auto" in r.stderr  # click.Choice lists the choices
    r = musivid("align", "--asr", "vosk", "song.mp3", "-o", "x.lrc")
    assert r.returncode == 2 and "vosk" in r.stderr
    r = musivid("--captions", "song.mp3")  # the option's optional value swallowed the file name
    assert r.returncode == 2 and "put --captions after the files" in r.stderr
    r = musivid("render", "p.musivid", "--captions", "karaoke", "--no-captions")
    assert r.returncode == 2 and "exclude each other" in r.stderr
    r = musivid("song.mp3", "--font", "nope.ttf")
    assert r.returncode == 2 and "nope.ttf" in r.stderr


def test_offline_without_weights_fails_fast_and_clearly(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSIVID_OFFLINE", "1")
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path / "cache"))
    tried = no_network(monkeypatch)  # fast: nothing is fetched, not even tried
    r = musivid(SAMPLES / "demo.mp3", SAMPLES / "demo.lrc", "-o", tmp_path / "x.mp4")
    assert r.returncode == 1  # a run that cannot be done, not a usage error
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    assert "offline" in lines[0] and "--untrained" in lines[0] and "clip-vit-b-32" in lines[0]
    assert tried == []
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "x.musivid").exists()


def test_missing_audio_is_reported_before_any_weight_is_fetched(tmp_path, monkeypatch):
    """No cached weights, network allowed: the missing input is found first, nothing is fetched."""
    from musivid.images.models import registry

    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MUSIVID_OFFLINE", raising=False)
    calls = []
    monkeypatch.setattr(registry, "resolve_file", lambda *a, **k: calls.append(a) or pytest.fail("fetched"))
    r = musivid(tmp_path / "nosuch.mp3", SAMPLES / "demo.lrc", "-o", tmp_path / "x.mp4")
    assert r.returncode == 2 and "nosuch.mp3: no such file" in r.stderr and not calls
    assert not (tmp_path / "cache").exists()


def test_align_writes_lrc_and_srt(tmp_path, sample):
    from musivid.song.lyrics import load
    from musivid.song.timing import bundled_tiny_en

    out = tmp_path / "demo.lrc"
    r = musivid("align", SAMPLES / "demo.mp3", SAMPLES / "demo.txt", "-o", out, "--srt",
                "--whisper-model", bundled_tiny_en())
    assert r.returncode == 0, r.stderr
    lyr = load(out)
    truth = [l["start"] for l in sample["truth"]["lines"]]
    assert [l.text for l in lyr.lines] == SAMPLES.joinpath("demo.txt").read_text().splitlines()
    assert max(abs(l.time - t) for l, t in zip(lyr.lines, truth)) < 0.3
    assert out.with_suffix(".srt").read_text().count("-->") == 8
    again = musivid("align", SAMPLES / "demo.mp3", SAMPLES / "demo.txt", "-o", out)
    assert again.returncode == 2 and "exists" in again.stderr and "--overwrite" in again.stderr
    r = musivid("align", SAMPLES / "demo.mp3", SAMPLES / "demo.lrc", "-o", SAMPLES / "demo.lrc", "-y")
    assert r.returncode == 2 and "is an input" in r.stderr  # never over an input, even with -y


def test_align_offline_with_an_empty_cache_answers_in_seconds(tmp_path, monkeypatch):
    """--offline reaches Whisper: no download is tried. Without a cached model the installed
    multilingual base (musivid[asr-offline], a test dependency) is used and said; with
    --whisper-model NAME it is a clear one-line error."""
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    tried = no_network(monkeypatch)
    r = musivid("align", SAMPLES / "demo.mp3", SAMPLES / "demo.txt", "-o", tmp_path / "a.lrc", "--offline",
                "--whisper-model", "medium")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert "--whisper-model medium" in r.stderr and "offline" in r.stderr
    r = musivid("align", SAMPLES / "demo.mp3", SAMPLES / "demo.txt", "-o", tmp_path / "b.lrc", "--offline")
    assert r.returncode == 0 and "offline" in r.stderr, r.stderr
    assert "multilingual base installed with musivid[asr-offline]" in r.stderr, r.stderr
    assert tried == []  # in seconds: no host was even asked
    hub = [p for p in (tmp_path / "cache").rglob("*.bin") if "installed-base" not in str(p)]  # joined, not fetched
    assert hub == [], hub


def test_plain_lyrics_are_aligned_automatically(tmp_path, sample):
    out = tmp_path / "plain.mp4"
    r = musivid(SAMPLES / "demo.mp3", SAMPLES / "demo.txt", "-o", out, *LIGHT)
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "plain.musivid" / "project.json").read_text())
    assert data["timing"]["method"] == "aligned"
    starts = [s["start"] for s in data["timing"]["segments"]]
    truth = [l["start"] for l in sample["truth"]["lines"]]
    assert max(abs(a - b) for a, b in zip(starts, truth)) < 0.3


def test_models_list_and_fetch_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path / "cache"))
    r = musivid("models", "list")
    assert r.returncode == 0
    assert "ViT-B-32/openai" in r.stdout and "biggan-deep-256" in r.stdout and str(tmp_path / "cache") in r.stdout
    r = musivid("models", "fetch", "--offline", "biggan-deep-256")
    assert r.returncode == 1 and "offline" in r.stderr and "Traceback" not in r.stderr
    r = musivid("models", "fetch", "no-such-model")
    assert r.returncode == 1 and "unknown model" in r.stderr


def test_no_lyrics_transcribes_the_song(tmp_path, tiny_en):
    out = tmp_path / "nl.mp4"  # the English tiny.en: the default's fallbacks are test_whisper_models' business
    r = musivid(SAMPLES / "demo.mp3", "-o", out, *LIGHT, "--whisper-model", tiny_en)
    assert r.returncode == 0, r.stderr
    data = json.loads((tmp_path / "nl.musivid" / "project.json").read_text())
    assert data["timing"]["method"] == "transcribed"
    assert "fox" in data["timing"]["segments"][0]["text"].lower()
    assert len(data["chosen"]) == len(data["timing"]["segments"])


def test_verbose_shows_stage_timings_and_quiet_shows_none(tmp_path):
    song = demo_excerpt(tmp_path / "song.wav", 12.0, 9.5)  # 3 lines: messages do not depend on length
    args = [song, song.with_suffix(".lrc"), "-o", tmp_path / "v.mp4", *LIGHT, "--asr", "none"]
    r = musivid(*args, "-v")
    assert r.returncode == 0, r.stderr
    timings = next(l for l in r.stderr.splitlines() if l.startswith("musivid: timings:"))
    for stage in ("decode", "rhythm", "optimize", "render"):
        assert f" {stage} " in timings, timings
    assert "analysing the beat" in r.stderr and "rendering" in r.stderr  # long stages say so
    assert r.stderr.count("warning: UNTRAINED") == 1  # a warning once, with the prefix
    q = musivid(*args, "-q")
    assert q.returncode == 0 and q.stderr.count("\n") == 1 and "UNTRAINED" in q.stderr  # the warning only
