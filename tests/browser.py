"""The system's Chromium driven by Playwright, for the studio's browser tests and the README's
screenshot (docs/studio_screenshot.py). Nothing is downloaded: Playwright is pointed at the
distribution's binary; `make test` installs it with apt where it can."""
from __future__ import annotations

import shutil
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "/usr/bin/chromium", "/usr/lib/chromium/chromium")
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required"]
NO_CHROMIUM = ("no Chromium on this machine: the studio's browser tests need the system's chromium "
               "(`apt-get install chromium`; `make test` installs it where apt and root are available)")


def chromium_path() -> str | None:
    for c in CANDIDATES:
        found = shutil.which(c) or (c if Path(c).is_file() else None)
        if found:
            return found
    return None


def launch(playwright):
    """A headless Chromium (Playwright gives it a fresh, empty profile directory of its own)."""
    return playwright.chromium.launch(executable_path=chromium_path(), headless=True, args=FLAGS)
