"""The multilingual Whisper base of musivid[asr-offline]: its parts joined once into the cache
(verified, reused, a partial join redone), used by itself when the model hub cannot be had, and
one plain line when it is not installed. No network: every connection is refused."""
import logging

import pytest

from conftest import SAMPLES, musivid, no_network
from musivid.errors import ModelUnavailableError
from musivid.files import sha256_file
from musivid.song import timing, whisper_models as wm


@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    """Two small installed 'parts' and their json files, with the checksum of their join: the
    join's logic on a few bytes instead of 145 MB."""
    import hashlib

    src = tmp_path / "site"
    src.mkdir()
    a, b = src / "model.bin.part1", src / "model.bin.part2"
    a.write_bytes(b"first part " * 1000)
    b.write_bytes(b"second part " * 700)
    files = []
    for n in wm.JSON_FILES:
        (src / n).write_text(f'{{"name": "{n}"}}')
        files.append(src / n)
    whole = a.read_bytes() + b.read_bytes()
    monkeypatch.setattr(wm, "BASE_SHA256", hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(wm, "BASE_BYTES", len(whole))
    parts = wm.BaseParts((a, b), tuple(files))
    monkeypatch.setattr(wm, "installed_base_parts", lambda: parts)
    return parts, whole


def leftovers(d):
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".part"))


def test_the_parts_are_joined_once_verified_and_reused(tmp_path, fake_parts, monkeypatch):
    parts, whole = fake_parts
    cache = tmp_path / "cache"
    d = wm.installed_base(cache)
    assert d == cache / f"installed-base-{wm.BASE_SHA256[:8]}"
    assert (d / "model.bin").read_bytes() == whole and sha256_file(d / "model.bin") == wm.BASE_SHA256
    assert all((d / n).read_text() == (parts.files[0].parent / n).read_text() for n in wm.JSON_FILES)
    assert leftovers(d) == []
    # reused as it is: no second join
    monkeypatch.setattr(wm, "join_base", lambda *a: pytest.fail("joined again although the join verifies"))
    assert wm.installed_base(cache) == d


