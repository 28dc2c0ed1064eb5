"""musivid studio in a real headless browser (the system's Chromium driven by Playwright): the
page shows every line and variant of a tiny-model project, labelled UNTRAINED; picking, re-rolling,
moving and re-wording lines change project.json as the command line would; a rendered video and a
transition preview play in the page; a long job cancelled from the page keeps its finished work."""
import json
from pathlib import Path

import pytest

from browser import NO_CHROMIUM, chromium_path, launch
from conftest import click_track, hold_job, write_audio
from musivid.studio import MakeRequest, Studio, running

pytestmark = pytest.mark.skipif(chromium_path() is None, reason=NO_CHROMIUM)
LONG = 300_000  # ms: a job on a busy 2-core machine


@pytest.fixture(autouse=True, scope="module")
def patient_expect():
    """Every expect() waits up to 2 minutes (not Playwright's 5 s): what the page waits for (a
    re-timed line's keyframe, a re-read song) takes longer on a loaded machine, never shorter."""
    from playwright.sync_api import expect

    expect.set_options(timeout=120_000)
    yield
    expect.set_options(timeout=5_000)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw)
        yield b
        b.close()


_SHOWN: dict[int, str] = {}  # id(page) -> the job the last wait_job on that page saw end


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    _SHOWN.pop(id(pg), None)  # a later page may get the same id()
    context.close()
    assert not errors, errors  # no script error on the page


def project_json(root: Path) -> dict:
    return json.loads((root / "project.json").read_text())


def wait_job(page, state: str = "done", timeout: int = LONG) -> None:
    """The job bar shows a job that ended as `state`. The job must be another than the one the
    last wait on this page saw (right after a click the bar may still show the job before: the new
    one reaches the page with its next poll); any end other than `state` ends the wait at once."""
    last = _SHOWN.get(id(page), "")
    page.wait_for_function("last => { const b = document.querySelector('#jobbar'); "
                           "return b.dataset.job && b.dataset.job !== last && !['running', 'idle'].includes(b.className); }",
                           arg=last, timeout=timeout)
    got, job = page.eval_on_selector("#jobbar", "e => [e.className, e.dataset.job]")
    _SHOWN[id(page)] = job
    assert got == state, (got, page.inner_text("#jobbar"))


def line(page, n: int):
    return page.locator(f'.line[data-line="{n}"]')


def images_loaded(page, selector: str) -> None:
    page.wait_for_function("s => { const i = [...document.querySelectorAll(s)]; "
                           "return i.length > 0 && i.every(x => x.complete && x.naturalWidth > 0); }",
                           arg=selector, timeout=30_000)


def test_the_page_shows_every_line_and_variant_labelled_untrained(project_copy, page):
    from playwright.sync_api import expect

    with running(Studio(project_copy)) as url:
        page.goto(url)
        expect(page.locator(".line")).to_have_count(8)
        data = project_json(project_copy)
        for n, seg in enumerate(data["timing"]["segments"], 1):
            expect(line(page, n).locator(".text")).to_have_text(seg["text"])
            scores = sorted((m["variant"], m["score"]) for m in data["latents"].values() if m["text"] == seg["text"])
            captions = line(page, n).locator(".variant figcaption")
            expect(captions).to_have_count(2)
            for k, (v, score) in enumerate(scores):  # every variant with its CLIP score
                expect(captions.nth(k)).to_contain_text(f"v{v} · {score:.3f}")
            best = max(scores, key=lambda x: x[1])[0]  # nothing picked yet: the best-scoring is shown
            expect(line(page, n).locator(".variant.chosen")).to_have_attribute("data-variant", str(best))
        images_loaded(page, ".variant img")
        expect(page.locator("#blocks .block")).to_have_count(8)
        expect(page.locator("#blocks .kf")).to_have_count(8)
        expect(page.locator("#untrained")).to_be_visible()
        expect(page.locator("#untrained")).to_contain_text("UNTRAINED: tiny random-weight models")
        expect(page.locator("#facts")).to_contain_text("8 lines")
        assert "token" not in page.url  # it moved into a cookie
        # a redraw while a field is being typed in keeps its text, caret and selection
        count = line(page, 6).locator("input.count")
        count.focus()
        page.evaluate("() => document.activeElement.select()")
        page.evaluate("() => load()")  # what a poll does when the project changed
        expect(line(page, 6).locator(".variant")).to_have_count(2)
        page.keyboard.type("3")
        expect(line(page, 6).locator("input.count")).to_have_value("3")
        page.locator("#name").click()  # the field loses focus: its card is drawn anew
        expect(line(page, 6).locator("input.count")).to_have_value("2")
        # the song plays from a line
        line(page, 3).locator('[data-action="play"]').click()
        page.wait_for_function("() => { const a = document.querySelector('#audio'); "
                               "return !a.paused && a.currentTime >= 9.0; }", timeout=30_000)


