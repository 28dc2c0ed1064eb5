"""Units of the scale-out (no Ray needed): shards of whole micro-batches, resuming from shard
checkpoints, finding an album's songs, the batch summary, pool options, and the worker pool's
inline and local-process backends (results, relayed events, errors, a killed worker)."""
import logging
import os
import signal
import threading
import time

import pytest
import torch

from conftest import demo_excerpt, run_cli
from musivid.scale.batch import SongResult, find_songs, summary
from musivid.config import ModelConfig, OptimizeConfig, RunSettings
from musivid.errors import InputError, MusividError
from musivid.images.optimize import OptimState
from musivid.project import Checkpoint
from musivid.scale.shard import resume_rows, split
from musivid.scale.workers import LogEvent, Pool, WorkerDied, WorkerSpec, open_pool

SPEC = WorkerSpec(ModelConfig(untrained=True), "cpu", False, 1)


@pytest.mark.parametrize("n, workers, micro, expect", [
    (7, 2, 4, [(0, 4), (4, 7)]),
    (7, 2, 1, [(0, 4), (4, 7)]),
    (7, 3, 2, [(0, 4), (4, 6), (6, 7)]),  # 4 blocks over 3 shards: the first takes the extra one
    (3, 4, 2, [(0, 2), (2, 3)]),  # fewer blocks than workers: one block each
    (5, 1, 2, [(0, 5)]),
    (1, 2, 1, [(0, 1)]),
    (0, 2, 1, []),
])
def test_shards_are_contiguous_runs_of_whole_micro_batches(n, workers, micro, expect):
    got = split(n, workers, micro)
    assert [(r.start, r.stop) for r in got] == expect
    for r in got[:-1]:
        assert r.stop % micro == 0  # a shard ends on a micro-batch boundary (except the last)


def _state(step: int, rows: int, value: float) -> OptimState:
    t = torch.full((rows, 2), value)
    return OptimState(torch.arange(rows), t.clone(), t.clone(), t.clone(), t.clone(), torch.full((rows,), value), step)


def test_resume_takes_each_latents_newest_checkpoint_row_past_the_start():
    cks = [Checkpoint(["a", "b"], _state(10, 2, 1.0)), Checkpoint(["b", "c"], _state(30, 2, 2.0)),
           Checkpoint(["d"], _state(5, 1, 3.0))]
    rows = resume_rows(cks, {"a", "b", "c", "d", "e"}, after=5)
    assert sorted(rows) == ["a", "b", "c"]  # d's checkpoint is not past the start; e has none
    assert rows["a"].step == 10 and rows["b"].step == 30 and float(rows["b"].z[0, 0]) == 2.0
    assert rows["b"].z.shape == (1, 2)


def test_find_songs_pairs_audio_with_its_lyrics(tmp_path):
    for name in ("b.mp3", "a.wav", "a.lrc", "a.txt", "b.txt", "c.flac", "notes.md", ".hidden.mp3"):
        (tmp_path / name).write_text("x")
    songs = find_songs([tmp_path])
    assert [(s.name, s.lyrics.name if s.lyrics else None) for s in songs] == [
        ("a", "a.lrc"), ("b", "b.txt"), ("c", None)]  # .lrc before .txt; none: transcribed
    assert find_songs([tmp_path / "c.flac", tmp_path])[0].name == "c"  # given twice: once


def test_find_songs_refuses_what_cannot_work(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no audio file"):
        find_songs([tmp_path / "empty"])
    with pytest.raises(InputError, match="no such file"):
        find_songs([tmp_path / "nope.mp3"])
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "song.mp3").write_text("1")
    (tmp_path / "song.wav").write_text("2")
    with pytest.raises(InputError, match="would both write song.mp4"):
        find_songs([tmp_path / "x", tmp_path / "song.wav"])


def test_summary_table(tmp_path):
    text = summary([SongResult("one", "done", 12, 81.25, tmp_path / "one.mp4"),
                    SongResult("two", "skipped", 9, 0.0, tmp_path / "two.mp4"),
                    SongResult("bad", "failed", 0, 0.4, None, "bad.mp3: not an audio file")])
    lines = text.splitlines()
    assert lines[0].split() == ["song", "status", "lines", "seconds", "output"]
    assert lines[1].split() == ["one", "done", "12", "81.2", str(tmp_path / "one.mp4")]
    assert lines[2].split()[:4] == ["two", "skipped", "9", "-"]
    assert lines[3].split()[:4] == ["bad", "failed", "-", "0.4"] and lines[3].endswith("bad.mp3: not an audio file")
    assert lines[-1] == "2/3 songs done, 1 failed"


def test_a_finished_song_is_one_made_with_the_same_settings_wherever_it_ran():
    from musivid.project import settings_digest# what batch.finished compares

    a = RunSettings(optimize=OptimizeConfig(steps=5), device="cuda")
    same = RunSettings(optimize=OptimizeConfig(steps=5, checkpoint_every_s=1, micro_batch=2, compile=True), device="cpu")
    assert settings_digest(a) == settings_digest(same)
    assert settings_digest(a) != settings_digest(RunSettings(optimize=OptimizeConfig(steps=6)))


