"""Who may ask, and for which file: the access token and the project's files.

The studio is a local tool with the power to write files and burn CPU/GPU time, so every request
needs the random token printed with the URL (as Jupyter does: `?token=...` once, then a cookie
that only this origin's own pages send). Files are served only from inside the one project
directory, only of the kinds the page shows, and never through `..`, an absolute path, a hidden
name (temporary files) or a symlink that leads out of the project.
"""
from __future__ import annotations

import hmac
import ipaddress
import secrets
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
