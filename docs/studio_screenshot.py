"""Take docs/studio.png: the studio on the bundled sample, made with tiny random-weight models
(so the page says UNTRAINED and the pictures are noise: only the layout is real), with the same
system Chromium the browser tests use (tests/browser.py).

    .venv/bin/python docs/studio_screenshot.py [OUT.png]
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser import chromium_path, launch  # noqa: E402

from musivid.config import ModelConfig, OptimizeConfig, RenderConfig, RunSettings, TimingConfig  # noqa: E402
from musivid.actions import pick_variant  # noqa: E402
from musivid.pipeline import make_video  # noqa: E402
from musivid.studio import Studio, running  # noqa: E402


def main(out: Path) -> None:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    if chromium_path() is None:
        sys.exit("no chromium here: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        pdir = Path(tmp) / "demo.musivid"
        settings = RunSettings(optimize=OptimizeConfig(steps=10, variants=3, cutouts=4),
                               render=RenderConfig(fps=8, size=128), models=ModelConfig(untrained=True),
                               timing=TimingConfig(asr="none"), device="cpu")
        make_video(ROOT / "samples/demo.mp3", ROOT / "samples/demo.lrc", Path(tmp) / "demo.mp4", settings,
                   project_dir=pdir)
        pick_variant(pdir, 2, 0)
        with running(Studio(pdir)) as url, sync_playwright() as pw:
            browser = launch(pw)
            page = browser.new_page(viewport={"width": 1280, "height": 820})
            page.goto(url)
            page.wait_for_function("() => [...document.querySelectorAll('.variant img')].length === 24 && "
                                   "[...document.querySelectorAll('.variant img')].every(i => i.complete && i.naturalWidth)")
            page.wait_for_function("() => document.querySelector('#video').readyState >= 2")
            page.evaluate("() => { const a = document.querySelector('#audio'); a.currentTime = 9.8; select(3); }")
            page.wait_for_timeout(800)  # the waveform is drawn once the browser has decoded the song
            page.screenshot(path=str(out))
            browser.close()
    # a palette of 256 colours keeps the README's picture small
    Image.open(out).convert("RGB").quantize(256, dither=Image.Dither.NONE).save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "studio.png")
