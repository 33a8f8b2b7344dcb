"""The web page in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

The real server (``create_app``: API + page, uvicorn on a free loopback port) runs against the
fake OpenAI-compatible model that looks at the frames (a red square visible from 1.0 s to 2.0 s).
The tests upload a real MP4, ask, read the time range the page shows, click the segment on the
timeline and read the ``<video>``'s ``currentTime``; an upload that is not a video shows a
readable error and the page keeps working; the language switch relabels the page.
A screenshot of the result is saved to ``test-artifacts/ui-result.png``.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("gradio")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from browser import ARTIFACTS, needs_browser  # noqa: E402
from fake_openai_server import FakeOpenAIServer  # noqa: E402
from media import make_text_file, make_video  # noqa: E402
from ui_server import UIServer, settings_for  # noqa: E402

from vidground.timecode import parse_timecode  # noqa: E402

TRUE_START, TRUE_END = 1.0, 2.0
SAMPLING_FPS = 5  # what the test sets in the page's options
TOLERANCE = 1.0 / SAMPLING_FPS + 0.05  # the fake model can only name sampled frame times
QUERY = "When is the red square visible?"
TIMEOUT_MS = 60_000
LOCAL = "http://127.0.0.1"  # the server answers loopback Host names only


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def media_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("media")
    make_video(root / "red_square.mp4", duration=4.0, fps=10, size=(192, 144), codec="h264",
               container="mp4", intervals=[(TRUE_START, TRUE_END)], color=(255, 0, 0))
    return root


@pytest.fixture(scope="module")
def not_a_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_text_file(tmp_path_factory.mktemp("bad") / "notes.mp4")


@pytest.fixture(scope="module")
def model():
    with FakeOpenAIServer(color=(255, 0, 0), object_name="red square") as srv:
        yield srv


@pytest.fixture(scope="module")
def server(model: FakeOpenAIServer, media_root: Path, tmp_path_factory: pytest.TempPathFactory):
    settings = settings_for(model.base_url, media_root, tmp_path_factory.mktemp("data"))
    with UIServer(settings) as srv:
        yield srv


def new_page(browser, url: str, locale: str = "en-US"):
    """A fresh browser context's page loaded at ``url`` (the page's load event has run);
    ``page.external_requests`` records requests that leave the machine. Close its
    ``page.context`` when done."""
    ctx = browser.new_context(locale=locale, viewport={"width": 1280, "height": 1000})
    page = ctx.new_page()
    page.external_requests = []
    page.on("request", lambda r: page.external_requests.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url)
    page.wait_for_selector("#vg-locate")
    # the load event (browser language -> labels, media list) has run
    page.wait_for_function("document.querySelector('#vg-media') !== null")
    return page


@pytest.fixture
def open_page(browser, server):
    """``open_page(locale)`` -> a loaded page of the module's server."""
    pages = []

    def _open(locale: str = "en-US"):
        pages.append(new_page(browser, server.url, locale))
        return pages[-1]

    yield _open
    for page in pages:
        page.context.close()


# -- helpers ----------------------------------------------------------------------------------


def upload(page, path: Path) -> None:
    page.set_input_files("#vg-upload input[type=file]", str(path))


def wait_status(page, kind: str) -> str:
    """Wait until the status box shows ``kind`` (ok/info/error) and return its text."""
    box = page.locator(f"#vg-status .vg-status.vg-{kind}")
    box.wait_for(state="visible")
    return box.inner_text()


def wait_ready(page) -> None:
    page.wait_for_selector("#vg-player")
    wait_status(page, "info")


def ask(page, query: str) -> None:
    page.fill("#vg-query textarea", query)
    page.click("#vg-locate")


def shown_ranges(page) -> list[tuple[float, float]]:
    text = page.input_value("#vg-range textarea")
    spans = []
    for line in text.splitlines():
        start, end = re.split(r"\s+[–-]\s+", line.strip())
        spans.append((parse_timecode(start), parse_timecode(end)))
    return spans


def current_time(page) -> float:
    return float(page.evaluate("document.getElementById('vg-player').currentTime"))


def wait_current_time_near(page, target: float, tol: float = 0.3) -> None:
    page.wait_for_function(
        "([t, tol]) => { const v = document.getElementById('vg-player');"
        " return v && Math.abs(v.currentTime - t) <= tol; }",
        arg=[target, tol], timeout=10_000,
    )


# -- tests --------------------------------------------------------------------------------------


