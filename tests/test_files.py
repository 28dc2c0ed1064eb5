"""files.py: atomic writes under signals, the signal handler the CLI installs, same-file checks."""
import os
import signal

import pytest

from musivid import files
from musivid.errors import Interrupted


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