def test_pool_options_that_exclude_each_other_or_cannot_be_met():
    with pytest.raises(InputError, match="--gpus and --workers exclude each other"):
        open_pool(SPEC.models, "cpu", gpus=2, workers=2, use_ray=False)
    with pytest.raises(InputError, match="--ray-address and --no-ray"):
        open_pool(SPEC.models, "cpu", ray_address="auto", use_ray=False)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="--gpus all: no GPU is visible"):
            open_pool(SPEC.models, "auto", gpus="all", use_ray=False)


# ---- tasks for the pool tests (module level: workers import them by name) -----------------------

def task_echo(host, emit, x):
    logging.getLogger("musivid.test").warning("working on %s", x)
    emit(("step", x))
    return x * 2, os.getpid(), host.device.type


def task_fail(host, emit):
    raise InputError("bad.mp3: not audio")


def task_sleep(host, emit, secs):
    emit(("sleeping", os.getpid()))  # the driver kills this worker once the task runs
    time.sleep(secs)
    return "slept"


def test_inline_pool_runs_tasks_here_and_passes_events_and_errors():
    events = []
    with Pool(SPEC, 1, "inline", on_event=lambda i, ev: events.append((i, ev))) as pool:
        assert pool.submit(0, task_echo, 21).result() == (42, os.getpid(), "cpu")
        with pytest.raises(InputError, match="bad.mp3"):
            pool.submit(0, task_fail).result()
    assert events == [(0, ("step", 21))]  # inline: logs go to this process's handlers directly


def test_process_pool_relays_logs_and_replaces_a_killed_worker(caplog):
    events = []
    sleeping = threading.Event()

    def on_event(i, ev):
        events.append((i, ev))
        if isinstance(ev, tuple) and ev[0] == "sleeping":
            sleeping.set()

    with Pool(SPEC, 2, "process", on_event=on_event) as pool:
        pids = pool.pids()
        assert len(set(pids)) == 2 and os.getpid() not in pids
        futures = [pool.submit(i, task_echo, i + 1) for i in range(2)]
        assert [f.result(timeout=120)[:2] for f in futures] == [(2, pids[0]), (4, pids[1])]
        assert (0, LogEvent(logging.WARNING, "working on 1")) in events and (1, ("step", 2)) in events
        with pytest.raises(InputError, match="bad.mp3"):  # the worker's exception, as it was raised
            pool.submit(1, task_fail).result(timeout=60)

        slow = pool.submit(0, task_sleep, 600)
        assert sleeping.wait(timeout=120)  # the task is running in worker 1
        assert (0, ("sleeping", pids[0])) in events
        os.kill(pids[0], signal.SIGKILL)
        with pytest.raises(WorkerDied, match=f"worker 1 \\(pid {pids[0]}\\) died"):
            slow.result(timeout=120)
        assert isinstance(WorkerDied("x"), MusividError)
        again = pool.submit(0, task_echo, 5).result(timeout=120)  # a fresh worker takes the slot
        assert again[0] == 10 and again[1] not in pids


