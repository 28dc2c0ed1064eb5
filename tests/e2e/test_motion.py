"""The whole song is a video (issue 17): the picture moves from the first frame to the last, with
the music, and is back on each line's image at its keyframe; a re-render is identical. On
synthetic drum tracks with long gaps before, between and after the lines. Tiny random models, CPU.

Frames are compared on 4x4-pixel means: the tiny models' images are pixel noise, which H.264 does
not keep exactly; their larger structure it keeps."""
import av
import numpy as np
import pytest
import torch

from conftest import drum_track, musivid, write_audio

FPS = 12
# x264's fastest preset: the encoding is not under test here (a re-render keeps the project's preset)
ARGS = ["--untrained", "--steps", "2", "--cutouts", "2", "--fps", str(FPS), "--size", "64", "--asr", "none", "-q",
        "--preset", "ultrafast"]
TRACKS = {
    # the example: lines at 2, 10 and 20 s of a 30 s song (too short an intro for a title)
    "gaps": dict(duration=30.0, music=(0.0, 30.0), lines=[2.0, 10.0, 20.0]),
    # a 4 s silent intro (a title image opens it) and a 10 s outro after the last line
    "silent-intro": dict(duration=30.0, music=(4.0, 30.0), lines=[4.0, 12.0, 20.0]),
}


def decoded_frames(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def pool(frames: np.ndarray) -> np.ndarray:
    """(N, 64, 64, 3) -> (N, 16, 16, 3) 4x4-pixel means."""
    return frames.astype(float).reshape(len(frames), 16, 4, 16, 4, 3).mean(axis=(2, 4))


def change(frames: np.ndarray) -> np.ndarray:
    """(N,) how much each frame differs from the one before (0 for the first)."""
    return np.concatenate([[0.0], np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))])


def windows(d: np.ndarray, seconds: float = 5.0) -> np.ndarray:
    w = int(seconds * FPS)
    return np.array([d[i:i + w].sum() for i in range(0, len(d), w)])


@pytest.fixture(scope="module", params=list(TRACKS))
def song(request, tmp_path_factory):
    spec = TRACKS[request.param]
    d = tmp_path_factory.mktemp(request.param)
    y, beats = drum_track(120, spec["duration"], *spec["music"])
    audio = write_audio(d / "Night Drive.wav", y)
    lrc = d / "lyrics.lrc"
    lrc.write_text("".join(f"[00:{t:05.2f}]line {i + 1} of the song\n" for i, t in enumerate(spec["lines"])))
    out = d / "video.mp4"
    r = musivid(audio, lrc, "-o", out, *ARGS)
    assert r.returncode == 0, r.stderr
    return dict(spec, name=request.param, dir=d, audio=audio, lrc=lrc, out=out, beats=beats,
                project=d / "video.musivid", frames=decoded_frames(out))


def test_every_five_seconds_of_the_video_move(song):
    """The frame-to-frame change summed over each 5 s window is at least 25 % of the median window's."""
    w = windows(change(pool(song["frames"])))
    print(f"{song['name']}: change per 5 s window {np.round(w, 1)}; lowest / median {w.min() / np.median(w):.2f}")
    assert len(song["frames"]) == round(song["duration"] * FPS)
    assert w.min() >= 0.25 * np.median(w)


@pytest.mark.parametrize("song", ["gaps"], indirect=True)
def test_the_pure_glide_of_before_fails_it(song):
    """--reactivity 0 (the glide of before, kept for who wants it) stands still after the last
    line: the criterion above can fail."""
    still = song["dir"] / "glide.mp4"
    r = musivid("render", song["project"], "-o", still, "--reactivity", "0", "-q")
    assert r.returncode == 0, r.stderr
    g = windows(change(pool(decoded_frames(still))))
    print(f"--reactivity 0: {np.round(g, 1)}; lowest / median {g.min() / np.median(g):.2f}")
    assert g.min() < 0.1 * np.median(g)


def test_the_motion_is_on_the_beat(song):
    """Frames on a drum hit change more than frames between hits."""
    d = change(pool(song["frames"]))
    on = np.zeros(len(d), bool)
    beat_frames = np.round(song["beats"] * FPS).astype(int)
    on[beat_frames[beat_frames < len(d)]] = True
    music = np.zeros(len(d), bool)
    music[int(song["music"][0] * FPS) + 1:int(song["music"][1] * FPS)] = True
    ratio = d[on & music].mean() / d[~on & music].mean()
    print(f"{song['name']}: change on beats {d[on & music].mean():.2f}, between {d[~on & music].mean():.2f} "
          f"({ratio:.1f}x)")
    assert ratio > 1.5


@pytest.mark.parametrize("song", ["silent-intro"], indirect=True)  # one track: a render takes a while
def test_a_rerender_is_bit_identical(song):
    again = song["dir"] / "again.mp4"
    r = musivid("render", song["project"], "-o", again, "-q")
    assert r.returncode == 0, r.stderr
    frames = decoded_frames(again)
    assert frames.shape == song["frames"].shape and np.array_equal(frames, song["frames"])


def test_each_line_is_its_own_image_at_its_keyframe(song, tiny_models):
    """The walk returns: at each keyframe's frame the frame source gives exactly the line's
    optimized latent, and the decoded frame is that latent's image (within encoding noise), much
    nearer to it than to any other keyframe's image (the title's too, where it opens the video)."""
    from musivid.pipeline import frame_source, open_project

    _, gen = tiny_models
    job = open_project(song["project"])
    source, chosen = frame_source(job)
    frames = pool(song["frames"])
    kf = source.plan.key_frames
    rows = list(range(len(kf))) + ([len(kf)] if song["name"] == "silent-intro" else [])
    at = list(kf) + [0]  # row K, the title image, opens the video
    title = job.title.prompt if job.title is not None else None
    assert len(job.keyframes) == 3 and (title == "Night Drive") == (song["name"] == "silent-intro")
    for k in rows:
        f = int(at[k])
        z, c = source.latents(f, f + 1)
        lat = chosen[k].latent
        assert torch.equal(z[0], lat.z.float()) and torch.equal(c[0], source.kc[k]), k
        assert torch.allclose(source.kc[k], torch.sigmoid(lat.cls.float()), rtol=1e-6, atol=0)  # (batched sigmoid)
    want = pool(gen.images_uint8(source.kz[rows], source.kc[rows], 1.0, 64))  # each row's own image
    for i, k in enumerate(rows):
        f = int(at[k])
        err = np.abs(frames[f] - want[i]).mean()
        others = [np.abs(frames[f] - want[j]).mean() for j in range(len(rows)) if j != i]
        print(f"{song['name']} keyframe row {k} at frame {f}: error {err:.2f}, other images {np.round(others, 2)}")
        assert err < 2.0 and err < 0.5 * min(others)  # its own image up to yuv420/H.264, not another line's


def test_any_excerpt_is_the_same_frames(song):
    """FrameLatents.latents(lo, hi) for any range equals those frames of the whole song."""
    from musivid.pipeline import frame_source, open_project

    source, _ = frame_source(open_project(song["project"]))
    n = len(source)
    z, c = source.latents(0, n)
    rng = np.random.default_rng(0)
    for lo in [0, n - 1, *rng.integers(0, n - 1, 6)]:
        hi = int(min(n, lo + 1 + rng.integers(0, 40)))
        zz, cc = source.latents(int(lo), hi)
        assert torch.equal(zz, z[lo:hi]) and torch.equal(cc, c[lo:hi]), (lo, hi)
