"""project.py without running a pipeline: the lock, damaged project files, the checks made before
any work, and the provenance written into every video."""
import errno
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from musivid.project import checks
from musivid import project as proj
from musivid.project import lock as lock_mod
from musivid.config import ModelConfig, OptimizeConfig, RenderConfig, RunSettings
from musivid.errors import InputError, MusividError, ProjectBusyError
from musivid.project import Project

HOLDER = textwrap.dedent("""
    import sys, time
    from musivid.project import locked
    with locked(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.readline()
""")


def _holder(root):
    """Another process holding the project's lock until its stdin closes (or it is killed)."""
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "locked"  # the event: the lock is held
    return p


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    root = tmp_path / "song.musivid"
    root.mkdir()
    p = _holder(root)
    try:
        with pytest.raises(ProjectBusyError) as e:
            with proj.locked(root):
                pass
        msg = str(e.value)
        assert f"PID {p.pid}" in msg and str(root) in msg and "\n" not in msg
        assert e.value.exit_code == 75
    finally:
        p.stdin.close()
        p.wait(30)
    with proj.locked(root):  # released at its end
        assert (root / proj.LOCK).read_text().strip() == str(os.getpid())
    assert (root / proj.LOCK).read_text() == ""  # a clean release leaves no PID


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path, caplog):
    root = tmp_path / "song.musivid"
    p = _holder(root)
    (root / "project.json").write_text("{}")  # something the dead process wrote
    (root / ".checkpoint.x1y2.pt.part").write_bytes(b"half")  # and a temp file SIGKILL left
    p.send_signal(signal.SIGKILL)
    p.wait(30)
    assert (root / proj.LOCK).read_text().strip() == str(p.pid)  # its PID is still in the file
    with caplog.at_level(logging.INFO, logger="musivid"):
        with proj.locked(root):
            assert (root / proj.LOCK).read_text().strip() == str(os.getpid())
    assert f"left by process {p.pid}" in caplog.text
    assert sorted(x.name for x in root.iterdir()) == [".lock", "project.json"]  # its temp file removed


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    with proj.locked(tmp_path / "p"):
        with pytest.raises(ProjectBusyError, match=f"PID {os.getpid()}"):
            with proj.locked(tmp_path / "p"):
                pass


def test_a_directory_made_for_nothing_is_removed(tmp_path):
    with pytest.raises(RuntimeError):
        with proj.locked(tmp_path / "new.musivid"):
            raise RuntimeError("a check failed")
    assert not (tmp_path / "new.musivid").exists()
    with proj.locked(tmp_path / "kept.musivid"):
        (tmp_path / "kept.musivid" / "project.json").write_text("{}")
    assert (tmp_path / "kept.musivid" / "project.json").exists()
    (tmp_path / "mine").mkdir()  # the user's own empty directory stays
    with proj.locked(tmp_path / "mine"):
        pass
    assert (tmp_path / "mine").is_dir()


# ---- damaged project files ------------------------------------------------------------------------

def _project(tmp_path, **changes) -> "Project":
    root = tmp_path / "p.musivid"
    root.mkdir(exist_ok=True)
    data = {"version": proj.VERSION, "latents": {}, "picked": {}, "settings": RunSettings().to_json()}
    data.update(changes)
    (root / "project.json").write_text(json.dumps(data))
    return root


