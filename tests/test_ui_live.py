"""The page's Live tab in a real browser (headless Chromium through Playwright): add a monitor
on a loopback HLS stream (``ffmpeg -re`` over a local http.server), see it connected and its
alerts arrive with an evidence thumbnail and a clip link that plays through the page's own
media route. A source the server may not watch shows the API's message. The real server
(API + page, uvicorn) runs against the fake model that looks at the frames."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("gradio")
pytest.importorskip("uvicorn")

from browser import needs_browser  # noqa: E402
from fake_openai_server import FakeOpenAIServer  # noqa: E402
from live_media import HlsStream  # noqa: E402
from media import make_video  # noqa: E402
from ui_server import UIServer, settings_for  # noqa: E402

QUERY = "When is the red square visible?"
TIMEOUT_MS = 60_000



@needs_browser
def test_live_tab_adds_a_monitor_and_shows_its_alerts(browser: object, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIDGROUND_STREAM_ALLOW", "127.0.0.1")
    clip = make_video(tmp_path / "clip.ts", duration=14.0, fps=24, gop=12,
                      intervals=((4.0, 7.0),), paint_index=False, size=(160, 120)).path
    with FakeOpenAIServer() as model, \
            UIServer(settings_for(model.base_url, tmp_path, tmp_path / "data")) as srv:
        ctx = browser.new_context(viewport={"width": 1280, "height": 1000})  # type: ignore[attr-defined]
        page = ctx.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(srv.url)
        page.get_by_role("tab", name="Live").click()
        # a source the server may not watch: the API's message, nothing stored
        page.locator("#vg-live-source input, #vg-live-source textarea").fill("file:///etc/passwd")
        page.locator("#vg-live-query input, #vg-live-query textarea").fill(QUERY)
        page.click("#vg-live-add")
        error = page.locator("#vg-live-status-box .vg-status.vg-error")
        error.wait_for(state="visible")
        assert "file://" in error.inner_text()
        assert page.locator("#vg-live-table").count() == 0
        with HlsStream(clip, tmp_path / "hls", segment_s=1.0) as hls:
            page.locator("#vg-live-source input, #vg-live-source textarea").fill(hls.url)
            page.click("#vg-live-add")
            page.locator("#vg-live-status-box .vg-status.vg-ok").wait_for(state="visible")
            # the timer refreshes the list: connected, then the alerts arrive
            page.locator('.vg-live-row[data-vg-status="connected"]').wait_for(
                state="attached")
            ended = page.locator('.vg-live-alert[data-vg-kind="ended"]')
            ended.wait_for(state="attached", timeout=45_000)
            started = page.locator('.vg-live-alert[data-vg-kind="started"]')
            assert started.count() == 1 and ended.count() == 1
            thumb = started.locator("img.vg-live-thumb")
            assert thumb.count() == 1 and page.evaluate(
                "img => img.complete && img.naturalWidth > 0", thumb.element_handle())
            href = ended.locator("a.vg-live-clip").get_attribute("href")
            assert href and href.startswith("/ui-media/")
            got = ctx.request.get(srv.url.rstrip("/") + href)
            assert got.status == 200 and got.body()[4:8] == b"ftyp"
            assert QUERY in page.locator("#vg-live-monitors").inner_text()
        ctx.close()
