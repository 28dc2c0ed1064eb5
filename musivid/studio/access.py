"""Who may ask, and for which file: the Host header, the access token and the project's files.

The studio is a local tool with the power to write files and burn CPU/GPU time, so every request
needs the random token printed with the URL (as Jupyter does: `?token=...` once, then a cookie
that only this origin's own pages send), and must name the address the studio listens on in its
Host header: a page of another site that makes its own name resolve to 127.0.0.1 (DNS rebinding)
sends its own name there, and is refused before the token is even looked at. Files are served
only from inside the one project directory, only of the kinds the page shows, and never through
`..`, an absolute path, a hidden name (temporary files) or a symlink that leads out of the project.
"""
from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

SERVED = {".png": "image/png", ".jpg": "image/jpeg", ".mp4": "video/mp4", ".srt": "text/plain; charset=utf-8"}


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_ok(given: str | None, token: str) -> bool:
    """Constant-time comparison (no timing hint about how much of a guess was right)."""
    return given is not None and hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8"))


def cookie_name(port: int | None) -> str:
    """Cookies are shared by every port of a host: one name per port keeps two studios apart."""
    return f"musivid-studio-{port or 0}"


def project_file(root: Path, rel: str) -> Path | None:
    """The file `rel` (a URL path, already percent-decoded) names inside the project `root`, or
    None for anything else: absolute, `..`, backslashes, NUL, hidden names, a kind of file the
    page does not show, a directory, a missing file, or a symlink that leads outside `root`."""
    if not rel or "\\" in rel or "\0" in rel or rel.startswith("/"):
        return None
    parts = PurePosixPath(rel).parts
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts) or Path(rel).suffix.lower() not in SERVED:
        return None
    base = root.resolve()
    try:
        path = (base / Path(*parts)).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not path.is_relative_to(base) or not path.is_file():
        return None
    return path


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


WILDCARD = ("0.0.0.0", "::", "")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class Hosts:
    """The Host headers a studio answers: one of `names` (or, listening on every address, any IP
    address: DNS rebinding needs a name) with the port it listens on."""

    names: frozenset[str]
    port: int
    any_ip: bool = False

    def allows(self, header: str | None) -> bool:
        name, port = split_host(header or "")
        if name is None or port != self.port:
            return False
        return name in self.names or (self.any_ip and is_ip(name))

    def describe(self) -> str:
        shown = sorted(f"[{n}]" if ":" in n else n for n in self.names)
        return ", ".join(f"{n}:{self.port}" for n in shown) + (" or any IP address" if self.any_ip else "")


def split_host(header: str) -> tuple[str | None, int | None]:
    """("localhost", 8765) from "localhost:8765", ("::1", 80) from "[::1]"; (None, None) when
    it is not a host[:port]."""
    h = header.strip().lower()
    if h.startswith("["):
        name, sep, rest = h[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None, None
        port = rest[1:] if rest else ""
    else:
        name, _, port = h.partition(":")
        if ":" in port:
            return None, None
    if not name or (port and not port.isdigit()) or len(port) > 5:
        return None, None
    return name, int(port) if port else 80


def allowed_hosts(bound: str, port: int) -> Hosts:
    """Listening on a loopback address: 127.0.0.1, localhost and [::1]; on another address: that
    address; on every address (0.0.0.0, ::): any IP address, localhost and this machine's name."""
    host = bound.strip("[]").lower()
    if host in WILDCARD:
        return Hosts(frozenset({*LOOPBACK_NAMES, socket.gethostname().lower()}), port, any_ip=True)
    if is_loopback(host):
        return Hosts(frozenset({host, *LOOPBACK_NAMES}), port)
    return Hosts(frozenset({host}), port)