@pytest.mark.parametrize("name,damage,expect", [
    ("truncated", lambda t: t[: len(t) // 2], "damaged or truncated project file"),
    ("empty", lambda t: "", "damaged or truncated project file"),
    ("not utf-8", lambda t: t.encode().replace(b"{", b"\xff", 1), "not UTF-8"),
    ("a list", lambda t: "[1, 2]", "not a musivid project file"),
    ("no version", lambda t: t.replace('"version": 1', '"versio": 1'), "not a musivid project file"),
    ("future version", lambda t: t.replace('"version": 1', '"version": 7'), "written by a newer musivid"),
    ("bad setting", lambda t: t.replace('"fps": 24.0', '"fps": -3'), "fps must be"),
    ("settings not a map", lambda t: t.replace('"settings": {', '"settings": [{', 1).replace('}}', '}]}', 1), "damaged"),
    ("latent entry", lambda t: t.replace('"latents": {}', '"latents": {"abc": {"text": "x"}}'), "damaged"),
    ("picked", lambda t: t.replace('"picked": {}', '"picked": {"x": "two"}'), "picked"),
    ("nan", lambda t: t.replace('"fps": 24.0', '"fps": NaN'), "NaN is not a number JSON allows"),
    ("infinity", lambda t: t.replace('"latents": {}', '"latents": {}, "tempo": -Infinity'), "-Infinity is not"),
])
def test_a_damaged_project_file_is_one_line_naming_it_and_what_to_do(tmp_path, name, damage, expect):
    root = _project(tmp_path)
    index = root / "project.json"
    bad = damage(index.read_text())
    index.write_bytes(bad if isinstance(bad, bytes) else bad.encode())
    with pytest.raises(InputError) as e:
        Project.open(root)
    msg = str(e.value)
    print(msg)
    assert msg.startswith(f"{index}: ") and expect in msg and "\n" not in msg
    fix = "upgrade musivid" if name == "future version" else "delete"
    assert fix in msg


def test_an_unreadable_latent_is_forgotten_with_a_warning(tmp_path, caplog):
    from musivid.images.optimize import OptimState

    root = _project(tmp_path)
    p = Project.open(root)
    (root / "latents").mkdir()
    state = OptimState(torch.tensor([1]), torch.zeros(1, 4), torch.zeros(1, 6), torch.zeros(1, 4), torch.zeros(1, 6),
                       torch.tensor([0.3]), step=5)
    p.save_latent("k1", "a red fox", 0, state, 5)
    assert p.try_latent("k1").score == pytest.approx(0.3)
    data = p.latent_file("k1").read_bytes()
    p.latent_file("k1").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(MusividError, match="unreadable latent file .* again") as e:
        p.load_latent("k1")
    assert str(p.latent_file("k1")) in str(e.value)
    with caplog.at_level(logging.WARNING, logger="musivid"):
        assert p.try_latent("k1") is None
    assert "cannot be read" in caplog.text and "a red fox" in caplog.text and "optimized again" in caplog.text
    assert p.latent_info("k1") is None  # forgotten: the line is optimized again


def test_a_directory_where_a_latent_file_goes(tmp_path, caplog):
    """An empty directory in a latent file's place is removed (with a warning) when the latent is
    saved; one that holds something is one line naming it and the fix; reading it forgets it."""
    root = _project(tmp_path)
    p = Project.open(root)
    p.latent_file("k1").mkdir(parents=True)
    with caplog.at_level(logging.WARNING, logger="musivid"):
        p.save_latent("k1", "a red fox", 0, _state(), 5)
    assert "empty directory where a latent file goes" in caplog.text and p.try_latent("k1") is not None
    p.latent_file("k2").mkdir()
    (p.latent_file("k2") / "x").write_text("x")
    with pytest.raises(MusividError, match="is not a file but must become this line's latent file: move it out"):
        p.save_latent("k2", "a red fox", 1, _state(), 5)


def _state(score: float = 0.3):
    from musivid.images.optimize import OptimState

    return OptimState(torch.tensor([11]), torch.zeros(1, 4), torch.zeros(1, 6), torch.zeros(1, 4), torch.zeros(1, 6),
                      torch.tensor([score]), step=5)


@pytest.mark.parametrize("index", [True, False], ids=["project.json older", "no project.json yet"])
def test_latent_files_the_index_does_not_list_are_indexed_again(tmp_path, caplog, index):
    """A latent file is written before the index that lists it: what a crash or a full disk left
    between the two is found when the project is opened, and indexed from the file itself."""
    root = _project(tmp_path) if index else tmp_path / "p.musivid"
    p = Project.open(root)
    p.save_latent("k1", "a red fox", 0, _state(0.3), 12)
    p.save_latent("k2", "a red fox", 1, _state(0.4), 12)  # ... and the run dies before p.save()
    torch.save({"z": torch.zeros(4), "cls": torch.zeros(6), "score": 0.1}, p.latent_file("old"))  # says no text
    p.latent_file("bad").write_bytes(b"damaged")
    assert json.loads((root / "project.json").read_text())["latents"] == {} if index else not p.exists
    with caplog.at_level(logging.INFO, logger="musivid"):
        again = Project.open(root)
        Project.open(root)
    assert caplog.text.count("2 finished latent file(s) missing from") == 1  # said once
    assert again.latent_info("k1") == proj.LatentInfo("k1", "a red fox", 0, 11, pytest.approx(0.3), 12)
    assert again.latent_info("k2").variant == 1 and again.latent_info("k2").score == pytest.approx(0.4)
    assert again.latent_info("old") is None and again.latent_info("bad") is None
    again.save()
    assert set(json.loads((root / "project.json").read_text())["latents"]) == {"k1", "k2"}


def test_taking_over_a_killed_holders_lock_removes_its_temp_files_beside_the_project(tmp_path):
    root = tmp_path / "v.musivid"
    p = _holder(root)
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        mine = tmp_path / f".v.{p.pid}-x1y2.mp4.part"  # its video, half-written
        other = tmp_path / f".w.{live.pid}-x1y2.mp4.part"  # another command's, still running
        (root / "thumbs").mkdir()
        thumb = root / "thumbs" / f".k.{p.pid}-x1y2.png.part"
        for f in (mine, other, thumb):
            f.write_bytes(b"half")
        p.send_signal(signal.SIGKILL)
        p.wait(30)
        with proj.locked(root):
            pass
        assert not mine.exists() and not thumb.exists() and other.exists()
    finally:
        live.stdin.close()
        live.wait(30)


def test_a_full_disk_under_the_lock_is_one_line(tmp_path, monkeypatch):
    from musivid.errors import WriteError

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(lock_mod.os, "pwrite", full)
    with pytest.raises(WriteError, match=r"\.lock: cannot write the project lock \(no space left on the device; "):
        with proj.locked(tmp_path / "p.musivid"):
            pass


def test_a_checkpoint_that_does_not_fit_its_keys_is_discarded(tmp_path, caplog):
    from musivid.images.optimize import OptimState

    root = _project(tmp_path)
    p = Project.open(root)
    state = OptimState(torch.tensor([1, 2]), torch.zeros(2, 4), torch.zeros(2, 6), torch.zeros(2, 4),
                       torch.zeros(2, 6), torch.zeros(2), step=3)
    p.save_checkpoint(["only-one-key"], state)
    with caplog.at_level(logging.WARNING, logger="musivid"):
        assert p.load_checkpoint() is None
    assert "checkpoint.pt is unreadable" in caplog.text and "discarded" in caplog.text
    p.save_checkpoint(["a", "b"], state)
    assert p.load_checkpoint().keys == ["a", "b"]


# ---- checks before any work ----------------------------------------------------------------------

def test_default_output_never_names_an_input(tmp_path, caplog):
    clip, song, srt = tmp_path / "clip.mp4", tmp_path / "song.mp3", tmp_path / "song.srt"
    with caplog.at_level(logging.INFO, logger="musivid"):
        assert checks.default_output(clip) == tmp_path / "clip.video.mp4"
    assert "would replace an input: writing clip.video.mp4" in caplog.text
    assert checks.default_output(song) == tmp_path / "song.mp4"
    assert checks.default_output(song, [srt]) == tmp_path / "song.video.mp4"  # the captions would replace the lyrics


def test_check_output_sees_an_input_behind_a_link(tmp_path):
    song = tmp_path / "song.mp4"
    song.write_bytes(b"x")
    os.link(song, tmp_path / "link.mp4")
    with pytest.raises(InputError, match="is an input of this run"):
        checks.check_output(tmp_path / "link.mp4", [song], None, overwrite=True)


def test_check_project_dir(tmp_path):
    song = tmp_path / "song.mp3"
    song.write_bytes(b"x")
    with pytest.raises(InputError, match="would replace it"):
        checks.check_project_dir(song, [song, None])
    (tmp_path / "a.musivid").write_text("a file")
    with pytest.raises(InputError, match="is not a project directory"):
        checks.check_project_dir(tmp_path / "a.musivid", [song])
    with pytest.raises(InputError, match="holds other files .*song.mp3"):
        checks.check_project_dir(tmp_path, [None])  # e.g. --project . : the user's own files
    with pytest.raises(InputError, match="does not exist"):
        checks.check_project_dir(tmp_path / "no" / "p.musivid", [song])
    (tmp_path / "empty").mkdir()
    checks.check_project_dir(tmp_path / "empty", [song])
    checks.check_project_dir(tmp_path / "new.musivid", [song])
    assert not (tmp_path / "new.musivid").exists()  # a check writes nothing


# ---- provenance -----------------------------------------------------------------------------------

def test_video_metadata_says_ai_generated_and_how():
    from musivid import __version__

    s = RunSettings(optimize=OptimizeConfig(seed=42), models=ModelConfig(clip="ViT-B-32/openai"))  # as prepare
    meta = proj.video_metadata(s, "song")  # resolves clip "auto"
    facts = json.loads(meta["description"])
    assert facts["ai_generated"] is True and facts["version"] == __version__ and facts["seed"] == 42
    assert facts["clip"] == "ViT-B-32/openai" and facts["biggan"] == "biggan-deep-256"
    assert facts["settings_sha256"] == proj.settings_digest(s) and len(facts["settings_sha256"]) == 64
    assert meta["comment"].startswith(f"AI-generated by musivid {__version__}") and "seed 42" in meta["comment"]
    assert "UNTRAINED" not in meta["title"]
    local = RunSettings(models=ModelConfig(clip_path="/x/my-clip.pt"))
    assert "local file my-clip.pt" in json.loads(proj.video_metadata(local, "s")["description"])["clip"]


def test_the_settings_hash_follows_what_changes_the_video_only():
    base = RunSettings()
    same = [RunSettings(device="cpu"), RunSettings(models=ModelConfig(offline=True, cache_dir="/c")),
            RunSettings(optimize=OptimizeConfig(checkpoint_every_s=1, micro_batch=4))]
    other = [RunSettings(optimize=OptimizeConfig(seed=1)), RunSettings(optimize=OptimizeConfig(steps=9)),
             RunSettings(render=RenderConfig(size=512)), RunSettings(models=ModelConfig(biggan="biggan-deep-512"))]
    assert {proj.settings_digest(s) for s in same} == {proj.settings_digest(base)}
    assert len({proj.settings_digest(s) for s in other + [base]}) == len(other) + 1


def test_a_read_only_project_is_one_line(tmp_path, monkeypatch):
    """(Root writes anywhere, so the refusal of a read-only directory is simulated.)"""
    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    root = tmp_path / "p.musivid"
    root.mkdir()
    monkeypatch.setattr(lock_mod.os, "open", refuse)
    with pytest.raises(InputError, match="cannot write in the project directory .Permission denied."):
        with proj.locked(root):
            pass
