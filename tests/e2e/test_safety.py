"""Nothing overwritten, nothing lost, nothing left behind (issue 16), end to end: inputs are never
written over, one writer per project, every stop signal cleans up, every check comes before any
work, damaged project files are met with one line, every video says how it was made.

Signals and concurrency run the command in a real process and act on real events (the checkpoint
file appearing, the output's temp file appearing), never on sleeps. Those processes work on copies
of the module's finished project (`made`: the beat analysed, every line at step 12), so none of them
analyses the song again, and they are all started at once (`runs`), so their start-ups overlap."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
import torch

from conftest import click_song, musivid

FAST = ["--untrained", "--cutouts", "2", "--fps", "8", "--size", "64", "--asr", "none"]
LRC = "[00:00.50]a red fox runs through the snow\n[00:02.50]a lighthouse in the storm\n[00:04.50]fireworks over the sea\n"


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    """A 6-second song (a 120 BPM click track, mp3) with three timed lyric lines."""
    return click_song(tmp_path_factory.mktemp("song"), LRC)


STEPS = 12  # of `made`; runs that continue its lines go on to 2 * STEPS
MADE = [*FAST, "--steps", str(STEPS), "--seed", "7", "--checkpoint-every", "0.01"]


@pytest.fixture(scope="module")
def made(song, tmp_path_factory):
    """A finished project (12 steps per line; its settings checkpoint after every step, so a
    `variants` run on it shows it is optimizing at once), copied by tests that change it."""
    d = tmp_path_factory.mktemp("made")
    r = musivid(*song, "-o", d / "v.mp4", *MADE, "-q")
    assert r.returncode == 0, r.stderr
    return d / "v.mp4", d / "v.musivid"


def _copy(made, tmp_path, video: bool = True) -> tuple[Path, Path]:
    """A copy of the module's project (and of its video) in `tmp_path`: the output and project
    directory of a run with `-o tmp_path/v.mp4`."""
    out, pdir = made
    shutil.copytree(pdir, tmp_path / pdir.name)
    if video:
        shutil.copy(out, tmp_path / out.name)
    return tmp_path / out.name, tmp_path / pdir.name


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "musivid", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _parts(root: Path) -> list[Path]:
    return sorted(root.rglob("*.part"))


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "error" in line.lower()]


# ---- inputs are never written over ------------------------------------------------------------------

def test_a_video_given_as_the_audio_is_never_overwritten(made, song, tmp_path):
    """`musivid clip.mp4 lyrics.lrc`: the default output would be the input itself."""
    clip = tmp_path / "clip.mp4"
    shutil.copy(made[0], clip)
    before = clip.read_bytes()
    r = musivid(clip, song[1], *FAST, "--steps", "1")
    assert r.returncode == 0, r.stderr
    assert "would replace an input: writing clip.video.mp4" in r.stderr
    assert clip.read_bytes() == before and (tmp_path / "clip.video.mp4").is_file()
    assert (tmp_path / "clip.video.musivid" / "project.json").is_file()
    for args in (["-o", clip], ["-o", clip, "-y"], ["-o", tmp_path / "x.mp4", "--project", clip]):
        r = musivid(clip, song[1], *FAST, "--steps", "1", *args, "-q")
        assert r.returncode == 2 and "is an input of this run" in r.stderr, r.stderr
        assert len(_error_lines(r.stderr)) == 1
    assert clip.read_bytes() == before and not (tmp_path / "x.mp4").exists()


def test_lyrics_named_like_the_captions_get_another_output_name(song, tmp_path):
    """`musivid song.mp3 song.srt`: the default song.srt captions would replace the lyrics."""
    audio = tmp_path / "song.mp3"
    shutil.copy(song[0], audio)
    lyrics = tmp_path / "song.srt"
    lyrics.write_text("a red fox runs through the snow\na lighthouse in the storm\n")
    r = musivid(audio, lyrics, *FAST, "--steps", "1")
    assert r.returncode == 0, r.stderr
    assert lyrics.read_text().startswith("a red fox") and (tmp_path / "song.video.mp4").is_file()


def test_a_cut_song_is_refused_then_accepted_on_request_for_every_later_command(song, tmp_path):
    data = song[0].read_bytes()
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    lrc = tmp_path / "cut.lrc"
    lrc.write_text(LRC.splitlines()[0] + "\n")
    r = musivid(cut, lrc, *FAST, "--steps", "1")
    assert r.returncode == 2 and "the file says 6.0" in r.stderr and "--accept-truncated" in r.stderr
    assert not (tmp_path / "cut.musivid").exists()
    r = musivid(cut, lrc, *FAST, "--steps", "1", "--accept-truncated")
    assert r.returncode == 0, r.stderr
    assert "warning: " in r.stderr and "truncated or corrupt audio" in r.stderr
    r = musivid("render", tmp_path / "cut.musivid", "-o", tmp_path / "again.mp4", "-q")  # the project remembers
    assert r.returncode == 0, r.stderr


# ---- everything checked before any work, nothing left behind ----------------------------------------

def test_bad_model_paths_are_reported_together_before_any_work(song, tmp_path, monkeypatch):
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path / "cache"))
    plain = tmp_path / "lyrics.txt"
    plain.write_text("a red fox runs through the snow\na lighthouse in the storm\n")  # would need aligning
    before = set(os.listdir(tmp_path))
    r = musivid(song[0], plain, "-o", tmp_path / "x.mp4", "--clip", "/missing/clip.pt", "--biggan", "/missing/bg",
                "--whisper-model", "/missing/whisper")
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr  # nothing started: no "aligning", no "reading"
    for bad in ("--clip /missing/clip.pt", "--biggan /missing/bg", "--whisper-model /missing/whisper"):
        assert bad in lines[0], lines[0]
    assert set(os.listdir(tmp_path)) == before  # no project directory, no cache directory
    r = musivid("align", song[0], plain, "-o", tmp_path / "a.lrc", "--whisper-model", "./no/such/model")
    assert r.returncode == 2 and "--whisper-model ./no/such/model: no such directory" in r.stderr


def test_every_missing_weight_is_listed_in_one_message(song, tmp_path, monkeypatch):
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MUSIVID_OFFLINE", "1")
    files = ("clip-vit-b-32-openai.safetensors", "biggan-deep-256.bin", "biggan-deep-256-config.json")
    for args in (["models", "fetch"], ["models", "check"], [song[0], song[1], "-o", tmp_path / "x.mp4"]):
        r = musivid(*args)
        assert r.returncode == 1, r.stderr
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and all(f in lines[0] for f in files) and "--untrained" in lines[0], r.stderr
        if args[:2] == ["models", "check"]:  # asked to check the cache: it says what is missing, not why
            assert "the default models are not in the cache" in lines[0] and "offline" not in lines[0]
        else:
            assert "3 weight files are missing" in lines[0] and "offline" in lines[0], r.stderr
    r = musivid("models", "fetch", "nope", "biggan-deep-256", "ViT-X")
    assert r.returncode == 1 and "unknown models 'nope', 'ViT-X'" in r.stderr
    assert not (tmp_path / "x.musivid").exists() and not (tmp_path / "cache").exists()


# ---- one writer per project, stop signals ------------------------------------------------------------
# Eight commands in real processes, each on its own copy of the module's project, all started at once
# by `runs` (their start-ups overlap) and each sent its signal as soon as its own event shows it is
# at work: a checkpoint (optimizing) or the video's temp file (rendering). The tests below each take
# theirs from there.

class Run:
    """A command in a real process, and the signal (or signals, one right after the other) to send
    it once `event()` is true; `acted`: they were sent."""

    def __init__(self, made, d: Path, sig: signal.Signals | tuple[signal.Signals, ...], command, event: str):
        d.mkdir()
        self.out, self.pdir = _copy(made, d, video=False)
        self.args = command(self.out, self.pdir)
        self.sigs = sig if isinstance(sig, tuple) else (sig,)
        self.event, self.acted, self.sent = event, False, 0
        self.proc = _start(*self.args)

    def signal(self) -> None:
        """Send the next signal, once the one before it reached the process (its signal handler ran):
        a second signal is sent after the first, not at the same instant, whatever the scheduler does."""
        if self.sent and not _delivered(self.proc.pid, self.sigs[self.sent - 1]):
            return
        self.proc.send_signal(self.sigs[self.sent])
        self.sent += 1
        self.acted = self.sent == len(self.sigs)

    def due(self) -> bool:
        if self.event == "checkpoint":
            return (self.pdir / "checkpoint.pt").exists()
        return bool(list(self.pdir.parent.glob(".big.*.mp4.part")))  # the render's temp file

    def why_not(self) -> str:
        """Why it was not acted on: no event in time, or its exit status and its stderr."""
        if self.proc.poll() is None:
            return f"no {self.event} within {WAIT} s"
        return f"the process ended ({self.proc.returncode}) before its {self.event}: {self.proc.stderr.read()[-2000:]}"


def _delivered(pid: int, sig: signal.Signals) -> bool:
    """Whether a signal sent to process `pid` has been taken by it (no longer pending in
    /proc/PID/status; where there is no /proc, taken as delivered)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    pending = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("ShdPnd:"))
    return not pending >> (int(sig) - 1) & 1