@pytest.mark.parametrize("damage", ["truncated", "corrupt", "json missing"])
def test_a_partial_or_corrupt_join_is_redone(tmp_path, fake_parts, damage, caplog):
    parts, whole = fake_parts
    cache = tmp_path / "cache"
    d = wm.installed_base(cache)
    model = d / "model.bin"
    if damage == "truncated":  # e.g. copied by hand, cut short
        model.write_bytes(whole[: len(whole) // 2])
    elif damage == "corrupt":  # the right size, the wrong bytes
        model.write_bytes(b"x" * len(whole))
    else:
        (d / "tokenizer.json").unlink()
    assert not wm.joined_ok(d)
    with caplog.at_level(logging.INFO, logger="musivid"):
        assert wm.installed_base(cache) == d
    assert model.read_bytes() == whole and (d / "tokenizer.json").is_file() and wm.joined_ok(d)
    assert leftovers(d) == []


def test_damaged_installed_parts_are_one_line_and_leave_no_model(tmp_path, fake_parts):
    parts, whole = fake_parts
    parts.parts[1].write_bytes(b"Y" * (len(whole) - parts.parts[0].stat().st_size))  # same size, other bytes
    cache = tmp_path / "cache"
    with pytest.raises(ModelUnavailableError) as e:
        wm.installed_base(cache)
    msg = str(e.value)
    assert "\n" not in msg and "pip install --force-reinstall 'musivid[asr-offline]'" in msg, msg
    d = wm.base_dir(cache)
    assert not (d / "model.bin").exists() and leftovers(d) == []


def test_nothing_installed_and_nothing_joined_is_none(tmp_path, monkeypatch):
    monkeypatch.setattr(wm, "installed_base_parts", lambda: None)
    assert wm.installed_base(tmp_path / "cache") is None


def test_the_real_parts_are_found_and_join_to_the_pinned_model(whisper_base):
    """The test dependency (musivid[asr-offline]) is installed and the conftest's model is the
    product's join."""
    parts = wm.installed_base_parts()
    assert parts is not None and sum(p.stat().st_size for p in parts.parts) == wm.BASE_BYTES
    assert whisper_base.name == f"installed-base-{wm.BASE_SHA256[:8]}"
    assert (whisper_base / "model.bin").stat().st_size == wm.BASE_BYTES
    assert sha256_file(whisper_base / "model.bin") == wm.BASE_SHA256


# ---- used by itself when the model hub cannot be had ---------------------------------------------

@pytest.mark.parametrize("offline", [True, False])
def test_whisper_model_base_without_the_hub_uses_the_installed_base(whisper_base, offline, monkeypatch, caplog):
    """Offline mode, or no network at all: `--whisper-model base` is the installed base, said in one
    info line; no host is asked when offline. (`cache`: where the tests keep the joined base, so
    it is found verified, not joined again.)"""
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    tried = no_network(monkeypatch)
    with caplog.at_level(logging.INFO, logger="musivid"):
        tr = timing.load_transcriber("faster-whisper", "base", offline=offline, cache=whisper_base.parent)
    assert tr.name == "base (installed)" and not tr.english_only and not tr.fallback
    said = [r for r in caplog.records if "installed with musivid[asr-offline]" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.INFO, [r.getMessage() for r in caplog.records]
    msg = said[0].getMessage()
    assert msg.startswith("Whisper base is not in the cache and cannot be downloaded ("), msg
    assert "Error" not in msg and "http" not in msg
    if offline:
        assert tried == []


def test_the_default_without_the_hub_falls_back_to_the_installed_base(whisper_base, monkeypatch, caplog):
    """Whisper small cannot be had: the multilingual base stands in (not the English-only tiny.en)."""
    no_network(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="musivid"):
        tr = timing.load_transcriber("auto", None, offline=True, cache=whisper_base.parent)
    assert tr.name == "base (installed)" and not tr.english_only and tr.fallback
    msg = caplog.records[-1].getMessage()
    assert msg.startswith("Whisper small is not downloaded and offline mode is on: using the multilingual base "
                          "installed with musivid[asr-offline]"), msg


def no_installed_base(monkeypatch):
    monkeypatch.setattr(wm, "installed_base_parts", lambda: None)
    monkeypatch.setattr(timing, "installed_base_parts", lambda: None)


@pytest.mark.parametrize("offline", [True, False])
def test_without_the_extra_it_is_one_plain_line_naming_the_extra(tmp_path, offline, monkeypatch):
    no_installed_base(monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    no_network(monkeypatch)
    with pytest.raises(ModelUnavailableError) as e:
        timing.load_transcriber("faster-whisper", "base", offline=offline, cache=tmp_path / "whisper")
    msg = str(e.value)
    where = "offline mode is on" if offline else "the model hub cannot be reached"
    assert msg == (f"--whisper-model base: Whisper base is not in the cache and cannot be downloaded ({where}): "
                   "pip install 'musivid[asr-offline]' installs a multilingual model, or pass --whisper-model DIR "
                   "with a CTranslate2 Whisper model"), msg


def test_another_name_offline_points_to_the_installed_base(tmp_path, monkeypatch):
    no_network(monkeypatch)
    with pytest.raises(ModelUnavailableError) as e:
        timing.load_transcriber("faster-whisper", "medium", offline=True, cache=tmp_path / "whisper")
    msg = str(e.value)
    assert "--whisper-model base uses the multilingual base installed with musivid[asr-offline]" in msg, msg
    assert "\n" not in msg and "Error" not in msg and "http" not in msg


def test_the_cli_says_one_line_without_the_extra(tmp_path, monkeypatch):
    no_installed_base(monkeypatch)
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path / "cache"))
    tried = no_network(monkeypatch)
    r = musivid("align", SAMPLES / "demo.mp3", SAMPLES / "demo.txt", "-o", tmp_path / "a.lrc", "--offline",
                "--whisper-model", "base")
    assert r.returncode == 1, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "error" in ln]  # besides "reading demo.mp3"
    assert len(lines) == 1, r.stderr
    assert "pip install 'musivid[asr-offline]'" in lines[0] and "--whisper-model DIR" in lines[0], r.stderr
    assert "Error" not in lines[0] and "http" not in lines[0] and "Traceback" not in r.stderr
    assert tried == [] and not (tmp_path / "a.lrc").exists()


def test_models_list_shows_the_installed_base_as_usable(tmp_path, monkeypatch):
    monkeypatch.setenv("MUSIVID_CACHE", str(tmp_path))
    r = musivid("models", "list")
    assert r.returncode == 0, r.stderr
    rows = {ln[:48].strip(): ln for ln in r.stdout.splitlines()}
    row = rows.get("base (installed)")
    assert row is not None and "installed" in row and "musivid[asr-offline]" in row, r.stdout
    assert "--whisper-model base" in row and "tests" not in row, row
    no_installed_base(monkeypatch)
    r = musivid("models", "list")
    assert "base (installed)" not in r.stdout
