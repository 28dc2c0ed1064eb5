"""Beyond one device, on a local Ray instance (CPU only, tiny random models, short songs):
sharding a song over 2 workers equals one device bit for bit, `musivid batch` makes an album with
a bad file in it, a re-run optimizes nothing new, and a worker killed with SIGKILL costs only its
steps since its last checkpoint. Ray starts once for the module, with 2 CPUs and no dashboard."""
import json
import os
import signal
import threading
import time
from pathlib import Path

import av
import pytest
import torch

from conftest import demo_excerpt, musivid

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'musivid[ray]'")

FAST = ["--untrained", "--cutouts", "4", "--fps", "6", "--size", "64", "--asr", "none", "--device", "cpu"]
CLIP_S = 9.5  # 3 lines each


@pytest.fixture(scope="module", autouse=True)
def local_ray(tmp_path_factory):
    from musivid.scale.workers import LOCAL_RAY

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _system_config=LOCAL_RAY)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def album(tmp_path_factory):
    """Two 9.5-second songs cut from the demo, with their LRC beside them, and a bad file."""
    d = tmp_path_factory.mktemp("album")
    demo_excerpt(d / "first.wav", 0.0, CLIP_S)
    demo_excerpt(d / "second.wav", 12.0, CLIP_S)
    (d / "broken.mp3").write_text("this is not audio")
    return d


def latents(pdir: Path) -> dict[str, dict]:
    data = json.loads((pdir / "project.json").read_text())
    return {k: torch.load(pdir / "latents" / f"{k}.pt", weights_only=True) for k in data["latents"]}


def assert_bit_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys() and a
    for k in a:
        assert torch.equal(a[k]["z"], b[k]["z"]), k
        assert torch.equal(a[k]["cls"], b[k]["cls"]), k
        assert a[k]["score"] == b[k]["score"], k


def test_sharded_over_two_ray_workers_equals_one_device_bit_for_bit(album, tmp_path):
    """3 lines in micro-batches of 1 over 2 workers (2 micro-batches on the first); the one-device
    run computes the same micro-batches in one process. Latents and scores equal to the last bit.
    (The default micro-batch when sharding is checked in the SIGKILL test below.)"""
    song = [album / "first.wav", album / "first.lrc", *FAST, "--steps", "5", "--micro-batch", "1"]
    one = musivid(*song, "-o", tmp_path / "one.mp4", "-q")
    assert one.returncode == 0, one.stderr
    two = musivid(*song, "-o", tmp_path / "two.mp4", "--gpus", "2")
    assert two.returncode == 0, two.stderr
    assert "no GPU is used (--device cpu): 2 CPU worker processes instead" in two.stderr
    assert "over 2 CPU worker(s) (ray), micro-batches of 1" in two.stderr
    a, b = latents(tmp_path / "one.musivid"), latents(tmp_path / "two.musivid")
    assert len(a) == 3
    assert_bit_identical(a, b)
    assert not list((tmp_path / "two.musivid").glob("checkpoints/shard-*.pt"))  # gathered, then cleared


def test_a_ray_worker_computes_with_the_one_device_thread_count():
    """Why Ray workers once differed from one device in the last bits (Intel Xeon): Ray starts its
    workers with OMP_NUM_THREADS=1 and runs tasks in a thread other than the one that set torch's
    thread count, so a kernel made there saw 1 OpenMP thread where the one-device run saw 2, and
    split its sums another way. The task's own thread must see the spec's count before any op."""
    from musivid.config import ModelConfig
    from musivid.scale.workers import Pool, WorkerSpec

    def omp_threads(host, emit):  # OpenMP's own count in the task's thread, before any torch op
        import ctypes
        import glob

        libs = glob.glob(os.path.join(os.path.dirname(torch.__file__), "lib", "libgomp*"))
        return ctypes.CDLL(libs[0]).omp_get_max_threads() if libs else None

    if omp_threads(None, None) is None:
        pytest.skip("this torch build has no libgomp to ask")
    with Pool(WorkerSpec(ModelConfig(untrained=True), "cpu", False, threads=3), 1, "ray") as pool:
        assert pool.submit(0, omp_threads).result(timeout=300) == 3
        # and at the driver's priority: Ray's default niceness (15) starves workers on a busy machine
        assert pool.submit(0, lambda host, emit: os.nice(0)).result(timeout=300) == os.nice(0)