WAIT = 600  # s: eight processes start at once, on a machine that may be busy


@pytest.fixture(scope="module")
def runs(made, song, tmp_path_factory) -> dict[str, Run]:
    """The eight runs by name, each signalled at its event (or why not: `Run.why_not`); those held
    still by SIGSTOP are left to their tests, and killed at the end of the module if still there."""
    d = tmp_path_factory.mktemp("runs")

    def _continue(out, pdir):  # the main command taking every line on from step 12 to 24
        return [*song, "-o", out, *FAST, "--steps", 2 * STEPS, "--seed", "7", "--checkpoint-every", "0.01"]

    def _render(out, pdir):
        return ["render", pdir, "-o", pdir.parent / "big.mp4", "--fps", "30", "--size", "256"]

    plan = {  # name: (signal(s), command, event)
        "SIGTERM": (signal.SIGTERM, _continue, "checkpoint"),
        "SIGHUP": (signal.SIGHUP, _continue, "checkpoint"),
        "lock": (signal.SIGSTOP, _continue, "checkpoint"),  # held still while it holds the project's lock
        "variants": (signal.SIGSTOP, lambda out, pdir: ["variants", pdir, "--line", "1", "--count", "1", "-q"],
                     "checkpoint"),
        "render": (signal.SIGTERM, _render, "temp file"),
        "SIGKILL": (signal.SIGKILL, _render, "temp file"),
        "INT, TERM": ((signal.SIGINT, signal.SIGTERM), _continue, "checkpoint"),  # the first one decides
        "TERM, HUP": ((signal.SIGTERM, signal.SIGHUP), _continue, "checkpoint"),
    }
    runs = {}
    try:
        for name, (sig, command, event) in plan.items():
            runs[name] = Run(made, d / name, sig, command, event)
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and any(not r.acted and r.proc.poll() is None for r in runs.values()):
            for r in runs.values():
                if not r.acted and r.proc.poll() is None and (r.sent or r.due()):
                    r.signal()
            time.sleep(0.005)
        yield runs
    finally:
        for r in runs.values():
            if r.proc.poll() is None:
                r.proc.kill()
                r.proc.wait(60)


