"""The web page in a real browser: headless Chromium (Debian's chromium and chromedriver) driven by Selenium,
against the real server with real workers: add a book -> see progress -> play a chunk -> edit it -> see it
redone -> download. A screenshot of each step goes to $AUDIOBOOK_SCREENSHOTS (else the test's tmp_path)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from test_serve_server import Server, free_port

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = (
    # what works on these machines: no sandbox as root, and no background traffic to a network that is not there
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
    "--autoplay-policy=no-user-gesture-required",
)
STORY = """# The Lamp Keeper

## The Evening

The keeper climbed the tower stairs at dusk. She lit the great lamp and watched the sea.

A fishing boat rounded the point, late and heavy with the catch.

## The Night

The wind rose after midnight. Rain beat on the glass, and the lamp turned on.

By morning the boats were home, and the keeper slept.
"""
WAIT_S = 240


@pytest.fixture
def browser(tmp_path: Path):  # noqa: ANN201
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium and chromium-driver (.ci/run installs them)")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.downloads = tmp_path / "downloads"
    driver.downloads.mkdir()
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(driver.downloads)})
    try:
        yield driver
    finally:
        driver.quit()


def until(driver, condition, what: str, timeout: float = WAIT_S):  # noqa: ANN001, ANN201
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))
    except TimeoutException:
        pytest.fail(f"the page never showed {what}")


@pytest.mark.slow
def test_add_listen_fix_and_download_in_a_browser(tmp_path: Path, test_model_dir: Path, browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    screens = Path(os.environ.get("AUDIOBOOK_SCREENSHOTS") or tmp_path / "screens")
    screens.mkdir(parents=True, exist_ok=True)

    def shot(name: str) -> None:
        browser.save_screenshot(str(screens / f"{name}.png"))

    def find(selector: str):  # noqa: ANN202
        found = browser.find_elements(By.CSS_SELECTOR, selector)
        return found[0] if found else None

    book = tmp_path / "the-lamp-keeper.md"
    book.write_text(STORY, encoding="utf-8")
    library = tmp_path / "library"
    server = Server(library, test_model_dir, free_port(), tmp_path / "server.log")
    try:
        browser.get(server.url + "/")
        until(browser, lambda d: find("#upload-form") and find("#connection").text == "live", "the library")
        shot("1-library")

        # add a book -> see progress
        find("#upload-file").send_keys(str(book))
        find("#upload-form button[type=submit]").click()
        row = 'tr[data-book="the-lamp-keeper"]'
        until(browser, lambda d: find(f"{row} .progress-text"), "the new book")
        assert (
            "Added \u201cThe Lamp Keeper\u201d" in find("#message").text or "The Lamp Keeper" in find("#message").text
        )
        until(browser, lambda d: not find(f"{row} .progress-text").text.startswith("0%"), "progress")
        shot("2-progress")

        # play a chunk
        find(f"{row} a.title").click()
        until(browser, lambda d: find("#book-title") and find('tr[data-status="done"] button.play'), "a done chunk")
        first = find('tr[data-status="done"]')
        chunk_id, audio_before = first.get_attribute("data-chunk"), first.get_attribute("data-audio")
        first.find_element(By.CSS_SELECTOR, "button.play").click()
        playing = "const p = document.getElementById('player'); return !p.paused && p.currentTime > 0.2 && !p.error"
        until(browser, lambda d: d.execute_script(playing), "the chunk playing", timeout=30)
        assert browser.execute_script("return document.getElementById('player').duration") > 0.5
        assert chunk_id in find("#now-playing").text
        shot("3-playing")

        # edit it -> see it redone
        find(f'tr[data-chunk="{chunk_id}"] button.edit').click()
        until(browser, lambda d: find("textarea.edit-text"), "the editor")
        editor = find("textarea.edit-text")
        assert editor.get_attribute("value").startswith("The Evening")
        editor.clear()
        editor.send_keys("The Evening. A new first line, read again.")
        shot("4-editing")
        find("button.save").click()
        done_row = f'tr[data-chunk="{chunk_id}"][data-status=done]'
        audio_now = f"const r = document.querySelector('{done_row}'); return r && r.dataset.audio"
        until(browser, lambda d: d.execute_script(audio_now) not in (None, "", audio_before), "the chunk redone")
        shot("5-redone")
        fixed = httpx.get(f"{server.url}/api/books/the-lamp-keeper/chunks/{chunk_id}").json()
        assert fixed["text"] == "The Evening. A new first line, read again." and fixed["status"] == "done"

        # download
        find('a[href="/"]').click()
        until(browser, lambda d: find(f"{row} a.download"), "the download link")
        find(f"{row} a.download").click()
        until(browser, lambda d: [p for p in browser.downloads.iterdir() if p.suffix == ".wav"], "a downloaded file")
        shot("6-downloaded")
    finally:
        server.stop()
    (downloaded,) = [p for p in browser.downloads.iterdir() if p.suffix == ".wav"]
    deadline = time.monotonic() + 30
    while downloaded.stat().st_size != (library / "jobs" / "the-lamp-keeper.wav").stat().st_size:
        assert time.monotonic() < deadline, "the download never completed"
        time.sleep(0.2)
    assert downloaded.read_bytes() == (library / "jobs" / "the-lamp-keeper.wav").read_bytes()