def test_batch_makes_the_album_reports_the_bad_file_and_a_rerun_does_nothing_new(album, tmp_path):
    out = tmp_path / "out"
    direction = ("--style", "oil painting", "--classes", "seashore")  # a rerun knows what the images were made for
    r = musivid("batch", album, "-o", out, *FAST, "--steps", "4", "--workers", "2", *direction)
    assert r.returncode == 1, r.stderr
    for name in ("first", "second"):
        with av.open(str(out / f"{name}.mp4")) as c:
            assert c.streams.video[0].frames == round(CLIP_S * 6) and len(c.streams.audio) == 1
        assert (out / f"{name}.srt").is_file() and (out / f"{name}.musivid" / "project.json").is_file()
    assert not (out / "broken.mp4").exists()
    table = r.stdout.splitlines()
    assert table[0].split()[:5] == ["song", "status", "lines", "seconds", "output"]
    row = {line.split()[0]: line for line in table[1:-1]}
    assert row["first"].split()[1:3] == ["done", "3"] and str(out / "first.mp4") in row["first"]
    assert row["broken"].split()[1] == "failed" and "broken.mp3" in row["broken"]
    assert table[-1] == "2/3 songs done, 1 failed"
    # progress: one line per song and stage, with the overall count
    assert "musivid: first: optimizing" in r.stderr and "/3 done]" in r.stderr
    assert "musivid: error: 1 song(s) failed: broken" in r.stderr

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    again = musivid("batch", album, "-o", out, *FAST, "--steps", "4", "--workers", "2", *direction)
    assert again.returncode == 1
    row = {line.split()[0]: line.split() for line in again.stdout.splitlines()[1:-1]}
    assert row["first"][1] == row["second"][1] == "skipped" and row["broken"][1] == "failed"
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing optimized, rendered or even rewritten

    # other settings are another run: a song is not "finished" for them. --no-ray: one song at
    # a time in this process, which loads the models once for both songs
    more = musivid("batch", album / "first.wav", album / "second.wav", "-o", out, *FAST, "--steps", "5", "--no-ray",
                   *direction)
    assert more.returncode == 0, more.stderr
    assert [line.split()[1] for line in more.stdout.splitlines()[1:3]] == ["done", "done"]
    assert more.stderr.count(": loading CLIP") == 1 and more.stderr.count(": loading BigGAN") == 1
    for name in ("first", "second"):
        assert all(v["steps"] == 5 for v in latents(out / f"{name}.musivid").values())