@pytest.mark.slow
@needs_browser
def test_upload_ask_timeline_seek_and_history(open_page, model, media_root: Path) -> None:
    page = open_page("en-US")
    assert page.inner_text("#vg-locate").strip() == "Locate"

    upload(page, media_root / "red_square.mp4")
    wait_ready(page)
    # the player got the uploaded video from the page's own media route
    page.wait_for_function("document.getElementById('vg-player').readyState >= 1")
    assert abs(page.evaluate("document.getElementById('vg-player').duration") - 4.0) < 0.2

    # options: a denser fixed sampling rate
    page.click("#vg-options button, #vg-options .label-wrap", timeout=5_000)
    page.fill("#vg-fps input", str(SAMPLING_FPS))
    page.locator("#vg-fps input").press("Tab")

    ask(page, QUERY)
    wait_status(page, "ok")
    spans = shown_ranges(page)
    assert len(spans) == 1, spans
    start, end = spans[0]
    assert abs(start - TRUE_START) <= TOLERANCE, (start, end)
    assert abs(end - TRUE_END) <= TOLERANCE, (start, end)
    assert "red square" in page.input_value("#vg-answer textarea")

    # the timeline: one block, ticks, and the block seeks the player to the segment start
    seg = page.locator(".vg-track .vg-seg")
    assert seg.count() == 1
    assert page.locator(".vg-ticks .vg-tick").count() >= 3
    page.evaluate("document.getElementById('vg-player').currentTime = 3.5")
    wait_current_time_near(page, 3.5, 0.05)
    seg.first.click()
    wait_current_time_near(page, start)
    page.wait_for_function("!document.getElementById('vg-player').paused")

    # the ▶ button of the segment does the same
    page.evaluate("const v = document.getElementById('vg-player'); v.pause(); v.currentTime = 0")
    wait_current_time_near(page, 0.0, 0.05)
    page.locator(".vg-seglist .vg-play").first.click()
    wait_current_time_near(page, start)
    page.evaluate("document.getElementById('vg-player').pause()")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-result.png"), full_page=True)

    # a second question on the same video, then re-open the first from the history
    ask(page, "Where is the blue circle?")
    page.wait_for_function(
        "document.querySelectorAll('#vg-history input[type=radio]').length === 2")
    first_range = f"{start}"
    calls = model.chat_count
    page.locator("#vg-history label", has_text=QUERY).click()
    wait_status(page, "info")
    assert page.input_value("#vg-query textarea") == QUERY
    assert shown_ranges(page) == spans, first_range
    assert model.chat_count == calls, "re-opening a result must not ask the model again"

    assert page.external_requests == [], "the page fetched something from the internet"


@pytest.mark.slow
@needs_browser
def test_not_a_video_shows_error_and_page_keeps_working(open_page, model, not_a_video: Path
                                                        ) -> None:
    page = open_page("en-US")
    upload(page, not_a_video)
    message = wait_status(page, "error")
    assert "video" in message.lower(), message
    assert len(message) < 400

    # asking about it gives a readable error too, not a crash
    ask(page, QUERY)
    page.wait_for_function(
        "document.querySelector('#vg-status .vg-error') !== null"
        " && !document.querySelector('#vg-status .vg-error').innerText.includes('Traceback')")

    # the page still works: pick the good video from the media root and ask
    page.locator("#vg-media input").click()
    page.locator("[role=option]", has_text="red_square.mp4").click()
    wait_ready(page)
    model.configure(delay_s=0.7)  # slow model: the page shows progress, it does not freeze
    try:
        ask(page, QUERY)
        bar = page.locator("#vg-status [role=progressbar]")
        bar.wait_for(state="visible")
        assert bar.get_attribute("aria-label")
        wait_status(page, "ok")
    finally:
        model.configure(delay_s=0.0)
    (start, end), = shown_ranges(page)
    assert abs(start - TRUE_START) <= 0.5 + 0.05 and abs(end - TRUE_END) <= 0.5 + 0.05


@pytest.mark.slow
@needs_browser
def test_page_keeps_the_api_limits_and_shows_the_api_message(browser, model, media_root: Path,
                                                             tmp_path: Path) -> None:
    """The page goes through the API's service: a 4 s video on a server that accepts 3 s is
    refused at upload and when picked from the media root, with the API's own message (after
    a Chinese summary on the Chinese page), and the model is never asked."""
    import requests

    settings = settings_for(model.base_url, media_root, tmp_path / "data",
                            max_video_duration_s=3.0)
    calls = model.chat_count
    with UIServer(settings) as srv:
        api = requests.post(srv.url + "api/v1/inference", timeout=30, json={
            "video_path": "red_square.mp4", "query": QUERY})
        assert api.status_code == 413
        api_message = api.json()["error"]["message"]
        for locale, summary in (("en-US", ""), ("zh-CN", "视频超出了服务器的限制")):
            page = new_page(browser, srv.url, locale)
            try:
                upload(page, media_root / "red_square.mp4")
                message = wait_status(page, "error")
                assert api_message in message, (message, api_message)
                assert summary in message
                page.locator("#vg-media input").click()
                page.locator("[role=option]", has_text="red_square.mp4").click()
                page.wait_for_function(
                    "document.querySelector('#vg-status .vg-error') !== null && "
                    "document.querySelector('#vg-status .vg-error').innerText.includes("
                    "'VIDGROUND_MAX_VIDEO_DURATION_S')")
                ask(page, QUERY)
                wait_status(page, "error")
            finally:
                page.context.close()
    assert model.chat_count == calls, "the page asked the model about a refused video"


