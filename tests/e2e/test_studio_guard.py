"""musivid studio tried adversarially, over plain HTTP: requests naming another host (DNS
rebinding), bodies too large to take, NaN and infinity, malformed requests, a project another
process is writing; every refusal a 4xx with a one-line JSON {"error"}, never an echo of what was
sent. And the command: the main command's options, a project that cannot be opened or made stops
it with the message, a project that can is made and served."""
import asyncio
import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import SONGS, hold_job, musivid, write_audio
from musivid.studio import MakeRequest, Studio, running, serve
from test_studio_http import Client

BIG = 10 << 20  # a 10 MB body


@pytest.fixture
def studio(project_copy):
    s = Studio(project_copy)
    with running(s, begin=False) as url:
        yield s, Client(url)


def picked(root: Path) -> dict:
    return json.loads((root / "project.json").read_text())["picked"]


def error_of(status: int, body: bytes) -> str:
    """The documented error shape: a 4xx, JSON {"error": one short line}, nothing else."""
    assert 400 <= status < 500, (status, body[:200])
    data = json.loads(body)
    assert set(data) == {"error"}, data
    msg = data["error"]
    assert isinstance(msg, str) and msg and "\n" not in msg and len(msg) < 400, msg[:400]
    return msg


# ---- Host header ---------------------------------------------------------------------------------

def test_a_request_naming_another_host_is_refused_even_with_token_and_origin(studio):
    s, c = studio
    evil = f"evil.example:{c.port}"
    for method, path, body in (("GET", "/api/state", None), ("GET", "/", None),
                               ("POST", "/api/pick", {"line": 2, "variant": 1})):
        status, headers, raw = c.request(method, path, body, headers={"Host": evil, "Origin": f"http://{evil}"})
        msg = error_of(status, raw)
        assert status == 421 and "421 misdirected request" in msg and "evil.example" in msg
        assert "set-cookie" not in {k.lower() for k in headers}
    # the address it listens on, by any loopback name, with its port: accepted
    for host in (f"127.0.0.1:{c.port}", f"localhost:{c.port}", f"LOCALHOST:{c.port}", f"[::1]:{c.port}"):
        assert c.get("/api/state", headers={"Host": host})[0] == 200, host
    status, _, raw = c.post("/api/pick", {"line": 2, "variant": 1},
                            headers={"Host": f"localhost:{c.port}", "Origin": f"http://localhost:{c.port}"})
    assert status == 200, raw
    # the wrong port, no port, a name that merely starts like ours, garbage: refused
    for host in (f"127.0.0.1:{c.port + 1}", "127.0.0.1", f"localhost.evil.example:{c.port}",
                 f"127.0.0.1.nip.io:{c.port}", "", "[::1", "x" * 5000):
        status, _, raw = c.get("/api/state", headers={"Host": host})
        assert status == 421 and len(raw) < 500, (host, status)


def test_allowed_hosts_by_bind_address():
    from musivid.studio.access import allowed_hosts

    loop = allowed_hosts("127.0.0.1", 8765)
    assert all(loop.allows(h) for h in ("127.0.0.1:8765", "localhost:8765", "[::1]:8765"))
    assert not any(loop.allows(h) for h in ("192.168.1.10:8765", "evil.example:8765", "localhost:80", None))
    lan = allowed_hosts("192.168.1.10", 8765)
    assert lan.allows("192.168.1.10:8765") and not lan.allows("localhost:8765") and not lan.allows("evil.example:8765")
    anywhere = allowed_hosts("0.0.0.0", 8765)  # every address: any IP (a rebinding needs a name), no other name
    assert anywhere.allows("10.1.2.3:8765") and anywhere.allows("[fe80::1]:8765") and anywhere.allows("localhost:8765")
    assert not anywhere.allows("evil.example:8765")
    assert allowed_hosts("::1", 80).allows("[::1]") and allowed_hosts("::1", 80).allows("localhost")


# ---- request bodies ----------------------------------------------------------------------------------

