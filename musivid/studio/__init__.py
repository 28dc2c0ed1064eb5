"""musivid studio: a local web page on one project directory to look at every line's keyframe
variants, pick and re-roll them, re-word and re-time lines, preview transitions and render.

    from musivid.studio import Studio, serve
    serve(Studio("song.musivid"), on_ready=print)   # prints http://127.0.0.1:8765/?token=...

A FastAPI app (app.py) with one static page (static/) and a JSON API, served by uvicorn
(server.py). It changes the project only through musivid.pipeline and musivid.actions (core.py), one
background job at a time (jobs.py); access is by a random token, and only the project's own files
are served (access.py). Needs the `studio` extra (fastapi, uvicorn).
"""
from __future__ import annotations

from .core import MakeRequest, Studio
from .server import running, serve

__all__ = ["MakeRequest", "Studio", "running", "serve"]