def _wait_for(cond, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.slow  # ~20-45 s: `make test-all` (the suite must stay under 5 minutes on 2 cores)
def test_a_killed_shard_worker_loses_at_most_its_checkpoint_interval(album, tmp_path):
    """SIGKILL one of two workers mid-run: the run fails with a clear message, the other shard is
    saved, and the re-run resumes the killed shard from its last checkpoint and ends bit-identical
    to an uninterrupted run."""
    from musivid.config import ModelConfig, OptimizeConfig, RenderConfig, RunSettings, TimingConfig
    from musivid.errors import MusividError
    from musivid.pipeline import make_video
    from musivid.scale.shard import Sharder
    from musivid.scale.workers import open_pool

    steps = 40
    args = [album / "second.wav", album / "second.lrc", *FAST, "--steps", str(steps)]
    # sharding 3 latents over 2 workers makes micro-batches of ceil(3 / 2) = 2: [0, 2) and [2, 3)
    ref = musivid(*args, "--micro-batch", "2", "-o", tmp_path / "ref.mp4", "-q")
    assert ref.returncode == 0, ref.stderr

    settings = RunSettings(optimize=OptimizeConfig(steps=steps, cutouts=4, checkpoint_every_s=0.05),
                           render=RenderConfig(fps=6, size=64), models=ModelConfig(untrained=True),
                           timing=TimingConfig(asr="none"), device="cpu")
    pdir = tmp_path / "run.musivid"
    with open_pool(settings.models, "cpu", workers=2) as pool:
        pids = pool.pids()
        box = {}

        def run():
            try:
                make_video(album / "second.wav", album / "second.lrc", tmp_path / "run.mp4", settings,
                           runner=Sharder(pool))
            except MusividError as e:
                box["error"] = e

        t = threading.Thread(target=run)
        t.start()
        _wait_for(lambda: len(list(pdir.glob("checkpoints/shard-*.pt"))) == 2)
        os.kill(pids[1], signal.SIGKILL)
        t.join()  # the other shard finishes first
    assert "shard(s) failed (shard 2: worker 2 (Ray actor) died" in str(box["error"])
    assert "run the same command again to resume" in str(box["error"])
    left = list(pdir.glob("checkpoints/shard-*.pt"))
    assert len(left) == 1  # shard 1 finished and was saved; shard 2's checkpoint is kept
    kept = torch.load(left[0], weights_only=True)["state"]["step"]
    assert 0 < kept < steps
    assert len(latents(pdir)) == 2  # shard 1's latents (a whole micro-batch of 2)

    again = musivid(*args, "-o", tmp_path / "run.mp4", "--workers", "2", "--checkpoint-every", "0.05")
    # the one pending latent alone: micro-batch ceil(1 / 2) = 1, the shape of its micro-batch before
    assert again.returncode == 0, again.stderr
    assert f"resuming 1 latent(s) from a checkpoint at step {kept}/{steps}" in again.stderr
    assert_bit_identical(latents(tmp_path / "ref.musivid"), latents(pdir))
    assert (tmp_path / "run.mp4").is_file() and not list(pdir.glob("checkpoints/shard-*.pt"))


@pytest.mark.slow  # ~20-45 s: `make test-all` (the suite must stay under 5 minutes on 2 cores)
def test_a_killed_batch_worker_fails_its_song_only_and_the_rerun_resumes_it(album, tmp_path):
    """SIGKILL the worker making one song: that song fails, the other finishes, and the re-run
    resumes the killed song from its project's checkpoint (said with -v: workers' messages are
    relayed, prefixed with the song)."""
    from musivid.scale.batch import find_songs, run_batch
    from musivid.config import ModelConfig, OptimizeConfig, RenderConfig, RunSettings, TimingConfig
    from musivid.scale.workers import open_pool

    steps = 40
    settings = RunSettings(optimize=OptimizeConfig(steps=steps, cutouts=4, checkpoint_every_s=0.05),
                           render=RenderConfig(fps=6, size=64), models=ModelConfig(untrained=True),
                           timing=TimingConfig(asr="none"), device="cpu")
    songs = find_songs([album / "first.wav", album / "second.wav"])
    out = tmp_path / "out"
    with open_pool(settings.models, "cpu", workers=2, exact=False) as pool:
        pids = pool.pids()
        box = {}
        t = threading.Thread(target=lambda: box.update(res=run_batch(songs, out, settings, pool)))
        t.start()
        ck = out / "first.musivid" / "checkpoint.pt"
        _wait_for(ck.exists)
        # the worker holding "first": the first song goes to worker 1
        os.kill(pids[0], signal.SIGKILL)
        t.join()  # the other song finishes first
    first, second = box["res"]
    assert first.status == "failed" and "died" in first.error
    assert second.status == "done" and (out / "second.mp4").is_file()
    kept = torch.load(ck, weights_only=True)["state"]["step"]
    assert 0 < kept < steps

    r = musivid("batch", album / "first.wav", album / "second.wav", "-o", out, *FAST, "--steps", str(steps),
                "--checkpoint-every", "0.05", "--workers", "2", "-v")
    assert r.returncode == 0, r.stderr + r.stdout
    rows = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()[1:-1]}
    assert rows == {"first": "done", "second": "skipped"}
    assert f"musivid: first: resuming from checkpoint at step {kept}/{steps}" in r.stderr
    assert all(v["steps"] == steps for v in latents(out / "first.musivid").values())