@pytest.mark.slow
@needs_browser
def test_page_loads_clean_and_the_api_docs_render_offline(open_page, server) -> None:
    """No Gradio update object shown as text at load (the time-range box showed
    ``{'__type__': 'update'}``); ``/docs`` and ``/redoc`` render from files in the package,
    with nothing fetched from the internet (Swagger UI came from a CDN: a blank page)."""
    for locale in ("en-US", "zh-CN"):
        page = open_page(locale)
        page.wait_for_timeout(500)  # the load event has filled the page
        leaked = page.evaluate(
            "Array.from(document.querySelectorAll('body *')).filter(e => "
            "(e.value || '').includes('__type__') || (e.children.length === 0 && "
            "(e.textContent || '').includes('__type__'))).map(e => e.outerHTML.slice(0, 200))")
        assert leaked == [], leaked
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"ui-load-{locale}.png"), full_page=True)
        # the language switch lies on one line
        boxes = page.evaluate("Array.from(document.querySelectorAll('#vg-lang label'))"
                              ".map(l => l.getBoundingClientRect().top)")
        assert len(boxes) == 2 and abs(boxes[0] - boxes[1]) < 4, boxes
        assert page.external_requests == []
    page.goto(server.url + "docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    paths = page.evaluate("Array.from(document.querySelectorAll('.opblock-summary-path'))"
                          ".map(e => e.textContent)")
    assert any("/api/v1/inference" in p for p in paths), paths
    page.screenshot(path=str(ARTIFACTS / "api-docs.png"))
    assert page.external_requests == [], page.external_requests
    page.goto(server.url + "redoc")
    page.wait_for_function("document.body.innerText.includes('/api/v1/inference')",
                           timeout=30_000)
    # ReDoc renders offline; its bundle only asks for its own "powered by" logo
    assert all(u.startswith("https://cdn.redoc.ly/") for u in page.external_requests), \
        page.external_requests


@pytest.mark.slow
@needs_browser
def test_page_downloads_exports_and_shows_evidence_frames(open_page, media_root: Path,
                                                          tmp_path: Path) -> None:
    """After an answer: an SRT download whose cue times are the segment's to the millisecond
    (read back by the ``srt`` library), a WebVTT one after switching the format, and under the
    timeline the first/middle/last frames of the segment at their times; clicking one seeks
    the player there."""
    import srt
    import webvtt

    page = open_page("en-US")
    upload(page, media_root / "red_square.mp4")
    wait_ready(page)
    page.click("#vg-options button, #vg-options .label-wrap", timeout=5_000)
    page.fill("#vg-fps input", str(SAMPLING_FPS))
    page.locator("#vg-fps input").press("Tab")
    ask(page, QUERY)
    wait_status(page, "ok")
    (start, end), = shown_ranges(page)
    # the answer states the final times, in the format the page shows them in
    start_text, end_text = re.split(r"\s+[–-]\s+", page.input_value("#vg-range textarea"))
    answer = page.input_value("#vg-answer textarea")
    assert start_text in answer and end_text in answer, (answer, start_text, end_text)

    with page.expect_download() as dl:
        page.click("#vg-export")
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(path)
    assert path.name == "red_square.srt"
    (cue,) = list(srt.parse(path.read_text(encoding="utf-8")))
    assert abs(cue.start.total_seconds() - start) < 0.0015
    assert abs(cue.end.total_seconds() - end) < 0.0015

    page.locator("#vg-export-format input").click()
    page.locator("[role=option]", has_text="vtt").first.click()
    page.wait_for_timeout(800)
    with page.expect_download() as dl:
        page.click("#vg-export")
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(path)
    assert path.suffix == ".vtt"
    (caption,) = list(webvtt.read(str(path)))
    assert abs(parse_timecode(caption.start) - start) < 0.0015
    assert abs(parse_timecode(caption.end) - end) < 0.0015

    thumbs = page.locator("#vg-evidence .vg-thumb")
    thumbs.first.wait_for()
    assert thumbs.count() == 3
    roles = [thumbs.nth(i).get_attribute("data-vg-role") for i in range(3)]
    times = [float(thumbs.nth(i).get_attribute("data-vg-start")) for i in range(3)]
    assert roles == ["first", "middle", "last"]
    assert start - 1e-6 <= times[0] <= times[1] <= times[2] < end
    assert page.evaluate("document.querySelector('#vg-evidence img').naturalWidth") > 0
    page.evaluate("document.getElementById('vg-player').currentTime = 0")
    wait_current_time_near(page, 0.0, 0.05)
    thumbs.nth(1).click()
    wait_current_time_near(page, times[1])
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-evidence.png"), full_page=True)


