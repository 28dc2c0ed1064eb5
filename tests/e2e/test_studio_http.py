"""musivid studio over plain HTTP: the token on every request, only the project's own files (no
traversal, no other project, no symlink out), the JSON API's answers and errors, one job at a
time, cancelling, and the command that serves it."""
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import SAMPLES, hold_job, musivid
from musivid.studio import Studio, running


class Client:
    """Raw HTTP (http.client sends the path exactly as given: no client-side normalisation of `..`)."""

    def __init__(self, url: str):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port
        self.token = urllib.parse.parse_qs(u.query)["token"][0]

    def request(self, method: str, path: str, body=None, token: bool | str = True, headers=None):
        h = dict(headers or {})
        if token:
            h["X-Musivid-Token"] = self.token if token is True else token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        c = http.client.HTTPConnection(self.host, self.port, timeout=30)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        out = r.status, dict(r.getheaders()), r.read()
        c.close()
        return out

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def wait_job(self, timeout: float = 300.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = json.loads(self.get("/api/state")[2])["job"]
            if job and job["state"] != "running":
                return job
            time.sleep(0.1)
        raise AssertionError("the job did not end")


@pytest.fixture
def studio(project_copy):
    s = Studio(project_copy)
    with running(s, begin=False) as url:
        yield s, Client(url)


def test_every_request_needs_the_token(studio):
    s, c = studio
    for path in ("/", "/api/project", "/api/state", "/static/studio.js", "/media/audio", "/files/storyboard.png",
                 "/nonexistent", "/files/../../etc/passwd"):
        for token in (False, "wrong", s.token[:-1], ""):
            status, _, body = c.get(path, token=token)
            assert status == 403, (path, token)
            assert b"access token" in body
    for token in (False, "wrong"):
        status, _, _ = c.post("/api/pick", {"line": 1, "variant": 0}, token=token)
        assert status == 403
    assert json.loads((s.root / "project.json").read_text())["picked"] == {}  # nothing changed
    assert c.get("/", token=False, headers={"Authorization": f"token {s.token}"})[0] == 200
    # the URL's token becomes a cookie for this port only, which the page's own requests then carry
    status, headers, body = c.get(f"/?token={s.token}", token=False)
    assert status == 200 and b"musivid studio" in body
    cookie = headers["set-cookie"]
    assert f"musivid-studio-{c.port}={s.token}" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert c.get("/api/state", token=False, headers={"Cookie": cookie.split(";")[0]})[0] == 200


def test_only_the_projects_own_files_are_served(studio, tmp_path):
    s, c = studio
    root = s.root
    thumb = next((root / "thumbs").iterdir())
    status, headers, body = c.get(f"/files/thumbs/{thumb.name}")
    assert status == 200 and headers["content-type"] == "image/png" and body == thumb.read_bytes()
    assert c.get("/files/storyboard.png")[0] == 200
    # another project beside this one, a secret next to it, a symlink out of the project
    other = tmp_path / "other.musivid" / "thumbs"
    other.mkdir(parents=True)
    (other / "x.png").write_bytes(b"\x89PNG other project")
    (tmp_path / "secret.png").write_bytes(b"\x89PNG secret")
    (root / "thumbs" / "evil.png").symlink_to(tmp_path / "secret.png")
    (root / "thumbs" / ".half.png.part").write_bytes(b"\x89PNG temp")
    bad = ["/files/project.json", "/files/latents/" + next((root / "latents").iterdir()).name, "/files/rhythm.npz",
           "/files/thumbs/nope.png", "/files/thumbs", "/files/", "/files/thumbs/evil.png", "/files/thumbs/.half.png.part",
           "/files/../secret.png", "/files/%2e%2e/secret.png", "/files/..%2fsecret.png", "/files/..%2Fsecret.png",
           "/files/thumbs/..%2f..%2fsecret.png", "/files/thumbs/../../other.musivid/thumbs/x.png",
           "/files/%2E%2E%2Fother.musivid%2Fthumbs%2Fx.png", "/files/..%5csecret.png", "/files/..\\secret.png",
           f"/files/{tmp_path}/secret.png", f"/files/%2F{str(tmp_path).lstrip('/')}/secret.png",
           "/files//etc/passwd", "/files/%2fetc%2fpasswd", "/files/thumbs/%00.png", "/files/%252e%252e/secret.png",
           "/media/../secret.png", "/media/lyrics", "/media/video", "/api/../files/../secret.png"]
    for path in bad:
        status, _, body = c.get(path)
        assert status == 404, (path, status)
        assert b"PNG secret" not in body and b"PNG other project" not in body, path


def test_the_song_is_served_with_ranges_for_seeking(studio):
    s, c = studio
    song = (SAMPLES / "demo.mp3").read_bytes()
    status, headers, body = c.get("/media/audio")
    assert status == 200 and body == song and headers["content-type"] == "audio/mpeg"
    status, headers, body = c.get("/media/audio", headers={"Range": "bytes=1000-1999"})
    assert status == 206 and body == song[1000:2000]


def test_the_project_document(studio):
    s, c = studio
    status, _, body = c.get("/api/project")
    p = json.loads(body)
    assert status == 200 and p["exists"] and p["untrained"] and "UNTRAINED" in p["untrained_note"]
    assert [li["text"] for li in p["lines"]] == [li.split("]", 1)[1] for li in
                                                 (SAMPLES / "demo.lrc").read_text().splitlines() if li.startswith("[0")]
    assert all(len(li["variants"]) == 2 and all(v["thumb"] for v in li["variants"]) for li in p["lines"])
    assert p["lines"][0]["start"] == 1.8 and abs(p["duration"] - 31.2) < 0.1 and len(p["beats"]) > 20
    assert p["audio"]["name"] == "demo.mp3" and p["video"] is None and p["missing_lines"] == []


def test_quick_actions_and_their_errors(studio):
    s, c = studio
    status, _, body = c.post("/api/pick", {"line": 2, "variant": 1})
    assert status == 200, body
    assert json.loads((s.root / "project.json").read_text())["picked"] == {"waves crash on a golden beach": 1}
    status, _, body = c.post("/api/pick", {"line": 2, "variant": 7})
    assert status == 400 and "has variants [0, 1]" in json.loads(body)["error"]
    status, _, body = c.post("/api/pick", {"line": 99, "variant": 0})
    assert status == 400 and "lines 1 to 8" in json.loads(body)["error"]
    status, _, body = c.post("/api/retime", {"line": 4, "start": 1.0})
    assert status == 400 and "lines keep their order" in json.loads(body)["error"]
    status, _, body = c.post("/api/retime", {"line": 4, "start": 13.0})
    assert status == 200 and json.loads(body)["start"] == 13.0
    assert c.post("/api/pick", {"line": "two", "variant": 0})[0] == 422
    assert c.post("/api/jobs", {"kind": "rm -rf"})[0] == 400
    # a write from another origin (a page elsewhere that learnt the port) is refused
    status, _, _ = c.post("/api/pick", {"line": 2, "variant": 0}, headers={"Origin": "http://evil.example"})
    assert status == 403
    assert json.loads((s.root / "project.json").read_text())["picked"] == {"waves crash on a golden beach": 1}


def test_one_job_at_a_time_cancel_keeps_finished_work_and_models_stay_loaded(studio, monkeypatch):
    s, c = studio
    reached, release = hold_job(monkeypatch, s, lambda stage, done, total: stage == "optimize" and done >= 1)
    latents = sorted(p.name for p in (s.root / "latents").iterdir())
    status, _, body = c.post("/api/jobs", {"kind": "variants", "line": 3, "count": 6})
    assert status == 202 and json.loads(body)["state"] == "running"
    status, _, body = c.post("/api/jobs", {"kind": "render"})  # a second job: refused, naming the first
    assert status == 409 and "re-rolling line 3" in json.loads(body)["error"]
    assert c.post("/api/pick", {"line": 1, "variant": 0})[0] == 409
    assert reached.wait(300)  # held at its first optimizer step: there is work to keep
    job = json.loads(c.get("/api/state")[2])["job"]
    assert job["state"] == "running"
    assert json.loads(c.post("/api/cancel", {})[2])["cancelled"]["id"] == job["id"]
    release.set()
    job = c.wait_job()
    assert job["state"] == "cancelled" and "kept" in job["message"]
    assert sorted(p.name for p in (s.root / "latents").iterdir()) == latents  # no half-made variant
    import torch

    step = torch.load(s.root / "checkpoint.pt", weights_only=True)["state"]["step"]
    assert step == 1  # cancelled at the report of step 1: that step is kept
    # the same re-roll again continues from the checkpoint, and no model is loaded again
    assert c.post("/api/jobs", {"kind": "variants", "line": 3, "count": 6})[0] == 202
    job = c.wait_job()
    assert job["state"] == "done", job
    assert any(f"resuming from checkpoint at step {step}/3" in m for m in job["log"]), job["log"]
    assert not any("loading" in m for m in job["log"]), job["log"]
    p = json.loads(c.get("/api/project")[2])
    assert [v["variant"] for v in p["lines"][2]["variants"]] == list(range(8))
    assert not (s.root / "checkpoint.pt").exists()


def test_a_cancelled_render_leaves_no_video_and_the_project_as_it_was(studio, monkeypatch):
    s, c = studio
    reached, release = hold_job(monkeypatch, s, lambda stage, done, total: stage == "render" and 0 < done < total)
    before = (s.root / "project.json").read_bytes()
    assert c.post("/api/jobs", {"kind": "render"})[0] == 202
    assert reached.wait(300)  # held mid-render: some frames are encoded
    c.post("/api/cancel", {})
    release.set()
    assert c.wait_job()["state"] == "cancelled"
    out = s.root.with_suffix(".mp4")
    assert not out.exists() and not list(out.parent.glob(".song.*"))  # no partial or temporary file
    assert json.loads((s.root / "project.json").read_bytes()) == json.loads(before)
    assert c.get("/media/video")[0] == 404


def test_loopback_hosts():
    from musivid.studio.access import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.10", "example.com"))


def test_studio_command_line(tiny_project, tmp_path, monkeypatch):
    r = musivid("studio", tiny_project, "--steps", "3")
    assert r.returncode == 2 and "--steps only apply when the studio makes a project from AUDIO" in r.stderr
    r = musivid("studio", tmp_path / "nope.mp3")
    assert r.returncode == 2 and "no such file or project directory" in r.stderr
    monkeypatch.chdir(tmp_path)
    r = musivid("studio")
    assert r.returncode == 2 and "no *.musivid project here" in r.stderr
    (tmp_path / "empty").mkdir()
    r = musivid("studio", tmp_path / "empty")
    assert r.returncode == 2 and "not a musivid project" in r.stderr


def test_the_served_studio_prints_its_url_and_stops_on_ctrl_c(tiny_project):
    """The real process: prints the URL (with a fresh token) once it listens, answers, stops on
    SIGINT; importing the command line does not import the web stack (`musivid --help` stays quick)."""
    r = subprocess.run([sys.executable, "-c", "import sys, musivid.cli; print(sorted(m for m in ('fastapi', 'uvicorn', "
                        "'starlette', 'musivid.studio') if m in sys.modules))"], capture_output=True, text=True)
    assert r.stdout.strip() == "[]", r.stderr
    proc = subprocess.Popen([sys.executable, "-m", "musivid", "studio", str(tiny_project), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    try:
        line = proc.stdout.readline()
        assert line.startswith("musivid studio: http://127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
        c = Client(line.split(": ", 1)[1].strip())
        assert len(c.token) >= 32
        assert c.get("/api/state")[0] == 200 and c.get("/api/state", token=False)[0] == 403
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 130  # interrupted, as every command
        err = proc.stderr.read()
        assert "interrupted" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
