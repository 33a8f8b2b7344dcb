"""A question quoting on-screen text, with a vision-language model configured: real OCR
(rapidocr, weights in its wheel) finds every hit to the frame, and the model (the fake
OpenAI-compatible server, which looks at the frames) chooses among them (issue 24 item 3).

The clip shows "PAYMENT FAILED" twice, burned in with a real font; a red square (what the fake
model sees) is on screen only with the second. So OCR alone answers both hits, and the model,
shown the frames around each hit and a prompt line listing them, picks the second.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer
from perception_media import LATIN_FONT
from PIL import Image, ImageDraw, ImageFont

from vidground.config import Settings
from vidground.grounding import Grounder
from vidground.grounding.candidates import (
    candidate_prompt,
    candidate_times,
    chosen,
    model_at_hand,
)
from vidground.grounding.prompts import build_prompt
from vidground.options import LocateOptions
from vidground.timecode import Span
from vidground.video.probe import VideoInfo

os.environ.setdefault("VIDGROUND_PERCEPTION_THREADS", "1")

FPS = 25
#: "PAYMENT FAILED" on frames 20..44 and 95..119; the red square with the second only
SHOWN = ((20, 44), (95, 119))
SQUARE = SHOWN[1]
QUESTION = 'When does "PAYMENT FAILED" appear on screen?'


def _exact(span: Span, frames: tuple[int, int]) -> bool:
    return abs(span.start * FPS - frames[0]) < 0.5 and abs(span.end * FPS - frames[1] - 1) < 0.5


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("quoted") / "payment.mp4"
    font = ImageFont.truetype(LATIN_FONT, 30)
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=Fraction(FPS), options={
            "preset": "ultrafast", "crf": "18"})
        stream.width, stream.height = 384, 216
        stream.pix_fmt = "yuv420p"
        for i in range(150):
            picture = Image.new("RGB", (384, 216), (90, 110, 130))
            draw = ImageDraw.Draw(picture)
            if any(a <= i <= b for a, b in SHOWN):
                draw.text((40, 30), "PAYMENT FAILED", font=font, fill=(255, 255, 255),
                          stroke_width=2, stroke_fill=(0, 0, 0))
            if SQUARE[0] <= i <= SQUARE[1]:
                draw.rectangle((150, 100, 230, 180), fill=(255, 0, 0))
            frame = av.VideoFrame.from_ndarray(np.asarray(picture), format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def _shown_times(fake: FakeOpenAIServer) -> list[float]:
    return sorted(t for r in fake.requests for t in r.times if t is not None)


def _prompt_text(fake: FakeOpenAIServer) -> str:
    return " ".join(p[5:] for r in fake.requests for p in r.parts if p.startswith("text:"))


def test_the_model_chooses_among_ocr_hits(clip: Path, fake_grounder: Grounder,
                                          fake_model: FakeOpenAIServer) -> None:
    fake_model.reset_stats()
    g = fake_grounder.locate(clip, QUESTION)
    assert len(g.spans) == 1 and _exact(g.spans[0], SHOWN[1]), g.spans
    assert g.spans[0].label == "PAYMENT FAILED"
    assert g.model.startswith("rapidocr") and fake_model.model in g.model
    assert f"chosen by {fake_model.model}" in g.answer
    assert g.timings["model_calls"] == fake_model.chat_count == 1
    assert g.timings["candidates"] == 2 and g.warnings == ()
    prompt = _prompt_text(fake_model)
    assert "1) 0.80 - 1.80 seconds; 2) 3.80 - 4.80 seconds" in prompt, prompt
    # only the frames around the hits (labelled with their true times): the frame before,
    # the first, middle and last, the frame after
    expected = [f / FPS for a, b in SHOWN for f in (a - 1, a, (a + b) // 2, b, b + 1)]
    assert _shown_times(fake_model) == pytest.approx(expected, abs=1e-3)


def test_every_occurrence_the_model_confirms(clip: Path, fake_grounder: Grounder,
                                             fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(answer="Answer: 0.8 - 1.8 seconds; 3.8 - 4.76 seconds")
    try:
        g = fake_grounder.locate(clip, QUESTION, LocateOptions(all_occurrences=True))
    finally:
        fake_model.configure(answer=None)
    assert [_exact(s, f) for s, f in zip(g.spans, SHOWN, strict=True)] == [True, True]


def test_a_model_that_chooses_none_leaves_ocr_answering(clip: Path, fake_grounder: Grounder,
                                                        fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(answer="Answer: NOT FOUND")
    try:
        g = fake_grounder.locate(clip, QUESTION)
    finally:
        fake_model.configure(answer=None)
    assert [_exact(s, f) for s, f in zip(g.spans, SHOWN, strict=True)] == [True, True]
    assert g.model.startswith("rapidocr") and fake_model.model not in g.model
    assert len(g.warnings) == 1 and "none of OCR's 2 hit(s)" in g.warnings[0]
    assert g.timings["model_calls"] == 1


def test_a_model_that_cannot_be_reached_leaves_ocr_answering(clip: Path) -> None:
    grounder = Grounder(settings=Settings(backend="openai",
                                          openai_base_url="http://127.0.0.1:9/v1",
                                          openai_model="m", openai_max_retries=0))
    g = grounder.locate(clip, QUESTION)
    assert [_exact(s, f) for s, f in zip(g.spans, SHOWN, strict=True)] == [True, True]
    assert "could not be asked" in g.warnings[0]


def test_no_model_at_hand_is_ocr_alone_and_asks_nothing(clip: Path, tmp_path: Path) -> None:
    grounder = Grounder(settings=Settings(backend="transformers",
                                          model=str(tmp_path / "no-such-model")))
    g = grounder.locate(clip, QUESTION)
    assert len(g.spans) == 2 and g.warnings == () and g.timings["model_calls"] == 0
    assert not grounder.backend_ready  # not even created


def test_time_range_limits_the_candidates(clip: Path, fake_grounder: Grounder,
                                          fake_model: FakeOpenAIServer) -> None:
    fake_model.reset_stats()
    g = fake_grounder.locate(clip, QUESTION, LocateOptions(time_range=(3.0, 6.0)))
    assert len(g.spans) == 1 and _exact(g.spans[0], SHOWN[1])
    assert g.timings["candidates"] == 1
    assert min(_shown_times(fake_model)) >= 3.0


def test_model_at_hand(tmp_path: Path) -> None:
    assert model_at_hand(Settings(backend="vllm"))
    assert not model_at_hand(Settings(backend="transformers", model=str(tmp_path / "none")))
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    assert model_at_hand(Settings(backend="transformers", model=str(tmp_path / "ckpt")))


def test_candidate_frames_stay_inside_the_range() -> None:
    info = probe_like(duration=6.0)
    times = candidate_times([Span(0.0, 0.4), Span(5.8, 6.0)], info)
    assert times[0] == pytest.approx(0.02) and times[-1] == pytest.approx(5.98)
    ranged = candidate_times([Span(3.0, 3.2)], info, (3.0, 3.2))
    assert all(3.0 <= t < 3.2 for t in ranged) and len(ranged) == 3


def test_candidate_prompt_lines_and_choice() -> None:
    spans = [Span(0.8, 1.8), Span(3.8, 4.8)]
    en = candidate_prompt(build_prompt("when?", language="en"), spans, ["PAYMENT FAILED"])
    assert '"PAYMENT FAILED" at these times: 1) 0.80 - 1.80 seconds' in en.user
    zh = candidate_prompt(build_prompt("“支付失败”什么时候出现？"), spans, ["支付失败"])
    assert "“支付失败”：1) 0.80 - 1.80 秒；2) 3.80 - 4.80 秒" in zh.user
    assert chosen(spans, [Span(3.84, 4.76)]) == [spans[1]]
    assert chosen(spans, [Span(1.0, 4.0)]) == spans
    assert chosen(spans, [Span(2.0, 3.0)]) == []
    assert chosen(spans, [Span(1.0, 1.0)]) == [spans[0]]


def probe_like(duration: float) -> VideoInfo:
    return VideoInfo(path="x.mp4", duration=duration, fps=float(FPS),
                     frame_count=int(duration * FPS), width=384, height=216, codec="h264",
                     container="mp4")



@pytest.mark.parametrize(("bounds", "expected"), [
    ((3.0, 6.0), [(95 / FPS, 120 / FPS)]),
    ((1.0, 3.0), [(1.0, 45 / FPS)]),   # the range starts while the phrase is on screen
    ((1.2, 3.0), [(1.2, 45 / FPS)]),
    ((1.9, 3.7), []),                  # between the two
])
def test_a_range_reads_the_cached_whole_scan(clip: Path, bounds: tuple[float, float],
                                             expected: list[tuple[float, float]]) -> None:
    """Once the whole video was read, a range costs no new scan: its samples (and one either
    side) come from the whole scan, and the spans are the same as a range scan's."""
    from vidground.perception import text
    from vidground.perception.results_cache import stored

    whole = text.find_text(clip, "PAYMENT FAILED")
    assert len(whole.spans) == 2
    found = text.find_text(clip, "PAYMENT FAILED", bounds=bounds)
    assert found.cached_scan
    got = [t for s in found.spans for t in (s.start, s.end)]
    assert got == pytest.approx([t for pair in expected for t in pair], abs=1e-6), found.spans
    size = text.ocr_size(probe_like(6.0))
    assert stored("ocr-scan", str(clip), {"step_s": text.DEFAULT_STEP_S, "size": list(size),
                                          "bounds": list(bounds)}) is None