@pytest.mark.slow
@needs_browser
def test_page_lists_what_happens_when(browser, tmp_path: Path) -> None:
    """"What happens when?" lists every event of the video with its times (the fake model
    sees a red square at 1.0-2.0 s and a blue one at 2.5-3.5 s), on the timeline and in the
    download."""
    from test_outputs_describe import BLUE_AT, EVENTS, RED_AT, make_two_events

    from vidground.outputs.describe import DESCRIBE_DEFAULTS

    root = tmp_path / "media"
    root.mkdir()
    make_two_events(root / "two.mp4")
    with FakeOpenAIServer(events=EVENTS) as events_model, UIServer(
            settings_for(events_model.base_url, root, tmp_path / "data")) as srv:
        page = new_page(browser, srv.url)
        try:
            upload(page, root / "two.mp4")
            wait_ready(page)
            page.click("#vg-describe")
            wait_status(page, "ok")
            spans = shown_ranges(page)
            assert len(spans) == 2, spans
            for (start, end), (true_start, true_end) in zip(spans, (RED_AT, BLUE_AT),
                                                            strict=True):
                assert abs(start - true_start) <= 0.11 and abs(end - true_end) <= 0.11, spans
            answer = page.input_value("#vg-answer textarea")
            assert "red square" in answer and "blue square" in answer
            assert page.locator(".vg-track .vg-seg").count() == 2
            # the API's path and defaults (issue 22.1: the page asked 512 new tokens, the API
            # 1024): the list of events is asked with describe's budget
            asked = {r.body.get("max_tokens") for r in events_model.requests}
            assert max(asked) == DESCRIBE_DEFAULTS["max_new_tokens"], asked
        finally:
            page.context.close()


@pytest.mark.slow
@needs_browser
def test_language_follows_browser_and_switch_relabels(open_page) -> None:
    page = open_page("zh-CN")
    page.wait_for_function("document.querySelector('#vg-locate').innerText.trim() === '定位'")
    assert "问题" in page.inner_text("#vg-query")
    page.locator("#vg-lang label", has_text="English").click()
    page.wait_for_function("document.querySelector('#vg-locate').innerText.trim() === 'Locate'")
    assert "Question" in page.inner_text("#vg-query")
    page.locator("#vg-lang label", has_text="中文").click()
    page.wait_for_function("document.querySelector('#vg-locate').innerText.trim() === '定位'")


# -- the page's helpers, without a browser ------------------------------------------------------


def test_media_listing_stays_inside_the_root(tmp_path: Path) -> None:
    from vidground.server.ui.media import list_media, resolve_media

    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / ".hidden").mkdir()
    outside = tmp_path / "outside.mp4"
    outside.write_bytes(b"x")
    mp4_head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
    mkv_head = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm"
    for rel, head in (("one.mp4", mp4_head), ("a/two.MKV", mkv_head),
                      ("a/b/three.webm", mkv_head), (".hidden/four.mp4", mp4_head),
                      ("notes.txt", b"notes"), ("text.mp4", b"just some notes, not a video"),
                      ("empty.mkv", b"")):
        (root / rel).write_bytes(head)
    (root / "link.mp4").symlink_to(outside)
    assert list_media(root) == ["a/b/three.webm", "a/two.MKV", "one.mp4"]
    assert len(list_media(root, limit=1)) == 1
    assert list_media(tmp_path / "missing") == []
    assert resolve_media(root, "a/two.MKV") == (root / "a" / "two.MKV").resolve()
    from vidground.errors import VidgroundError

    for bad in ("../outside.mp4", "/etc/passwd", "link.mp4", "notes.txt", "nope.mp4", "",
                "a/../../outside.mp4"):
        with pytest.raises(VidgroundError):
            resolve_media(root, bad)