def raw_post(c: Client, path: str, chunks, length: int | None):
    conn = http.client.HTTPConnection(c.host, c.port, timeout=120)
    headers = {"X-Musivid-Token": c.token, "Content-Type": "application/json"}
    if length is None:
        conn.request("POST", path, body=chunks, headers=headers, encode_chunked=True)
    else:
        conn.putrequest("POST", path)
        for k, v in (headers | {"Content-Length": str(length)}).items():
            conn.putheader(k, v)
        conn.endheaders()
        try:
            for chunk in chunks:
                conn.send(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer before it has all: the answer is what counts
    r = conn.getresponse()
    out = r.status, r.read()
    conn.close()
    return out


def test_a_body_over_the_limit_is_refused_with_413_and_a_short_answer(studio):
    s, c = studio
    text = "x" * (BIG - 40)
    body = json.dumps({"line": 1, "variant": 0, "all_repeats": text}).encode()
    # with a Content-Length: refused from the header
    status, raw = raw_post(c, "/api/pick", [body[i:i + (1 << 20)] for i in range(0, len(body), 1 << 20)], len(body))
    msg = error_of(status, raw)
    assert status == 413 and "at most 4 MB" in msg and len(raw) < 300
    # chunked (no length): refused once the bytes read pass the limit
    status, raw = raw_post(c, "/api/jobs", (body[i:i + (1 << 16)] for i in range(0, len(body), 1 << 16)), None)
    assert status == 413 and len(raw) < 300, raw[:300]
    # the server still answers, and nothing changed
    assert c.get("/api/state")[0] == 200 and picked(s.root) == {}
    # a body under the limit, however odd, gets an answer about its content (and no echo of it)
    status, _, raw = c.post("/api/pick", {"line": 2, "variant": 1, "pad": "y" * (1 << 20)})
    assert status == 200, raw[:300]


def test_the_body_limit_reads_no_further_than_the_limit():
    """Counted, not timed: an endless chunked body is read up to the limit (one chunk past it) and
    answered 413; the app behind never sees a complete body."""
    from musivid.studio.guard import BodyLimit

    chunk, limit, reads, sent = b"z" * 65536, 1 << 20, [], []

    async def receive():
        reads.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        sent.append(message)

    async def app(scope, receive, send):  # like FastAPI: read the whole body, then answer
        while (await receive()).get("more_body"):
            pass
        raise AssertionError("the app read a whole endless body")

    asyncio.run(BodyLimit(app, limit)({"type": "http", "headers": []}, receive, send))
    assert sum(reads) == limit + len(chunk)
    assert sent[0]["status"] == 413 and json.loads(sent[1]["body"])["error"].startswith("413")
    sent.clear()
    asyncio.run(BodyLimit(app, limit)({"type": "http", "headers": [(b"content-length", str(BIG).encode())]},
                                      receive, send))
    assert sent[0]["status"] == 413 and sum(reads) == limit + len(chunk)  # refused from the header: nothing read


# ---- what is in a body -----------------------------------------------------------------------------

def test_nan_and_infinity_are_refused(studio):
    s, c = studio
    edits = json.loads((s.root / "project.json").read_text()).get("edits")
    for body in ({"line": 4, "start": float("nan")}, {"line": 4, "start": float("inf")},
                 {"line": 4, "start": float("-inf")}, {"line": float("nan"), "start": 13.0}):
        status, _, raw = c.post("/api/retime", body)  # json.dumps writes NaN / Infinity, as Python's reader takes
        msg = error_of(status, raw)
        assert status == 422 and ("finite" in msg or "integer" in msg), msg
    conn = http.client.HTTPConnection(c.host, c.port, timeout=30)
    conn.request("POST", "/api/retime", body=b'{"line": 4, "start": 1e999}',
                 headers={"X-Musivid-Token": c.token, "Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 422 and "finite" in error_of(r.status, r.read())
    conn.close()
    for body in ({"line": 2, "variant": float("nan")}, {"kind": "variants", "line": 2, "count": float("inf")}):
        path = "/api/pick" if "variant" in body else "/api/jobs"
        status, _, raw = c.post(path, body)
        assert status == 422, raw
        error_of(status, raw)
    assert json.loads((s.root / "project.json").read_text()).get("edits") == edits and picked(s.root) == {}
    assert s.jobs.current is None


def test_every_error_is_one_json_line_without_an_echo(studio):
    s, c = studio
    long = "q" * 100_000
    cases = [
        ("POST", "/api/pick", {"line": "two", "variant": 0}, 422, "line"),
        ("POST", "/api/pick", {"line": long, "variant": 0}, 422, "line"),
        ("POST", "/api/pick", {"variant": 0}, 422, "line: Field required"),
        ("POST", "/api/pick", [1, 2], 422, "/api/pick"),
        ("POST", "/api/retime", {"line": 1, "start": "soon"}, 422, "start"),
        ("POST", "/api/jobs", {"kind": "rewrite", "line": 1, "text": long}, 422, "text"),
        ("POST", "/api/jobs", {"kind": long}, 422, "kind"),
        ("POST", "/api/jobs", {"kind": "rm -rf"}, 400, "not a job"),
        ("POST", "/api/jobs", {"kind": "variants"}, 400, "needs a line number"),
        ("POST", "/api/pick", {"line": 99, "variant": 0}, 400, "lines 1 to 8"),
        ("GET", "/api/nothing-here", None, 404, "no such page"),
        ("GET", "/static/nothing.js", None, 404, "no such page"),
        ("GET", "/files/" + "a" * 5000 + ".png", None, 404, "no such file"),
        ("GET", "/api/pick", None, 405, "not allowed"),
        ("DELETE", "/api/state", None, 405, "not allowed"),
    ]
    for method, path, body, want, words in cases:
        status, _, raw = c.request(method, path, body)
        msg = error_of(status, raw)
        assert status == want and words in msg, (path, body if body is None or len(str(body)) < 80 else "...", msg)
        assert "q" * 50 not in msg and "a" * 100 not in msg and "detail" not in raw.decode()
    # not JSON at all
    conn = http.client.HTTPConnection(c.host, c.port, timeout=30)
    conn.request("POST", "/api/pick", body=b"{line: 1,", headers={"X-Musivid-Token": c.token,
                                                                   "Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 422 and "not valid JSON" in error_of(r.status, r.read())
    conn.close()
    # refusals before the API: no token, another origin
    assert "access token" in error_of(*c.get("/api/state", token=False)[::2])
    assert "may not change" in error_of(*c.post("/api/pick", {"line": 1, "variant": 0},
                                                 headers={"Origin": "http://evil.example"})[::2])
    assert picked(s.root) == {}


# ---- busy ------------------------------------------------------------------------------------------

def test_a_busy_project_answers_409_on_every_write(studio, monkeypatch):
    s, c = studio
    from musivid.project import locked

    before = (s.root / "project.json").read_bytes()
    writes = [("/api/pick", {"line": 2, "variant": 1}), ("/api/retime", {"line": 4, "start": 13.0}),
              ("/api/jobs", {"kind": "render"}), ("/api/jobs", {"kind": "variants", "line": 3, "count": 1}),
              ("/api/jobs", {"kind": "rewrite", "line": 3, "text": "a new line"}),
              ("/api/jobs", {"kind": "optimize"}), ("/api/jobs", {"kind": "thumbnails"})]
    with locked(s.root):  # another command (here: this process, through another lock) writes the project
        for path, body in writes:
            status, _, raw = c.post(path, body)
            msg = error_of(status, raw)
            assert status == 409 and f"PID {os.getpid()}" in msg, (path, msg)
    assert s.jobs.current is None  # no job was started to fail later
    assert (s.root / "project.json").read_bytes() == before
    # a job of the studio's own running: every write is 409 too, naming the job
    reached, release = hold_job(monkeypatch, s, lambda stage, done, total: stage == "render")
    assert c.post("/api/jobs", {"kind": "render"})[0] == 202
    try:
        assert reached.wait(300)
        for path, body in writes:
            status, _, raw = c.post(path, body)
            msg = error_of(status, raw)
            assert status == 409 and ("rendering the video" in msg), (path, msg)
    finally:
        c.post("/api/cancel", {})
        release.set()
    assert c.wait_job()["state"] == "cancelled"
    assert c.post("/api/pick", {"line": 2, "variant": 1})[0] == 200  # free again


# ---- the command ---------------------------------------------------------------------------------

def german_excerpt(tmp_path: Path) -> tuple[Path, Path]:
    """The first 13 s of samples/songs/de_spoken (German lyrics, spoken over music) and its 3 lines."""
    from musivid.song.audio import decode

    a = decode(SONGS / "de_spoken.mp3", 22050)
    audio = write_audio(tmp_path / "lied.wav", a.samples[: int(13 * a.sample_rate)], a.sample_rate)
    lyrics = tmp_path / "lied.txt"
    lyrics.write_text("\n".join((SONGS / "de_spoken.txt").read_text(encoding="utf-8").splitlines()[:3]) + "\n",
                      encoding="utf-8")
    return audio, lyrics


def test_the_studio_takes_the_main_commands_options(tiny_project, tmp_path):
    for args, named in ((["--whisper-model", "base"], "--whisper-model"), (["--clip", "ViT-B-32/openai"], "--clip"),
                        (["--asr", "none"], "--asr"), (["--captions", "karaoke"], "--captions"),
                        (["--captions"], "--captions"), (["--reactivity", "0.2"], "--reactivity"),
                        (["--accept-truncated"], "--accept-truncated")):
        r = musivid("studio", tiny_project, *args)
        assert r.returncode == 2 and f"{named} only apply when the studio makes a project from AUDIO" in r.stderr, r
    r = musivid("studio", tmp_path / "x.mp3", "--captions", "loud")
    assert r.returncode == 2 and "'loud' is not one of 'line', 'karaoke', 'none'" in r.stderr, r.stderr
    r = musivid("studio", tmp_path / "x.mp3", "--reactivity", "nan")
    assert r.returncode == 2 and "not a finite number" in r.stderr, r.stderr
    r = musivid("studio", "--help")
    for opt in ("--whisper-model", "--clip", "--asr", "--captions", "--biggan", "--seed", "--accept-truncated"):
        assert opt in r.stdout, opt


def test_a_damaged_project_stops_the_command_before_serving(project_copy):
    (project_copy / "project.json").write_text('{"version": 1, "latents": {', encoding="utf-8")
    r = musivid("studio", project_copy, "--port", "0")
    assert r.returncode == 2 and "damaged or truncated project file" in r.stderr
    assert "http://" not in r.stdout  # never served


def test_a_song_that_cannot_be_decoded_stops_the_command_with_the_message(tmp_path):
    bad = tmp_path / "bad_noise.mp3"
    bad.write_text("this is a text file, not an mp3\n" * 200)
    lyrics = tmp_path / "bad_noise.txt"
    lyrics.write_text("a line\n")
    r = musivid("studio", bad, lyrics, "--untrained", "--port", "0")  # served until its grace period ends
    assert r.returncode == 2, (r.returncode, r.stderr)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("musivid: error:")]
    assert len(errors) == 1 and "bad_noise.mp3" in errors[0], r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "bad_noise.musivid").exists()


def serve_in_thread(studio: Studio):
    """serve() as the command runs it, in a thread: (Client, thread, outcome) where outcome gets
    "error" when serve raises. The grace period is long: the server stops when a page has seen."""
    urls, outcome = queue.Queue(), {}

    def run():
        try:
            serve(studio, port=0, on_ready=urls.put, grace=600)
        except BaseException as e:  # noqa: BLE001 - what the command would report
            outcome["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return Client(urls.get(timeout=120)), t, outcome


def test_a_failed_make_is_shown_then_the_studio_stops_and_raises_it(tmp_path, tiny_en):
    """issue 27: German lyrics and an English-only Whisper: the page's state says why and that the
    studio stops; once the page has fetched it, serve() ends and raises the same error."""
    from musivid.config import ModelConfig, OptimizeConfig, RunSettings, TimingConfig
    from musivid.errors import InputError

    audio, lyrics = german_excerpt(tmp_path)
    settings = RunSettings(optimize=OptimizeConfig(steps=1, variants=1, cutouts=2), models=ModelConfig(untrained=True),
                           timing=TimingConfig(whisper_model=str(tiny_en)), device="cpu")
    studio = Studio(tmp_path / "lied.musivid", make=MakeRequest(audio, lyrics, settings))
    c, thread, outcome = serve_in_thread(studio)
    try:
        job = c.wait_job()
        assert job["kind"] == "make" and job["state"] == "failed"
        assert "hears English only" in job["message"] and "--whisper-model base" in job["message"]
        state = json.loads(c.get("/api/state")[2])
        assert "the studio stops" in state["stopping"]
        assert thread.is_alive()  # still serving: the page has not fetched the project yet
        assert json.loads(c.get("/api/project")[2])["exists"] is False
        thread.join(120)
        assert not thread.is_alive()
    finally:
        studio.failure_shown.set()
    err = outcome.get("error")
    assert isinstance(err, InputError) and str(err) == job["message"]


@pytest.mark.slow  # ~20-45 s: `make test-all` (the suite must stay under 5 minutes on 2 cores)
def test_the_studio_makes_and_serves_a_project_with_the_whisper_model_given(tmp_path, whisper_base):
    """issue 27: `musivid studio SONG LYRICS --whisper-model DIR --untrained` (German lyrics):
    the project is made, with the options given, and served until Ctrl-C."""
    audio, lyrics = german_excerpt(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "musivid", "studio", str(audio), str(lyrics), "--whisper-model",
                             str(whisper_base), "--untrained", "--steps", "1", "--variants", "1", "--cutouts", "2",
                             "--captions", "karaoke", "--asr", "faster-whisper", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        line = proc.stdout.readline()
        assert line.startswith("musivid studio: http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
        c = Client(line.split(": ", 1)[1].strip())
        job = c.wait_job(600)
        assert job["kind"] == "make" and job["state"] == "done", job
        assert any("aligning 3 lyric lines" in m and whisper_base.name in m for m in job["log"]), job["log"]
        p = json.loads(c.get("/api/project")[2])
        assert [li["text"] for li in p["lines"]] == lyrics.read_text(encoding="utf-8").splitlines()
        assert p["settings"]["captions"] == "karaoke" and p["settings"]["steps"] == 1 and p["untrained"]
        assert all(len(li["variants"]) == 1 for li in p["lines"])
        assert proc.poll() is None  # still serving
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 130
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