def test_local_worker_processes_from_the_console_entry_point(tmp_path):
    """`python -m musivid ... --no-ray --workers 2`: spawned workers import musivid/__main__.py
    again, which must not run the command a second time; the sharded run completes. The least
    work that still shards: 3 lines (3 latents over 2 workers: micro-batches of 2), 1 step of 1
    cutout, 1 frame a second at 32 px."""
    song = demo_excerpt(tmp_path / "song.wav", 12.0, 8.5)
    assert len(song.with_suffix(".lrc").read_text().splitlines()) == 3
    r = run_cli(str(song), str(song.with_suffix(".lrc")), "--untrained", "--cutouts", "1", "--fps", "1", "--size",
                "32", "--asr", "none", "--device", "cpu", "--steps", "1", "--no-ray", "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert "over 2 CPU worker(s) (process), micro-batches of 2" in r.stderr
    assert r.stderr.count("reading song.wav") == 1 and (tmp_path / "song.mp4").is_file()


# ---- why a shard equals one device bit for bit ------------------------------------------------------

TEXTS = ["a red fox in the snow", "a lighthouse in a storm", "fireworks over a city", "rain on a window",
         "the sea at night"]


def test_a_shard_of_whole_micro_batches_equals_those_latents_in_one_run_bit_for_bit(tiny_models):
    """fp32, CPU: 5 latents in micro-batches of 2 in one run, against shards [0, 4) and [4, 5)
    run separately: every tensor of the state (latents, best latents, scores, Adam moments) is
    equal to the last bit."""
    from musivid.images.optimize import optimize
    from musivid.rng import seed_for

    clip, gen = tiny_models
    seeds = [seed_for(0, t, 0) for t in TEXTS]
    cfg = OptimizeConfig(steps=4, cutouts=4, micro_batch=2)
    whole = optimize(gen, clip, TEXTS, seeds, cfg).state
    parts = [optimize(gen, clip, TEXTS[r.start:r.stop], seeds[r.start:r.stop], cfg).state for r in split(5, 2, 2)]
    joined = OptimState.stack(parts)
    for k in OptimState._ROWS:
        assert torch.equal(getattr(whole, k), getattr(joined, k)), k
    for k in whole.adam:
        assert all(torch.equal(a, b) for a, b in zip(whole.adam[k], joined.adam[k])), k


def test_what_changes_the_last_bits_batch_shape_and_threads(tiny_models):
    """The reasons sharding keeps whole micro-batches and the one-device thread count: a text
    embedding does not depend on the other texts (each is encoded alone), while a matrix product's
    rows do depend on how many rows it has (kernel blocking). Equal to 1e-5 either way."""
    from musivid.images.optimize import text_embeddings

    clip, _ = tiny_models
    together = text_embeddings(clip, TEXTS)
    assert all(torch.equal(together[i], text_embeddings(clip, [t])[0]) for i, t in enumerate(TEXTS))
    torch.manual_seed(0)
    w, x = torch.randn(64, 512), torch.randn(5, 512)
    rows = torch.nn.functional.linear(x, w)
    alone = torch.cat([torch.nn.functional.linear(x[i:i + 1], w) for i in range(5)])
    assert torch.allclose(rows, alone, atol=1e-5)
    print("5-row vs 1-row products bit-identical here:", torch.equal(rows, alone))


@pytest.mark.gpu
def test_gpu_workers_each_see_their_own_gpu_and_agree_with_one_device(tmp_path):
    """On a machine with GPUs: one local worker process per GPU, each seeing only its GPU as
    cuda:0; the sharded latents agree with one device to bf16/atomics noise."""
    from musivid.images.optimize import optimize
    from musivid.rng import seed_for

    n = torch.cuda.device_count()
    with open_pool(SPEC.models, "cuda", gpus="all", use_ray=False) as pool:
        assert pool.size == n and pool.spec.gpu
        seen = [pool.submit(i, task_visible).result(timeout=300) for i in range(n)]
    assert [s[1] for s in seen] == ["cuda"] * n and len({s[0] for s in seen}) == n
    from musivid.images.models.load import load_biggan, load_clip

    clip, gen = load_clip(SPEC.models, "cuda"), load_biggan(SPEC.models, "cuda")
    seeds = [seed_for(0, t, 0) for t in TEXTS]
    cfg = OptimizeConfig(steps=4, cutouts=4, micro_batch=2)
    whole = optimize(gen, clip, TEXTS, seeds, cfg, device="cuda", amp_dtype=torch.bfloat16).state
    with open_pool(SPEC.models, "cuda", gpus="all", use_ray=False) as pool:
        from musivid.scale.shard import ShardTask, optimize_shard

        shards = split(5, n, 2)
        futs = [pool.submit(j, optimize_shard, [ShardTask(j, j, TEXTS[r.start:r.stop], [0] * len(r),
                                                          seeds[r.start:r.stop], [f"k{i}" for i in r], cfg, None,
                                                          tmp_path / f"ck{j}.pt")]) for j, r in enumerate(shards)]
        joined = OptimState.stack([f.result(timeout=600)[0] for f in futs])
    assert torch.allclose(whole.best_z.cpu(), joined.best_z, atol=1e-2)


def task_visible(host, emit):
    return os.environ.get("CUDA_VISIBLE_DEVICES"), host.device.type


def test_a_shard_task_carries_its_image_prompts_files(tiny_models, tmp_path):
    """Workers get each latent's Target (with its image prompt's file), not only its key: a shard
    with an image prompt optimizes exactly as one run does here; a key alone cannot (one line)."""
    from types import SimpleNamespace

    from PIL import Image

    from musivid.errors import MusividError
    from musivid.images.optimize import optimize
    from musivid.images.targets import ImagePrompt, Target, check_image
    from musivid.rng import seed_for
    from musivid.scale.shard import ShardTask, optimize_shard

    clip, gen = tiny_models
    Image.new("RGB", (40, 30), (200, 40, 10)).save(tmp_path / "cover.png")
    target = Target("a red fox in the snow", images=(ImagePrompt(str(tmp_path / "cover.png"),
                                                                  check_image(tmp_path / "cover.png"), 0.5),))
    seeds = [seed_for(0, target.key, 0)]
    cfg = OptimizeConfig(steps=2, cutouts=2)
    here = optimize(gen, clip, [target], seeds, cfg).state
    host = SimpleNamespace(model=lambda kind, models: gen if kind == "biggan" else clip, device=torch.device("cpu"),
                           amp=None)
    task = ShardTask(0, 0, [target.key], [0], seeds, ["k"], cfg, None, tmp_path / "ck.pt", None, [target])
    (there,) = optimize_shard(host, lambda ev: None, [task])
    assert torch.equal(here.z, there.z) and torch.equal(here.best_score, there.best_score)
    keys_only = ShardTask(0, 0, [target.key], [0], seeds, ["k"], cfg, None, tmp_path / "ck2.pt")
    with pytest.raises(MusividError, match="image prompts are embedded in the process that optimizes"):
        optimize_shard(host, lambda ev: None, [keys_only])