def test_a_second_run_is_refused_and_a_killed_runs_lock_is_taken_over(runs):
    """Two runs on one project: the second is refused with the first's PID while the first works
    (held still by SIGSTOP once its checkpoint shows it is optimizing). The first is then SIGKILLed
    (its lock stays in the file, the kernel releases it): the next run takes the lock over,
    resumes from the checkpoint and finishes; no latent is lost."""
    first = runs["lock"]
    assert first.acted, first.why_not()
    pdir, pid = first.pdir, first.proc.pid
    try:
        second = musivid(*first.args)
    finally:
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(120)
    assert second.returncode == 75, second.stderr
    [line] = _error_lines(second.stderr)
    # the same command: refused at its output's claim, before the project's lock (both name the holder)
    assert f"(PID {pid}) is writing this video" in line or f"(PID {pid}) is writing this project" in line
    assert (pdir / ".lock").read_text().strip() == str(pid)
    again = musivid(*first.args)
    assert again.returncode == 0, again.stderr
    assert f"left by process {pid}" in again.stderr and "resuming from checkpoint" in again.stderr
    data = json.loads((pdir / "project.json").read_text())
    assert len(data["latents"]) == 3 and all(m["steps"] == 2 * STEPS for m in data["latents"].values())
    for key in data["latents"]:
        torch.load(pdir / "latents" / f"{key}.pt", weights_only=True)
    assert not (pdir / "checkpoint.pt").exists() and not _parts(pdir.parent)
    assert (pdir / ".lock").read_text() == ""


