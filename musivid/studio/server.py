"""Serving a Studio with uvicorn: in the foreground (`musivid studio`) or in a thread (tests, the
screenshot script)."""
from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from ..errors import InputError
from .access import is_loopback
from .core import Studio

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def bind(host: str, port: int | None) -> socket.socket:
    """A listening socket on host:port; port 0 is a free port; None is DEFAULT_PORT, or a free
    port when that one is taken."""
    if port is None:
        try:
            return _listen(host, DEFAULT_PORT)
        except OSError:
            port = 0
    try:
        return _listen(host, port)
    except OSError as e:
        raise InputError(f"--host {host} --port {port}: cannot listen there ({e.strerror or e}): "
                         "choose another (--port 0: any free port)") from None


def url(sock: socket.socket, host: str, token: str) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"


def _server(studio: Studio):
    import uvicorn

    from .app import create_app

    config = uvicorn.Config(create_app(studio), log_level="warning", access_log=False, lifespan="off")
    return uvicorn.Server(config)


def serve(studio: Studio, host: str = "127.0.0.1", port: int | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM); then cancel a running job (its finished work is
    kept) and return. `on_ready(url)` gets the page's URL, token included, once it listens."""
    if not is_loopback(host):
        log.warning("listening on %s: anyone who can reach this machine and has the token can use this "
                    "studio and read the project's files", host)
    sock = bind(host, port)
    server = _server(studio)
    try:
        try:
            studio.begin()
            if on_ready is not None:
                on_ready(url(sock, host, studio.token))
            server.run(sockets=[sock])
        finally:
            studio.close()  # a cancelled job unwinds (its finished work is kept)
    finally:
        sock.close()


@contextmanager
def running(studio: Studio, host: str = "127.0.0.1", port: int = 0, begin: bool = True) -> Iterator[str]:
    """Serve in a background thread for the block; yields the page's URL (token included)."""
    sock = bind(host, port)
    server = _server(studio)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="musivid-studio", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    if not server.started:
        raise RuntimeError("the studio's server did not start")
    try:
        try:
            if begin:
                studio.begin()
            yield url(sock, host, studio.token)
        finally:
            studio.close()
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
