"""Serving a Studio with uvicorn: in the foreground (`musivid studio`) or in a thread (tests, the
screenshot script).

`serve` reports a failure to make the project in both places: the page shows it (and that the
studio stops), then the studio stops, once a page has fetched the failed state or after GRACE
seconds, and `serve` raises the error (the command prints it in one line and exits non-zero)."""
from __future__ import annotations

import logging
import socket
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from ..errors import InputError
from .access import Hosts, allowed_hosts, is_loopback
from .core import Studio

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
GRACE = 5.0  # seconds a failed make stays on show for a page that has not fetched it yet (it polls twice a second)


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


def hosts_for(sock: socket.socket, host: str) -> Hosts:
    return allowed_hosts(host, sock.getsockname()[1])


def _server(studio: Studio, hosts: Hosts):
    import uvicorn

    from .app import create_app

    # proxy_headers off: no X-Forwarded-* header may change what a request says it is
    config = uvicorn.Config(create_app(studio, hosts), log_level="warning", access_log=False, lifespan="off",
                            proxy_headers=False, server_header=False)
    return uvicorn.Server(config)


def _stop_if_make_fails(studio: Studio, server, grace: float) -> None:
    """Wait for the first job (the make); if it failed, stop the server once a page has fetched
    the failed state and the project after it, or after `grace` seconds."""
    studio.jobs.wait()
    if studio.failure() is None:
        return
    studio.failure_shown.wait(grace)
    server.should_exit = True


def serve(studio: Studio, host: str = "127.0.0.1", port: int | None = None,
          on_ready: Callable[[str], None] | None = None, grace: float = GRACE) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM); then cancel a running job (its finished work is
    kept) and return. `on_ready(url)` gets the page's URL, token included, once it listens.
    A studio that makes its project (Studio(make=...)) and fails to stops once the page has shown
    the failure (at most `grace` seconds after it), and raises it (a MusividError)."""
    if not is_loopback(host):
        log.warning("listening on %s: anyone who can reach this machine and has the token can use this "
                    "studio and read the project's files", host)
    sock = bind(host, port)
    server = _server(studio, hosts_for(sock, host))
    studio.stop_on_failure = True
    try:
        try:
            job = studio.begin()
            if job is not None and job.kind == "make":
                threading.Thread(target=_stop_if_make_fails, args=(studio, server, grace), name="musivid-studio-watch",
                                 daemon=True).start()
            if on_ready is not None:
                on_ready(url(sock, host, studio.token))
            server.run(sockets=[sock])
        finally:
            studio.close()  # a cancelled job unwinds (its finished work is kept)
    finally:
        sock.close()
    failed = studio.failure()
    if failed is not None:
        raise failed


@contextmanager
def running(studio: Studio, host: str = "127.0.0.1", port: int = 0, begin: bool = True) -> Iterator[str]:
    """Serve in a background thread for the block; yields the page's URL (token included)."""
    sock = bind(host, port)
    server = _server(studio, hosts_for(sock, host))
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