def test_two_concurrent_variants_commands(runs):
    """`variants --count 1` twice at once: the second is refused while the first runs (held still
    by SIGSTOP once it is optimizing; the project's settings checkpoint after every step), and run
    again afterwards it adds its own variant: two new variants, none lost or doubled."""
    first = runs["variants"]
    assert first.acted, first.why_not()
    pdir = first.pdir
    try:
        second = musivid("variants", pdir, "--line", "1", "--count", "1")
    finally:
        first.proc.send_signal(signal.SIGCONT)
    assert second.returncode == 75 and f"PID {first.proc.pid}" in second.stderr, second.stderr
    _, err = first.proc.communicate(timeout=600)
    assert first.proc.returncode == 0, err
    second = musivid("variants", pdir, "--line", "1", "--count", "1")
    assert second.returncode == 0, second.stderr
    data = json.loads((pdir / "project.json").read_text())
    fox = sorted(m["variant"] for m in data["latents"].values() if m["text"].startswith("a red fox"))
    assert fox == [0, 1, 2]


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["SIGTERM", "SIGHUP"])
def test_a_stop_signal_during_optimization_keeps_the_checkpoint(runs, sig, code):
    run = runs[sig.name]
    assert run.acted, run.why_not()
    _, err = run.proc.communicate(timeout=300)
    assert run.proc.returncode == code, err
    assert f"interrupted ({sig.name})" in err and "Traceback" not in err
    done = torch.load(run.pdir / "checkpoint.pt", weights_only=True)["state"]["step"]
    assert STEPS < done < 2 * STEPS  # steps done in this run, not all of them
    assert not run.out.exists() and not _parts(run.pdir.parent)
    assert (run.pdir / ".lock").read_text() == ""  # released on the way out
    if sig == signal.SIGTERM:
        again = musivid(*run.args)
        assert again.returncode == 0, again.stderr
        assert f"resuming from checkpoint at step {done}/{2 * STEPS}" in again.stderr and run.out.exists()


def test_sigterm_during_rendering_leaves_no_temp_file(runs):
    run = runs["render"]
    assert run.acted, run.why_not()
    _, err = run.proc.communicate(timeout=300)
    assert run.proc.returncode == 143, err
    assert "interrupted (SIGTERM)" in err and "Traceback" not in err
    big = run.pdir.parent / "big.mp4"
    assert not big.exists() and not _parts(run.pdir.parent)
    again = musivid(*run.args, "-q")
    assert again.returncode == 0, again.stderr
    with av.open(str(big)) as c:
        assert c.streams.video[0].frames == 180  # 6 s at 30 fps


