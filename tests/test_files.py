"""files.py: atomic writes under signals, the signal handler the CLI installs, same-file checks."""
import errno
import os
import signal
import subprocess
import sys

import pytest

from musivid import files
from musivid.errors import Interrupted, WriteError


@pytest.fixture
def sigterm_handler():
    """files.on_signal installed for SIGTERM for one test (as the CLI does for a command)."""
    old = signal.signal(signal.SIGTERM, files.on_signal)
    yield
    signal.signal(signal.SIGTERM, old)
    files.reset_signals()


def test_a_signal_raises_interrupted_with_the_shells_exit_code(sigterm_handler):
    with pytest.raises(Interrupted) as e:
        signal.raise_signal(signal.SIGTERM)
    assert isinstance(e.value, KeyboardInterrupt)  # handled wherever Ctrl-C is
    assert e.value.signum == signal.SIGTERM and e.value.exit_code == 143
    assert Interrupted(signal.SIGHUP).exit_code == 129 and Interrupted(signal.SIGINT).exit_code == 130


def test_a_signal_inside_a_critical_section_waits_for_its_end(sigterm_handler):
    done = []
    with pytest.raises(Interrupted):
        with files.critical():
            signal.raise_signal(signal.SIGTERM)
            done.append("the section finished")
    assert done == ["the section finished"]


def test_a_second_signal_does_not_cut_the_clean_up_short(sigterm_handler):
    cleaned = []
    with pytest.raises(Interrupted):
        try:
            signal.raise_signal(signal.SIGTERM)
        finally:
            signal.raise_signal(signal.SIGTERM)  # e.g. `timeout` sending again: ignored
            cleaned.append(True)
    assert cleaned == [True]
    files.reset_signals()
    with pytest.raises(Interrupted):  # after the command ends, the next signal counts again
        signal.raise_signal(signal.SIGTERM)


def test_atomic_output_removes_its_temp_file_on_a_signal(tmp_path, sigterm_handler):
    target = tmp_path / "video.mp4"
    with pytest.raises(Interrupted):
        with files.atomic_output(target) as tmp:
            tmp.write_bytes(b"half a video")
            signal.raise_signal(signal.SIGTERM)
    assert os.listdir(tmp_path) == []


def test_a_signal_while_the_temp_file_is_made_leaves_nothing(tmp_path, sigterm_handler, monkeypatch):
    """The window between mkstemp and the `try` that owns the file: the signal waits for it."""
    made = files.temp_beside

    def temp_then_signal(path):
        tmp = made(path)
        signal.raise_signal(signal.SIGTERM)  # arrives the instant after the file exists
        return tmp

    monkeypatch.setattr(files, "temp_beside", temp_then_signal)
    with pytest.raises(Interrupted):
        files.atomic_write_bytes(tmp_path / "project.json", b"{}")
    assert os.listdir(tmp_path) == []


def test_the_library_installs_no_signal_handler():
    import subprocess
    import sys

    code = ("import signal; before = [signal.getsignal(s) for s in (2, 15, 1)]\n"
            "import musivid.pipeline, musivid.video.render, musivid.images.optimize, musivid.project, musivid.files\n"
            "assert [signal.getsignal(s) for s in (2, 15, 1)] == before, 'a handler was installed'")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_same_file_sees_links(tmp_path):
    a = tmp_path / "song.mp3"
    a.write_bytes(b"x")
    os.link(a, tmp_path / "hard.mp3")
    os.symlink(a, tmp_path / "soft.mp3")
    assert files.same_file(a, tmp_path / "hard.mp3") and files.same_file(a, tmp_path / "soft.mp3")
    assert files.same_file(a, tmp_path / "sub" / ".." / "song.mp3")
    assert not files.same_file(a, tmp_path / "other.mp3")


@pytest.mark.parametrize("value,path", [("small", False), ("large-v3", False), ("Systran/faster-whisper-small", False),
                                        ("/models/whisper", True), ("./whisper", True), ("~/w", True),
                                        ("models/whisper/small", True)])
def test_looks_like_path(value, path):
    assert files.looks_like_path(value) is path


# ---- a disk that refuses a write: one line, no temp file ---------------------------------------------

