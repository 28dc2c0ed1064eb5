"""The HTTP face of a Studio: a FastAPI app with one static page (static/), a small JSON API and
the project's files.

    GET  /                 the page                 GET  /api/project   the project (view.py)
    GET  /static/...       the page's JS and CSS    GET  /api/state     the job and the project's version
    GET  /files/PATH       a file of the project    POST /api/pick      {line, variant, all_repeats?}
    GET  /media/audio      the song (the project's  POST /api/retime    {line, start}
                           recorded input)          POST /api/jobs      {kind, line?, count?, text?}
    GET  /media/video      the last rendered video  POST /api/cancel

Every request must name the studio's own address in its Host header (421 otherwise: see
access.allowed_hosts) and carry the token (`?token=`, the cookie set from it, or an
`X-Musivid-Token` / `Authorization: token ...` header): 403 without. Writes from another origin
are refused (403); a body over 4 MB is refused (413, guard.py). Every error is JSON
{"error": message}, one line: 400 bad input, 404 no such file or route, 405 wrong method, 409 a
job is running or another command (its PID named) is writing the project, 422 a request body the
API cannot take (NaN and infinity included), 500 a bug.
"""
from __future__ import annotations

from pathlib import Path

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from ..errors import InputError, MusividError, ProjectBusyError
from ..project import Project, is_project
from .access import SERVED, Hosts, cookie_name, project_file, token_ok
from .core import JOB_KINDS, Studio
from .guard import MAX_BODY, BodyLimit, invalid_request, shown
from .jobs import Busy

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
NO_STORE = {"Cache-Control": "no-store"}


class Body(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)  # Python's JSON reads NaN and Infinity: refused (422)


class Pick(Body):
    line: int = Field(ge=1)
    variant: int = Field(ge=0)
    all_repeats: bool = False  # also the other lines with the same words


class Retime(Body):
    line: int = Field(ge=1)
    start: float = Field(ge=0)


class StartJob(Body):
    kind: str = Field(max_length=40)
    line: int | None = Field(default=None, ge=1)
    count: int = Field(default=2, ge=1, le=64)
    text: str | None = Field(default=None, max_length=2000)


def _given_token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith(("token ", "bearer ")):
        return auth.split(None, 1)[1].strip()
    return (request.query_params.get("token") or request.headers.get("x-musivid-token")
            or request.cookies.get(cookie_name(request.url.port)))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=NO_STORE)


def create_app(studio: Studio, hosts: Hosts, max_body: int = MAX_BODY) -> FastAPI:
    """The app for `studio`, answering only requests whose Host is one of `hosts` (the address it
    listens on: access.allowed_hosts)."""
    app = FastAPI(title="musivid studio", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        host = request.headers.get("host")
        if not hosts.allows(host):  # DNS rebinding: another site's name for this address
            return _error(421, f"421 misdirected request: Host {shown(host or '')} is not this studio's address "
                               f"({hosts.describe()}): open the URL the studio printed")
        if not token_ok(_given_token(request), studio.token):
            return _error(403, "403 forbidden: this musivid studio needs its access token: open the URL it "
                               "printed (http://HOST:PORT/?token=...)")
        origin = request.headers.get("origin")
        if request.method not in ("GET", "HEAD") and origin and origin != f"{request.url.scheme}://{request.url.netloc}":
            return _error(403, f"403 forbidden: requests from {shown(origin)} may not change this project: "
                               "use the studio's own page")
        response = await call_next(request)
        if token_ok(request.query_params.get("token"), studio.token):  # the URL's token: keep it as a cookie
            response.set_cookie(cookie_name(request.url.port), studio.token, httponly=True, samesite="strict")
        return response

    app.add_middleware(BodyLimit, limit=max_body)  # outside the guard: a refused body is never read

    @app.exception_handler(MusividError)
    async def musivid_error(request: Request, e: MusividError):
        return _error(409 if isinstance(e, (Busy, ProjectBusyError)) else 400, str(e))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError):
        return _error(422, invalid_request(request.url.path, e.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException):
        what = {404: f"{shown(request.url.path)}: no such page or file in this studio",
                405: f"{request.method} {shown(request.url.path)}: not allowed here: the API's writes are POST, "
                     "its reads GET"}.get(e.status_code, str(e.detail))
        return _error(e.status_code, what)

    @app.exception_handler(Exception)
    async def bug(request: Request, e: Exception):
        log.error("the studio failed on %s %s: %s: %s", request.method, request.url.path, type(e).__name__, e)
        return _error(500, f"500 internal error ({type(e).__name__}): a bug in musivid studio: the terminal has "
                           "details")

    @app.get("/")
    def page():
        return FileResponse(STATIC / "index.html", headers=NO_STORE)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/project")
    def project():
        return JSONResponse(studio.view(), headers=NO_STORE)

    @app.get("/api/state")
    def state():
        return JSONResponse(studio.state(), headers=NO_STORE)

    @app.post("/api/pick")
    def pick(body: Pick):
        res = studio.pick(body.line, body.variant, body.all_repeats)
        return {"line": res.line, "variant": res.variant, "text": res.text, "changed": list(res.changed),
                "kept": [list(k) for k in res.kept]}

    @app.post("/api/retime")
    def retime(body: Retime):
        return studio.retime(body.line, body.start)

    @app.post("/api/jobs")
    def start_job(body: StartJob):
        if body.kind not in JOB_KINDS:
            raise InputError(f"{shown(body.kind)}: not a job: one of {', '.join(JOB_KINDS)}")
        job = studio.start(body.kind, line=body.line, count=body.count, text=body.text)
        return JSONResponse(job.as_json(), status_code=202, headers=NO_STORE)

    @app.post("/api/cancel")
    def cancel():
        job = studio.cancel()
        return {"cancelled": job.as_json() if job else None}

    @app.get("/files/{rel:path}")
    def files(rel: str):
        path = project_file(studio.root, rel)
        if path is None:
            return _error(404, f"{shown(rel)}: no such file in this project")
        return FileResponse(path, media_type=SERVED[path.suffix.lower()])

    @app.get("/media/{kind}")
    def media(kind: str):
        """The project's recorded input song and last output video: named by the project, not by
        the request, so no path from outside is ever opened here."""
        if kind not in ("audio", "video") or not is_project(studio.root):
            return _error(404, f"{shown(kind)}: no such media: audio or video")
        p = Project.open(studio.root)
        if kind == "audio":
            song = p.input("audio")
            path = song.path if song is not None else None
        else:
            path = p.output("video")
        if path is None or not path.is_file() or (kind == "video" and path.suffix.lower() != ".mp4"):
            return _error(404, f"the project has no {kind} file yet")
        return FileResponse(path)

    return app
