"""What a new user sees in the first hour: every bad value in one message, a mistyped option with
the main command's usage, the models list with its header and the Whisper models, help on every
option, plain words when Whisper cannot be had, the time left of long stages in logs, the Python
API's log_to_stderr, and no stray warning on an excerpt."""
import logging

import click
import pytest

from conftest import SAMPLES, musivid

LIGHT = ["--untrained", "--steps", "1", "--cutouts", "2", "--fps", "2", "--size", "32"]


def test_every_bad_value_is_named_in_one_message(tmp_path):
    r = musivid(SAMPLES / "demo.mp3", SAMPLES / "demo.lrc", "-o", tmp_path / "v.mp4", "--untrained",
                "--fps", "0", "--reactivity", "5")
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "2 bad values" in lines[0], r.stderr
    assert "--fps" in lines[0] and "--reactivity" in lines[0] and "got 0.0" in lines[0] and "got 5.0" in lines[0]
    assert not (tmp_path / "v.musivid").exists()


def test_one_bad_value_keeps_its_message():
    from musivid.cli.options import run_settings
    from musivid.errors import InputError

    with pytest.raises(InputError, match=r"^fps must be in \(0, 240\], got 0.0: pass e.g. --fps 24$"):
        run_settings(fps=0.0)


def test_a_mistyped_option_shows_the_main_usage_and_the_closest_option(tmp_path):
    r = musivid(SAMPLES / "demo.mp3", "--fsp", "4")
    assert r.returncode == 2
    assert "Usage: musivid AUDIO [LYRICS] [OPTIONS]" in r.stderr and "musivid make" not in r.stderr, r.stderr
    assert "Did you mean '--fps'?" in r.stderr and "Try 'musivid --help' for help." in r.stderr, r.stderr


def test_models_list_has_headers_and_the_whisper_models(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path))
    snap = tmp_path / "whisper" / "models--Systran--faster-whisper-base" / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (snap / "model.bin").write_bytes(b"x")
    r = musivid("models", "list")
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert any(ln.startswith("NAME") and "STATE" in ln and "LICENCE" in ln for ln in out), r.stdout
    assert any(ln.startswith("Speech recognition models (Whisper") for ln in out), r.stdout
    rows = {ln[:48].strip(): ln for ln in out}  # by the NAME column
    assert "download" in rows["small"] and "the default" in rows["small"], r.stdout
    assert "cached" in rows["base"], r.stdout  # a model hub download in the cache
    assert any("tiny.en (installed)" in ln and "installed" in ln and "musivid[test]" in ln for ln in out), r.stdout


def test_models_check_does_not_talk_of_offline_mode(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path))
    r = musivid("models", "check")
    assert r.returncode == 1 and "offline" not in r.stderr and "musivid models fetch" in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def all_commands():
    from musivid.cli.main import cli

    def walk(cmd, path):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")

    return list(walk(cli, "musivid"))


def test_every_option_has_help():
    missing = [f"{path} {'/'.join(p.opts)}" for path, cmd in all_commands() for p in cmd.params
               if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()]
    assert not missing, missing


def test_align_overwrite_help_speaks_of_its_own_files():
    from musivid.cli.main import cli

    opt = next(p for p in cli.commands["align"].params if p.name == "overwrite")
    assert "project" not in opt.help and ".lrc" in opt.help


def test_whisper_unavailable_is_one_plain_sentence(monkeypatch, caplog):
    """No exception class names, no host URLs; the fallback and the fix are said."""
    from musivid.song import timing

    class Unreachable(Exception):
        pass

    def fail(model, **kw):
        if kw.get("fallback"):
            return type("W", (), {"name": kw.get("name"), "fallback": True})()
        raise Unreachable("LocalEntryNotFoundError: Got: ConnectError: [Errno -2] Name or service not known "
                          "https://huggingface.co/Systran")

    monkeypatch.setattr(timing, "FasterWhisper", fail)
    monkeypatch.setattr(timing, "installed_base", lambda cache=None: None)  # without musivid[asr-offline]
    with caplog.at_level(logging.WARNING, logger="musivid"):
        tr = timing.load_transcriber("auto", None)
    assert tr.name == "tiny.en"
    msg = caplog.records[-1].getMessage()
    assert msg.startswith("Whisper small is not downloaded and the model hub cannot be reached: using the "
                          "English tiny.en model installed with musivid[test]"), msg
    assert "Error" not in msg and "http" not in msg and "--whisper-model DIR" in msg
    monkeypatch.setattr(timing, "bundled_tiny_en", lambda: None)
    with pytest.raises(timing.ModelUnavailableError) as e:
        timing.load_transcriber("auto", None)
    text = str(e.value)
    assert "Error" not in text and "http" not in text and "--asr none" in text and "no other Whisper" in text, text


def test_a_long_loop_says_its_time_left_in_logs(monkeypatch, caplog):
    """Not a terminal: a line with the time left every REPORT_EVERY_S (a fake clock, no waiting)."""
    from musivid import progress

    now = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    with caplog.at_level(logging.INFO, logger="musivid"):
        with progress.Bar(100, "optimizing", "step") as bar:
            for _ in range(99):
                now[0] += 1.0
                bar.update(1)
    lines = [r.getMessage() for r in caplog.records]
    assert "optimizing: 30/100 steps, about 70 s left" in lines, lines
    assert "optimizing: 60/100 steps, about 40 s left" in lines, lines
    assert lines[-1].startswith("optimizing: 99/100 steps in 99.0 s"), lines


def test_log_to_stderr_shows_musivid_lines_only(capsys):
    import musivid
    from musivid.images.models import clip

    root = logging.getLogger()
    try:
        musivid.log_to_stderr()
        logging.getLogger("musivid.pipeline").info("reading song.mp3")
        logging.getLogger("musivid.pipeline").debug("not shown at INFO")
        logging.getLogger("musivid.x").warning("careful")
        clip.build("ViT-B-32", untrained=False, device="meta")  # open_clip logs to the root logger
        err = capsys.readouterr().err
        assert err.splitlines() == ["musivid: reading song.mp3", "musivid: warning: careful"], err
        seen = []
        handler = logging.Handler()
        handler.emit = seen.append
        root.addHandler(handler)
        old = root.level
        root.setLevel(logging.INFO)
        try:
            clip.build("ViT-B-32", untrained=False, device="meta")
        finally:
            root.removeHandler(handler)
            root.setLevel(old)
        assert not [r for r in seen if "open_clip" in r.pathname], [r.getMessage() for r in seen]
    finally:
        lg = logging.getLogger("musivid")
        for h in [h for h in lg.handlers if type(h).__name__ == "_StderrLines"]:
            lg.removeHandler(h)
        lg.setLevel(logging.NOTSET)
        lg.propagate = True


def test_an_excerpt_without_the_intro_says_nothing_of_the_title_image(tmp_path):
    """`--start 20 --duration 5`: the intro is not in the excerpt, so its title image is neither
    optimized nor warned about."""
    r = musivid(SAMPLES / "demo.mp3", SAMPLES / "demo.lrc", "-o", tmp_path / "x.mp4", "--start", "20",
                "--duration", "5", *LIGHT)
    assert r.returncode == 0, r.stderr
    assert "title image" not in r.stderr and "not optimized" not in r.stderr, r.stderr