def _refuse_after(monkeypatch, code: int, calls: int = 0):
    """files.write_file failing with `code` (half the bytes written first) after `calls` good writes."""
    real, done = files.write_file, []

    def write(path, data):
        if len(done) >= calls:
            path.write_bytes(data[: len(data) // 2])
            raise OSError(code, os.strerror(code), str(path))
        done.append(path)
        real(path, data)

    monkeypatch.setattr(files, "write_file", write)


@pytest.mark.parametrize("code,says", [(errno.ENOSPC, "no space left"), (errno.EDQUOT, "quota"),
                                       (errno.EROFS, "read-only"), (errno.EIO, "input/output error")])
def test_a_refused_write_is_one_line_naming_the_file_and_leaves_no_temp_file(tmp_path, monkeypatch, code, says):
    target = tmp_path / "project.json"
    target.write_bytes(b"old")
    _refuse_after(monkeypatch, code)
    with pytest.raises(WriteError) as e:
        files.atomic_write_bytes(target, b"x" * 5000, "the project's index")
    msg = str(e.value)
    assert msg.startswith(f"{target}: cannot write the project's index (") and says in msg and "\n" not in msg
    assert "4.9 KB to write" in msg and " free" in msg and "nothing finished is lost" in msg
    assert e.value.exit_code == 1 and e.value.__cause__ is None and e.value.__suppress_context__
    assert os.listdir(tmp_path) == ["project.json"] and target.read_bytes() == b"old"  # the old file stands


def test_other_write_errors_are_not_taken_for_a_full_disk(tmp_path, monkeypatch):
    _refuse_after(monkeypatch, errno.EACCES)
    with pytest.raises(PermissionError):
        files.atomic_write_bytes(tmp_path / "a.bin", b"x")
    assert os.listdir(tmp_path) == []
    assert files.write_error(ValueError("x")) is None


def _tmpfs(path, size: str):
    """A small tmpfs mounted at `path` (root only; the test is skipped where mounting is refused)."""
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                       text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill ({r.stderr.strip() or 'not root'}): the injected variant covers it")


def test_a_really_full_disk(tmp_path):
    """The same on a real full file system: a 200 KB tmpfs given 300 KB."""
    small = tmp_path / "small"
    _tmpfs(small, "200k")
    try:
        with pytest.raises(WriteError, match=r"small/big\.bin: cannot write a file \(no space left on the device; "
                                             r"293 KB to write; .* free\)"):
            files.atomic_write_bytes(small / "big.bin", os.urandom(300_000))
        assert os.listdir(small) == []
    finally:
        subprocess.run(["umount", "-l", str(small)], check=False)


# ---- the temp files a killed writer left -------------------------------------------------------------

def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_temp_file_names_its_writer_and_a_dead_writers_are_removed_by_the_next_write(tmp_path):
    own = files.temp_beside(tmp_path / "v.mp4")
    assert own.name.startswith(f".v.{os.getpid()}-") and own.name.endswith(".mp4.part")
    assert files.temp_owner(own.name) == os.getpid() and files.temp_owner(".v.abc.mp4.part") is None
    own.unlink()
    live = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    dead = _dead_pid()
    try:
        names = {"dead": f".v.{dead}-k3j4.mp4.part", "live": f".v.{live.pid}-a1b2.mp4.part",
                 "old format": ".v.x9y8z7.mp4.part", "another file": f".w.{dead}-k3j4.mp4.part",
                 "another suffix": f".v.{dead}-k3j4.srt.part", "a longer name": f".v.x.{dead}-k3j4.mp4.part"}
        for n in names.values():
            (tmp_path / n).write_bytes(b"half")
        files.atomic_write_bytes(tmp_path / "v.mp4", b"video")
        left = sorted(os.listdir(tmp_path))
        assert left == sorted(["v.mp4", *(n for k, n in names.items() if k != "dead")])
        assert files.remove_dead_temps(tmp_path, pid=live.pid) == []  # a live process's file: never
        assert sorted(p.name for p in files.remove_dead_temps(tmp_path)) == sorted(
            n for k, n in names.items() if k not in ("dead", "live", "old format"))
    finally:
        live.stdin.close()
        live.wait(30)


# ---- the first signal decides ------------------------------------------------------------------------

@pytest.fixture
def stop_handlers():
    """files.on_signal for SIGTERM and SIGHUP, with the wakeup pipe main() sets up."""
    old = {s: signal.signal(s, files.on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
    read, write = os.pipe()
    os.set_blocking(read, False)
    files.signal_order(read)
    yield write
    files.signal_order(None)
    os.close(read)
    os.close(write)
    for s, h in old.items():
        signal.signal(s, h)
    files.reset_signals()


def test_the_signal_that_arrived_first_decides_whichever_handler_runs_first(stop_handlers):
    """Python runs waiting handlers by signal number: SIGHUP's (1) before SIGTERM's (15), even
    when SIGTERM came first. The wakeup pipe has the order they came in."""
    os.write(stop_handlers, bytes([signal.SIGTERM, signal.SIGHUP]))  # what the interpreter writes as they arrive
    with pytest.raises(Interrupted) as e:
        files.on_signal(signal.SIGHUP)
    assert e.value.signum == signal.SIGTERM and e.value.exit_code == 143
    assert files.on_signal(signal.SIGTERM) is None  # its own handler, later: ignored


def test_after_the_command_every_signal_is_ignored(stop_handlers):
    files.hold_signals()
    signal.raise_signal(signal.SIGHUP)  # the process is exiting: nothing to stop
    signal.raise_signal(signal.SIGTERM)
