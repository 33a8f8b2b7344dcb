"""The page's Search tab in a real browser (headless Chromium through Playwright), issue 27.

The real server (``create_app``: API + page, uvicorn on a free loopback port) indexes a folder
of generated clips through ``POST /api/v1/index`` (the fake model server lists the coloured
squares it sees as events); the test then searches on the page, sees the right video first
with a thumbnail per moment, clicks it and reads the ``<video>``'s ``currentTime``: the player
is at the moment. The Chinese page labels the tab in Chinese. A screenshot goes to
``test-artifacts/search-tab.png``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

pytest.importorskip("gradio")
pytest.importorskip("uvicorn")

import requests  # noqa: E402
from browser import ARTIFACTS, needs_browser  # noqa: E402
from fake_openai_server import FakeOpenAIServer  # noqa: E402
from media import make_video  # noqa: E402
from ui_server import UIServer, settings_for  # noqa: E402

TIMEOUT_MS = 60_000
RED, BLUE, YELLOW = (255, 0, 0), (0, 0, 255), (255, 255, 0)
EVENTS = {"red square": RED, "blue square": BLUE, "黄色方块": YELLOW}
#: relative path -> (colour, when the square shows); 10 fps, 4 s
VIDEOS = {"red.mp4": (RED, (1.0, 2.0)), "blue.mp4": (BLUE, (2.0, 3.0)),
          "sub/yellow.mp4": (YELLOW, (0.5, 1.5))}
FRAME = 0.1 + 1e-3

pytestmark = needs_browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("library")
    for rel, (color, when) in VIDEOS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        make_video(root / rel, duration=4.0, fps=10, size=(192, 144), intervals=(when,),
                   color=color)
    with FakeOpenAIServer(events=EVENTS) as model:
        settings = settings_for(model.base_url, root, tmp_path_factory.mktemp("data"),
                                openai_model=model.model)
        with UIServer(settings) as srv:
            index_all(srv)
            yield srv


def index_all(srv: UIServer) -> dict[str, Any]:
    """``POST /api/v1/index {"paths": "all"}`` and wait for the job to succeed."""
    r = requests.post(srv.url + "api/v1/index", json={"paths": "all", "fps": 2}, timeout=10)
    assert r.status_code == 202, r.text
    url = srv.url + f"api/v1/jobs/{r.json()['job_id']}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = requests.get(url, timeout=10).json()
        if job["status"] not in ("queued", "running"):
            assert job["status"] == "succeeded", job
            assert sorted(job["result"]["indexed"]) == sorted(VIDEOS)
            return job
        time.sleep(0.1)
    raise AssertionError("the index job did not finish in time")


def open_search_tab(browser, srv: UIServer, locale: str, label: str):
    ctx = browser.new_context(locale=locale, viewport={"width": 1280, "height": 1000})
    page = ctx.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(srv.url)
    page.wait_for_selector("#vg-locate")
    tab = page.get_by_role("tab", name=label)
    tab.wait_for()  # relabelled after the load event followed the browser's language
    tab.click()
    page.wait_for_selector("#vg-search-query", state="visible")
    return page


def test_search_tab_finds_the_right_video_and_plays_it_from_the_moment(browser, server
                                                                        ) -> None:
    page = open_search_tab(browser, server, "en-US", "Search the library")
    try:
        page.locator("#vg-search-query").locator("textarea, input").first.fill("blue square")
        page.click("#vg-search-go")
        page.locator("#vg-search-status .vg-status.vg-ok").wait_for(state="visible")
        thumbs = page.locator("#vg-search-hits img")
        thumbs.first.wait_for(state="visible")
        # one thumbnail per moment, each a picture the server decoded (not a broken image)
        page.wait_for_function(
            "() => { const imgs = [...document.querySelectorAll('#vg-search-hits img')];"
            " return imgs.length === 3 && imgs.every(i => i.complete); }")
        sizes = page.eval_on_selector_all("#vg-search-hits img",
                                          "imgs => imgs.map(i => i.naturalWidth)")
        assert len(sizes) == 3 and all(width == 240 for width in sizes), sizes
        captions = page.eval_on_selector_all(
            "#vg-search-hits .caption-label, #vg-search-hits figcaption",
            "els => els.map(e => e.textContent)")
        assert captions and captions[0].startswith("blue.mp4"), captions
        assert "00:00:02" in captions[0] and "blue square" in captions[0]
        thumbs.first.click()
        page.wait_for_selector("#vg-search-player")
        # the media fragment: the browser seeks to the moment once the header is read
        page.wait_for_function(
            "() => { const v = document.querySelector('#vg-search-player');"
            " return v && v.readyState >= 1 && v.currentTime > 0; }")
        now = page.evaluate("document.querySelector('#vg-search-player').currentTime")
        assert now == pytest.approx(2.0, abs=FRAME), now
        assert "blue.mp4" in page.inner_text("#vg-search-playing")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "search-tab.png"), full_page=True)
        # a query the index cannot answer says so, and the page keeps working
        page.locator("#vg-search-query").locator("textarea, input").first.fill("x" * 600)
        page.click("#vg-search-go")
        error = page.locator("#vg-search-status .vg-status.vg-error")
        error.wait_for(state="visible")
        assert "500" in error.inner_text()
    finally:
        page.context.close()


def test_the_chinese_page_searches_in_chinese(browser, server) -> None:
    page = open_search_tab(browser, server, "zh-CN", "搜索视频库")
    try:
        assert "点击一个片段" in page.inner_text("#vg-search-player-box")
        page.locator("#vg-search-query").locator("textarea, input").first.fill("黄色方块")
        page.click("#vg-search-go")
        page.locator("#vg-search-status .vg-status.vg-ok").wait_for(state="visible")
        assert "片段" in page.inner_text("#vg-search-status")
        captions = page.eval_on_selector_all(
            "#vg-search-hits .caption-label, #vg-search-hits figcaption",
            "els => els.map(e => e.textContent)")
        assert captions and captions[0].startswith("sub/yellow.mp4"), captions
    finally:
        page.context.close()