def test_pick_reroll_move_and_reword_lines(project_copy, page):
    from playwright.sync_api import expect

    root = project_copy
    with running(Studio(root)) as url:
        page.goto(url)
        expect(page.locator(".line")).to_have_count(8)
        # pick: one click on the variant not shown yet
        other = line(page, 2).locator(".variant:not(.chosen)")
        v = int(other.get_attribute("data-variant"))
        other.click()
        expect(line(page, 2).locator(f'.variant.chosen[data-variant="{v}"]')).to_have_count(1)
        assert project_json(root)["picked"] == {"waves crash on a golden beach": v}

        # re-roll line 4: one new variant, its thumbnail shown
        latents = set(project_json(root)["latents"])
        line(page, 4).locator("input.count").fill("1")
        expect(line(page, 4).locator("input.count")).to_have_value("1")
        line(page, 4).locator('[data-action="reroll"]').click()
        wait_job(page)
        expect(line(page, 4).locator(".variant")).to_have_count(3)
        images_loaded(page, '.line[data-line="4"] .variant img')
        new = set(project_json(root)["latents"]) - latents
        assert len(new) == 1 and project_json(root)["latents"][new.pop()]["variant"] == 2

        # move line 5's start by typing it: its keyframe follows, nothing is optimized
        latents = project_json(root)["latents"]
        line(page, 5).locator("input.start").fill("17.00")
        line(page, 5).locator('[data-action="retime"]').click()
        expect(line(page, 5).locator(".note")).to_contain_text("0:17.00")
        data = project_json(root)
        assert data["edits"]["4"]["start"] == 17.0 and data["latents"] == latents
        assert abs(data["keyframes"][4]["time"] - 17.0) <= 0.25 and data["keyframes"][4]["time"] > 16.5

        # ... and line 6's by dragging its block on the timeline, once the page shows the first move (it
        # redraws its lines and timeline then: a drag begun before would hold a block being replaced)
        expect(line(page, 5).locator("input.start")).to_have_value("17.00", timeout=30_000)
        expect(page.locator("#jobbar")).not_to_have_class("running")
        block = page.locator('#blocks .block[data-line="6"]')
        block.scroll_into_view_if_needed()
        box = block.bounding_box()
        width = page.locator("#timeline").bounding_box()["width"]
        page.mouse.move(box["x"] + 10, box["y"] + 10)
        page.mouse.down()
        page.mouse.move(box["x"] + 30, box["y"] + 10, steps=4)
        page.mouse.move(box["x"] + 50, box["y"] + 10, steps=4)
        page.mouse.up()
        want = 19.8 + 40 / width * 31.2
        expect(line(page, 6).locator("input.start")).to_have_value(f"{round(want, 2):.2f}", timeout=30_000)
        assert abs(project_json(root)["edits"]["5"]["start"] - want) < 0.02

        # re-word line 7: only that line is optimized, its new variants are shown
        line(page, 7).locator('[data-action="edit"]').click()
        line(page, 7).locator("input.newtext").fill("a paper boat drifts on the river")
        line(page, 7).locator('[data-action="save-text"]').click()
        wait_job(page)
        expect(line(page, 7).locator(".text")).to_have_text("a paper boat drifts on the river")
        expect(line(page, 7).locator(".variant")).to_have_count(2)
        images_loaded(page, '.line[data-line="7"] .variant img')
        added = {k: m for k, m in project_json(root)["latents"].items() if k not in latents}
        assert sorted((m["text"], m["variant"]) for m in added.values()) == \
            [("a paper boat drifts on the river", 0), ("a paper boat drifts on the river", 1)]


def test_render_and_preview_play_in_the_page(project_copy, page, monkeypatch):
    from playwright.sync_api import expect

    root = project_copy
    studio = Studio(root)
    # the render is held at its first frames until a second tab has seen it running
    reached, release = hold_job(monkeypatch, studio, lambda stage, done, total: stage == "render")
    with running(studio) as url:
        page.goto(url)
        expect(page.locator(".line")).to_have_count(8)
        expect(page.locator("#video-none")).to_be_visible()
        page.click("#render")
        assert reached.wait(300)
        expect(page.locator("#jobbar")).to_have_class("running")
        expect(page.locator("#cancel")).to_be_visible()
        # a second tab sees the running job (not a second copy of it) and cannot start another
        other = page.context.new_page()
        other.goto(url)
        expect(other.locator("#job-label")).to_contain_text("rendering the video")
        expect(other.locator("#render")).to_be_disabled()
        other.close()
        release.set()
        wait_job(page)
        expect(page.locator("#job-message")).to_contain_text("UNTRAINED")
        meta = page.wait_for_function(
            "() => { const v = document.querySelector('#video'); "
            "return !v.hidden && v.readyState >= 1 && v.duration > 0 && [v.duration, v.videoWidth, v.readyState]; }",
            timeout=60_000).json_value()
        assert abs(meta[0] - 31.2) < 0.3 and meta[1] == 64  # the whole song, at the project's 64 px
        assert project_json(root)["outputs"]["video"] == str(root.with_suffix(".mp4"))

        # the glide from line 1's keyframe to line 2's, as a short clip
        line(page, 1).locator('[data-action="preview"]').click()
        wait_job(page)
        kfs = [k["time"] for k in project_json(root)["keyframes"]]
        dur = page.wait_for_function("() => { const v = document.querySelector('#preview'); "
                                     "return !v.hidden && v.readyState >= 1 && v.duration > 0 && v.duration; }",
                                     timeout=60_000).json_value()
        assert abs(dur - (kfs[1] - kfs[0] + 1.0)) < 0.5
        assert project_json(root)["outputs"]["video"] == str(root.with_suffix(".mp4"))  # still the video