def test_media_route_serves_only_registered_files(tmp_path: Path) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    import vidground.server.ui as ui
    from vidground.config import Settings

    video = tmp_path / "clip.mp4"
    video.write_bytes(b"0123456789")
    registry = ui.MediaRegistry(limit=2)
    token = registry.register(video)
    assert registry.register(video) == token
    assert registry.get(token) == video.resolve()

    from vidground.server.service import Service

    app = FastAPI()
    original = ui.MediaRegistry
    ui.MediaRegistry = lambda: registry  # type: ignore[assignment]
    try:
        ui.mount_ui(app, Service(Settings(media_root=tmp_path), grounder=None))  # type: ignore[arg-type]
    finally:
        ui.MediaRegistry = original  # type: ignore[assignment]
    with TestClient(app) as client:
        ok = client.get(f"/ui-media/{token}", headers={"Range": "bytes=2-5"})
        assert ok.status_code == 206 and ok.content == b"2345"
        assert client.get("/ui-media/not-a-token").status_code == 404
        assert client.get("/ui-media/..%2Fclip.mp4").status_code == 404
        page = client.get("/")
        assert page.status_code == 200 and "vidground" in page.text
        assert "fonts.googleapis" not in page.text


def test_timeline_html_places_segments_and_ticks() -> None:
    from vidground.server.ui.render import tick_step, timeline_html
    from vidground.timecode import Span
    from vidground.video.probe import VideoInfo

    class FakeGrounding:  # the three things timeline_html reads of a Grounding
        spans = (Span(25.0, 50.0),)
        motion = None
        video = VideoInfo(path="x.mp4", duration=100.0, fps=25.0, frame_count=2500, width=64,
                          height=48, codec="h264", container="mp4")

        def to_response(self, fmt):
            return {"segments": [s.to_dict(fmt, fps=25.0) for s in self.spans]}

    html = timeline_html(FakeGrounding(), "seconds", "en")  # type: ignore[arg-type]
    assert 'data-vg-start="25.000000"' in html and "left:25.0000%;width:25.0000%" in html
    assert "25.000" in html and "▶ Play" in html
    assert tick_step(100.0) == 10 and tick_step(4.0) == 0.5 and tick_step(7200.0) == 900
    assert "定位" not in timeline_html(None, "seconds", "en")
    assert "vg-motion" not in html
    from vidground.server.ui.render import motion_svg

    svg = motion_svg([0.0, 1.0, 0.5, 0.0], 4.0)  # second 1 is the peak: y = 10 at x 25..50
    assert "25.000,10.00 50.000,10.00" in svg and svg.startswith('<svg class="vg-motion"')


def _app(tmp_path: Path, **changes):
    from vidground.config import Settings
    from vidground.server.app import create_app

    return create_app(Settings(media_root=tmp_path, data_dir=tmp_path / "data",
                               backend="openai", openai_base_url="http://127.0.0.1:9/v1",
                               **changes))


def test_page_needs_the_api_key_when_one_is_set(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    with TestClient(_app(tmp_path, api_key="sekret"), base_url=LOCAL) as client:
        assert client.get("/config").status_code == 401
        assert client.post("/login", data={"username": "me", "password": "nope"}
                           ).status_code >= 400
        assert client.post("/login", data={"username": "me", "password": "sekret"}
                           ).status_code == 200
        assert client.get("/config").status_code == 200


def test_page_upload_takes_videos_larger_than_a_json_request(tmp_path: Path) -> None:
    """The page uploads through Gradio's own route; only ``max_upload_mb`` may limit it,
    not the API's JSON body limit (``max_request_kb``)."""
    from fastapi.testclient import TestClient

    size = 1024 * 1024 + 4096
    with TestClient(_app(tmp_path, max_request_kb=1024), base_url=LOCAL) as client:
        reply = client.post("/gradio_api/upload",
                            files={"files": ("big.mp4", b"\0" * size, "video/mp4")})
        assert reply.status_code == 200, reply.text


def test_timeline_draws_the_motion_curve_of_adaptive_sampling(tmp_path: Path,
                                                              fake_grounder) -> None:
    from media import make_video

    from vidground.options import LocateOptions
    from vidground.server.ui.render import timeline_html

    video = make_video(tmp_path / "blink.mp4", duration=6.0, fps=25, intervals=[(3.1, 3.5)],
                       paint_index=False)
    g = fake_grounder.locate(video.path, "When is the red square visible?",
                             LocateOptions(frame_sampling_rate="adaptive", refine=False))
    html = timeline_html(g, "seconds", "en")
    assert '<svg class="vg-motion"' in html and html.index("vg-motion") < html.index("vg-seg")
    assert ",10.00 " in html  # the peak second is drawn at the top of the track
