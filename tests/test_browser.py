"""The web page in a real browser: Debian's chromium driven by Playwright against a server the
test starts. Register (file picker and drag and drop), check, see the evidence, remove.

Needs /usr/bin/chromium (`apt-get install chromium`; .ci/run installs it). Set
COPYTRACE_SKIP_BROWSER=1 to skip where no browser can be installed.
"""
from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from .test_server import Server, _keys, leftovers

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

if os.environ.get("COPYTRACE_SKIP_BROWSER") == "1":
    pytest.skip("COPYTRACE_SKIP_BROWSER=1", allow_module_level=True)


@pytest.fixture()
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), "the browser tests need Debian's chromium: apt-get install chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture()
def site(tmp_path):
    from copytrace.server.app import ServerConfig

    root = tmp_path / "db"
    s = Server(root, ServerConfig(), _keys(root))
    yield s
    s.close()


def _drop(page, selector: str, path: Path) -> None:
    """Drop a file on an element the way a person's drag and drop does (a DataTransfer)."""
    data = base64.b64encode(path.read_bytes()).decode()
    page.evaluate(
        """([sel, name, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, {type: "image/jpeg"}));
            document.querySelector(sel).dispatchEvent(
                new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""", [selector, path.name, data])


def test_register_check_evidence_remove(browser, site, photo_paths):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site.url + "/")
    assert "a key is needed" in page.locator("#keystate").inner_text()
    page.fill("#key", site.keys["admin"])
    page.dispatch_event("#key", "change")
    page.wait_for_selector("#count:has-text('(0)')")

    # Register through the file picker, with a title.
    page.set_input_files("#file", str(photo_paths[0]))
    page.fill("#title", "Poster")
    page.click("#add")
    page.wait_for_selector("#verdict:has-text('registered')")
    page.wait_for_selector("#works tbody tr:has-text('Poster')")
    # Register a second one by drag and drop.
    _drop(page, "#drop", photo_paths[1])
    assert photo_paths[1].name in page.locator("#chosen").inner_text()
    page.fill("#title", "")
    page.click("#add")
    page.wait_for_selector("#count:has-text('(2)')")

    # Check a copy: the match, then the evidence page beside it with both pictures.
    page.set_input_files("#file", str(photo_paths[0]))
    page.click("#query")
    page.wait_for_selector("#verdict:has-text('matched')")
    assert "Poster" in page.locator("#matches").inner_text()
    frame = page.frame_locator("#report")
    frame.locator("text=score").first.wait_for()
    assert frame.locator(".match-block img").count() == 2
    assert "threshold" in frame.locator("header").inner_text()
    # An innocent photo matches nothing.
    page.set_input_files("#file", str(photo_paths[-1]))
    page.click("#query")
    page.wait_for_selector("#verdict:has-text('No registered work matched')")

    # Remove asks first: dismissing keeps the work, accepting removes it.
    page.once("dialog", lambda d: d.dismiss())
    page.click("#works button[data-title='Poster']")
    page.wait_for_timeout(300)
    assert page.locator("#works tbody tr").count() == 2
    page.once("dialog", lambda d: d.accept())
    page.click("#works button[data-title='Poster']")
    page.wait_for_selector("#count:has-text('(1)')")
    assert "Poster" not in page.locator("#works").inner_text()
    assert errors == []
    assert leftovers(site.root) == []


def test_a_query_key_cannot_register_from_the_page(browser, site, photo_paths):
    page = browser.new_page()
    page.goto(site.url + "/")
    page.fill("#key", site.keys["query"])
    page.dispatch_event("#key", "change")
    page.wait_for_selector("#count:has-text('(0)')")
    page.set_input_files("#file", str(photo_paths[0]))
    page.click("#add")
    page.wait_for_selector(".bad:has-text('needs')")
    assert "'register'" in page.locator("#out").inner_text()


def test_long_audio_runs_as_a_job_with_progress_and_evidence(browser, tmp_path, photo_paths):
    from copytrace.server.app import ServerConfig

    from .test_server import DATA, write_wav

    root = tmp_path / "db"
    s = Server(root, ServerConfig(job_above_s=5.0), _keys(root))
    try:
        key = s.keys["admin"]
        status, _, _ = s.call("POST", "/api/works?filename=beast.ogg&title=Beast&mode=sync",
                                 (DATA / "music_beast.ogg").read_bytes())
        assert status == 201
        song = write_wav(tmp_path / "upload.wav", 240.0)
        page = browser.new_page()
        page.goto(s.url + "/")
        page.fill("#key", key)
        page.dispatch_event("#key", "change")
        page.wait_for_selector("#count:has-text('(1)')")
        page.set_input_files("#file", str(song))
        page.click("#query")
        page.wait_for_selector("#stage:has-text('job')")  # the job's stage, while it runs
        page.wait_for_selector("#verdict:has-text('matched')", timeout=120_000)
        assert page.locator("#progress").is_hidden()
        assert "Beast" in page.locator("#matches").inner_text()
        frame = page.frame_locator("#report")
        frame.locator("svg.wave").first.wait_for()
        assert frame.locator("svg.wave").count() == 2
        assert frame.locator("audio[data-start]").count() >= 2
        assert leftovers(root) == []
    finally:
        s.close()