def test_sigkill_during_rendering_leaves_a_temp_file_the_next_run_removes(runs):
    """SIGKILL cleans up nothing: the video's temp file (named by the killed PID) stays, until the
    next command takes the project's lock over and writes that video."""
    run = runs["SIGKILL"]
    assert run.acted, run.why_not()
    run.proc.communicate(timeout=300)
    assert run.proc.returncode == -signal.SIGKILL
    [left] = _parts(run.pdir.parent)
    assert left.name.startswith(f".big.{run.proc.pid}-")
    again = musivid(*run.args, "-q")
    assert again.returncode == 0, again.stderr
    assert (run.pdir.parent / "big.mp4").is_file() and not _parts(run.pdir.parent)


@pytest.mark.parametrize("name,code", [("INT, TERM", 130), ("TERM, HUP", 143)])
def test_the_first_signal_decides_and_a_second_one_is_ignored(runs, name, code):
    run = runs[name]
    assert run.acted, run.why_not()
    _, err = run.proc.communicate(timeout=300)
    first = run.sigs[0].name
    assert run.proc.returncode == code, err  # not killed by the second one, not its exit code
    assert f"interrupted ({first})" in err and "Traceback" not in err
    assert err.count("interrupted (") == 1
    assert (run.pdir / "checkpoint.pt").exists() and not _parts(run.pdir.parent)
    assert (run.pdir / ".lock").read_text() == ""


# ---- damaged project files -----------------------------------------------------------------------------