def test_a_long_job_cancelled_from_the_page_keeps_its_work(tmp_path, page):
    """`musivid studio AUDIO LYRICS`: the project is made in the background with live progress;
    cancelled mid-optimization, the steps done are kept in the checkpoint and the next run resumes."""
    from playwright.sync_api import expect

    import torch

    from musivid.config import ModelConfig, OptimizeConfig, RenderConfig, RunSettings, TimingConfig

    y, _ = click_track(120, 6.0)
    audio = write_audio(tmp_path / "song.wav", y)
    lrc = tmp_path / "song.lrc"
    lrc.write_text("[00:00.50]a bell rings in the tower\n[00:03.00]the river runs to the sea\n")
    settings = RunSettings(optimize=OptimizeConfig(steps=5000, variants=1, cutouts=4, checkpoint_every_s=1000),
                           render=RenderConfig(fps=4, size=64), models=ModelConfig(untrained=True),
                           timing=TimingConfig(asr="none"), device="cpu")
    root = tmp_path / "song.musivid"
    studio = Studio(root, make=MakeRequest(audio, lrc, settings))
    with running(studio) as url:
        page.goto(url)
        expect(page.locator("#job-label")).to_contain_text("making the project from song.wav")
        page.wait_for_function("() => /optimize ([3-9]|\\d\\d+)\\/5000/.test(document.querySelector('#job-count').textContent)",
                               timeout=LONG)
        page.click("#cancel")
        wait_job(page, "cancelled")
        expect(page.locator("#job-message")).to_contain_text("finished work is kept")
        step = torch.load(root / "checkpoint.pt", weights_only=True)["state"]["step"]
        assert 3 <= step < 5000
        expect(page.locator("#optimize")).to_be_visible()  # the lines have no variant yet
        expect(page.locator(".line")).to_have_count(2)
        page.click("#optimize")
        expect(page.locator("#job-log")).to_contain_text(f"resuming from checkpoint at step {step}/5000", timeout=LONG)
        page.wait_for_function(f"() => /optimize (\\d+)\\/5000/.test(document.querySelector('#job-count').textContent) && "
                               f"+/optimize (\\d+)\\//.exec(document.querySelector('#job-count').textContent)[1] > {step}",
                               timeout=LONG)
        page.click("#cancel")
        wait_job(page, "cancelled")
        assert torch.load(root / "checkpoint.pt", weights_only=True)["state"]["step"] > step


def test_a_failing_make_shows_its_error_on_the_page(tmp_path, page, tiny_en):
    """issue 27: `musivid studio lied.wav lied.txt` (German lyrics) with an English-only Whisper
    cannot succeed: the page leaves "being made", shows why and that the studio stops; once it
    has, the server stops and serve() raises the error (the command prints it and exits 2)."""
    from playwright.sync_api import expect

    from musivid.config import ModelConfig, OptimizeConfig, RunSettings, TimingConfig
    from musivid.errors import InputError
    from test_studio_guard import german_excerpt, serve_in_thread

    audio, lyrics = german_excerpt(tmp_path)
    settings = RunSettings(optimize=OptimizeConfig(steps=1, variants=1, cutouts=2), models=ModelConfig(untrained=True),
                           timing=TimingConfig(whisper_model=str(tiny_en)), device="cpu")
    studio = Studio(tmp_path / "lied.musivid", make=MakeRequest(audio, lyrics, settings))
    c, thread, outcome = serve_in_thread(studio)
    try:
        page.goto(f"http://{c.host}:{c.port}/?token={c.token}")
        failure = page.locator("#failure")
        expect(failure).to_contain_text("The project could not be made")
        expect(failure).to_contain_text("hears English only: pass a multilingual model, e.g. --whisper-model base")
        expect(page.locator("#facts")).not_to_contain_text("being made")
        expect(page.locator("#jobbar")).to_have_class("failed")
        expect(page.locator("#job-label")).to_contain_text("making the project from lied.wav: failed")
        expect(page.locator("#message")).to_contain_text("the studio stops")
        thread.join(120)
        assert not thread.is_alive()  # it stopped once the page had the failure
    finally:
        studio.failure_shown.set()
    assert isinstance(outcome.get("error"), InputError) and "hears English only" in str(outcome["error"])
    expect(failure).to_contain_text("hears English only")  # still shown after the server stopped
    expect(page.locator("#message")).to_contain_text("the studio stops")  # not "lost contact"