@pytest.mark.parametrize("damage,expect", [
    (lambda t: t[: len(t) // 3], "damaged or truncated project file"),
    (lambda t: t.replace('"version": 1', '"version": 2'), "written by a newer musivid"),
    (lambda t: t.replace('"cutouts": 2', '"cutouts": "many"'), "damaged project file"),
], ids=["truncated", "future version", "malformed"])
def test_a_damaged_project_json_is_one_line_for_every_command(made, song, tmp_path, damage, expect):
    out, pdir = _copy(made, tmp_path)
    index = pdir / "project.json"
    index.write_text(damage(index.read_text()))
    for args in ([*song, "-o", out, *FAST, "--steps", "1"], ["render", pdir], ["variants", pdir, "--line", "1"],
                 ["pick", pdir, "--line", "1", "--variant", "0"]):
        r = musivid(*args)
        assert r.returncode == 2, (args, r.stderr)
        [line] = _error_lines(r.stderr)
        assert f"{index}: " in line and expect in line, line


def test_an_unreadable_latent_is_optimized_again_for_its_line_only(made, song, tmp_path):
    out, pdir = _copy(made, tmp_path)
    files = sorted((pdir / "latents").iterdir())
    before = {p.name: p.read_bytes() for p in files}
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncated
    r = musivid("render", pdir, "-o", tmp_path / "r.mp4")  # render optimizes nothing: one line, what to do
    assert r.returncode == 1, r.stderr
    [line] = _error_lines(r.stderr)
    assert str(files[0]) in line and "run the full command" in line
    r = musivid(*song, "-o", out, *MADE, "-y")  # -y: a copy's video is not "ours"
    assert r.returncode == 0, r.stderr
    assert f"{files[0]} cannot be read" in r.stderr and "optimizing 1 latent(s) (1 line(s))" in r.stderr
    after = {p.name: p.read_bytes() for p in (pdir / "latents").iterdir()}
    assert after.keys() == before.keys() and torch.load(files[0], weights_only=True)["steps"] == STEPS
    assert all(after[k] == v for k, v in before.items() if k != files[0].name)  # the other lines untouched


# ---- options -------------------------------------------------------------------------------------------

NUMERIC = [  # (command args before the option, option, bad values)
    ("make", "--fps", ["0", "-1", "300", "nan", "inf", "x"]), ("make", "--size", ["7", "0", "4096", "1.5"]),
    ("make", "--crf", ["-1", "52"]), ("make", "--steps", ["-1", "100001", "x"]), ("make", "--variants", ["0", "65"]),
    ("make", "--cutouts", ["0", "2000"]), ("make", "--seed", ["-1", str(2**64)]),
    ("make", "--checkpoint-every", ["0", "-2", "nan", "inf"]), ("make", "--reactivity", ["-0.1", "2", "nan"]),
    ("make", "--pulse", ["-1", "6", "inf"]), ("make", "--start", ["-1", "nan", "99"]),
    ("make", "--duration", ["0", "-1", "nan", "inf"]),
    ("render", "--fps", ["0", "nan"]), ("render", "--size", ["7"]), ("render", "--crf", ["99"]),
    ("render", "--reactivity", ["3"]), ("render", "--pulse", ["-2"]), ("render", "--start", ["-1", "99"]),
    ("render", "--duration", ["0", "inf"]),
    ("variants", "--line", ["0", "99", "x"]), ("variants", "--count", ["0", "65"]),
    ("pick", "--line", ["0", "99"]), ("pick", "--variant", ["-1", "9"]),
    ("bench", "--batch", ["0", "x", "5000"]), ("bench", "--steps", ["0"]), ("bench", "--cutouts", ["0"]),
]
CASES = [(cmd, opt, v) for cmd, opt, values in NUMERIC for v in values]


@pytest.mark.parametrize("cmd,opt,value", CASES, ids=[f"{c} {o} {v[:6]}" for c, o, v in CASES])
def test_every_numeric_option_is_checked_in_one_line(made, song, tmp_path, cmd, opt, value):
    out, pdir = made
    before = (pdir / "project.json").read_bytes()
    base = {"make": [*song, "-o", tmp_path / "x.mp4", *FAST], "render": ["render", pdir, "-o", tmp_path / "x.mp4"],
            "variants": ["variants", pdir, "--line", "1"], "pick": ["pick", pdir, "--line", "1", "--variant", "0"],
            "bench": ["bench", "--device", "cpu", "--untrained"]}[cmd]
    args = [a for a in base]
    if opt in args:  # replace the base's own value of the option
        args[args.index(opt) + 1] = value
    else:
        args += [opt, value]
    r = musivid(*args)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    [line] = _error_lines(r.stderr)
    assert opt.lstrip("-").split("-")[0] in line.replace("_", "-"), line
    assert not (tmp_path / "x.mp4").exists() and not (tmp_path / "x.musivid").exists()
    if cmd != "pick":
        assert (pdir / "project.json").read_bytes() == before


def test_render_save_keeps_the_one_off_settings(made, tmp_path):
    _, pdir = _copy(made, tmp_path)
    r = musivid("render", pdir, "-o", tmp_path / "a.mp4", "--fps", "6", "--size", "48", "--crf", "30", "--save",
                "--device", "cpu", "-q")
    assert r.returncode == 0, r.stderr
    s = json.loads((pdir / "project.json").read_text())["settings"]
    assert (s["render"]["fps"], s["render"]["size"], s["render"]["crf"]) == (6, 48, 30)
    assert s["device"] == "auto"  # where that render ran is not a project setting
    r = musivid("render", pdir, "-o", tmp_path / "b.mp4", "-q")
    assert r.returncode == 0, r.stderr
    with av.open(str(tmp_path / "b.mp4")) as c:
        v = c.streams.video[0]
        assert (v.codec_context.width, v.average_rate) == (48, 6)


# ---- provenance ------------------------------------------------------------------------------------------

def test_every_video_says_it_is_ai_generated_and_how(made):
    from musivid import __version__
    from musivid.project import Project, settings_digest

    out, pdir = made
    with av.open(str(out)) as c:
        meta = dict(c.metadata)
    facts = json.loads(meta["description"])
    settings = Project.open(pdir).settings
    assert facts["ai_generated"] is True and facts["generator"] == "musivid" and facts["version"] == __version__
    assert facts["seed"] == 7 and facts["settings_sha256"] == settings_digest(settings)
    assert facts["clip"] == "untrained tiny CLIP" and facts["biggan"] == "untrained tiny BigGAN-deep"
    assert f"AI-generated by musivid {__version__}" in meta["comment"] and "seed 7" in meta["comment"]
    assert "UNTRAINED" in meta["title"] and "UNTRAINED" in meta["comment"]
    assert "AI-generated" in meta["artist"]
