"""OpenAICompatBackend against a real local HTTP server that looks at the frames it gets."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from fake_openai_server import FakeOpenAIServer

from vidground.backends.base import Backend, Prompt
from vidground.backends.fitting import Built, fit_request, track_fit
from vidground.backends.openai_compat import (
    MIN_FIT_QUALITY,
    MIN_FIT_SCALE,
    OpenAICompatBackend,
    RequestTooLargeError,
    backoff_delay,
    fit_steps,
    format_time_label,
    parse_sse_line,
    retry_after_seconds,
    time_label_decimals,
)
from vidground.backends.structured import (
    MAX_SPANS,
    MAX_TIME_S,
    grounding_schema,
    refuses_structure,
    structured_answers,
)
from vidground.config import Settings
from vidground.errors import BackendError, ModelNotAvailableError
from vidground.grounding.answer import parse_answer
from vidground.grounding.prompts import build_prompt, build_verify_prompt
from vidground.video.decode import Frame

PROMPT = Prompt(system="You find when things happen.", user="When is the red square visible?")


def make_frames(times: list[float], red_between: tuple[float, float] | None,
                size: int = 64) -> list[Frame]:
    """Grey frames at ``times``; a red square in those within ``red_between`` (inclusive)."""
    frames = []
    for i, t in enumerate(times):
        image = np.full((size, size, 3), 60, dtype=np.uint8)
        image[:, :, 2] = 90
        if red_between and red_between[0] <= t <= red_between[1]:
            image[size // 4: size // 2 + 8, size // 4: size // 2 + 8] = (225, 25, 30)
        frames.append(Frame(time=t, image=image, index=i))
    return frames


def fast_backend(srv: FakeOpenAIServer, **kwargs) -> OpenAICompatBackend:
    """A backend with short timeouts and backoff so failure tests stay quick."""
    options = {"timeout_s": 5.0, "max_retries": 2, "backoff_base_s": 0.05,
               "backoff_max_s": 0.2}
    options.update(kwargs)
    return OpenAICompatBackend(srv.base_url, **options)


@pytest.fixture()
def srv() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(color=(255, 0, 0), object_name="red square") as server:
        yield server


def free_closed_port() -> int:
    """A port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- answers and what the server saw ------------------------------------------------------------


def test_generate_finds_the_span_and_sends_every_time_before_its_image(srv):
    times = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0]
    backend = fast_backend(srv)
    assert isinstance(backend, Backend)
    answer = backend.generate(make_frames(times, (1.5, 3.0)), PROMPT)
    assert answer == "The red square is visible from 1.5 to 3.0 seconds."
    record = srv.requests[-1]
    expected_parts = []
    for t in times:
        expected_parts += [f"text:<{t:.1f} seconds>", "image"]
    expected_parts.append("text:" + PROMPT.user)
    assert record.parts == expected_parts
    assert record.times == times
    assert record.present == [1.5 <= t <= 3.0 for t in times]
    assert record.body["messages"][0] == {"role": "system", "content": PROMPT.system}
    assert record.body["model"] == "fake/qwen3-vl"
    assert record.body["max_tokens"] == 512 and record.body["stream"] is False


def test_absent_object_and_several_runs(srv):
    backend = fast_backend(srv)
    assert backend.generate(make_frames([0, 1, 2, 3], None), PROMPT) == (
        "The red square does not appear in the video.")
    frames = make_frames([0, 1, 2, 3, 4, 5], (1, 1)) + make_frames([6, 7], (6, 7))
    frames[5] = make_frames([5.0], None)[0]
    frames[4] = make_frames([4.0], (4, 4))[0]
    assert backend.generate(frames, PROMPT) == (
        "The red square is visible from 1.0 to 1.0 seconds and from 4.0 to 4.0 seconds and "
        "from 6.0 to 7.0 seconds.")


def test_model_name_comes_from_models_endpoint_once(srv):
    srv.configure(models=["Qwen/Qwen3-VL-4B-Instruct", "other"])
    backend = fast_backend(srv)
    assert backend.model_name == "Qwen/Qwen3-VL-4B-Instruct"
    backend.generate(make_frames([0.0, 1.0], None), PROMPT)
    backend.generate(make_frames([0.0, 1.0], None), PROMPT)
    assert srv.models_count == 1
    assert srv.requests[-1].body["model"] == "Qwen/Qwen3-VL-4B-Instruct"


def test_configured_model_skips_discovery_and_sends_api_key(srv):
    srv.configure(api_key="sekret")
    backend = fast_backend(srv, model="my-model", api_key="sekret")
    backend.generate(make_frames([0.0], None), PROMPT)
    assert srv.models_count == 0
    assert srv.requests[-1].body["model"] == "my-model"
    assert srv.requests[-1].headers["Authorization"] == "Bearer sekret"


def test_wrong_api_key_is_a_clear_error_not_retried(srv):
    srv.configure(api_key="sekret")
    backend = fast_backend(srv, model="m", api_key="wrong")
    with pytest.raises(BackendError, match="VIDGROUND_OPENAI_API_KEY"):
        backend.generate(make_frames([0.0], None), PROMPT)


def test_from_settings_maps_every_field():
    settings = Settings(openai_base_url="http://example.invalid:9/v1/", openai_model="m",
                        openai_api_key="k", openai_timeout_s=7, openai_max_concurrency=3,
                        openai_max_retries=1, openai_image_quality=50,
                        openai_video_mode="video_url")
    backend = OpenAICompatBackend.from_settings(settings)
    assert backend.base_url == "http://example.invalid:9/v1"
    assert (backend.model_name, backend.api_key, backend.timeout_s) == ("m", "k", 7.0)
    assert (backend.max_concurrency, backend.max_retries) == (3, 1)
    assert (backend.image_quality, backend.video_mode) == (50, "video_url")


def test_unknown_video_mode_is_rejected():
    with pytest.raises(BackendError, match="video mode"):
        OpenAICompatBackend("http://127.0.0.1:1/v1", video_mode="gif")


# -- time labels ----------------------------------------------------------------------------------


def test_time_labels_get_more_decimals_only_when_frames_are_close():
    assert time_label_decimals([0.0, 0.5, 1.0]) == 1
    assert time_label_decimals([0.0, 0.04, 0.08]) == 2
    assert time_label_decimals([1.0, 1.004, 1.008]) == 3
    assert format_time_label(12.5) == "<12.5 seconds>"
    assert format_time_label(0.04, 2) == "<0.04 seconds>"


def test_close_frames_are_labelled_distinctly_on_the_wire(srv):
    times = [2.0, 2.04, 2.08, 2.12]
    fast_backend(srv).generate(make_frames(times, (2.04, 2.08)), PROMPT)
    labels = [p for p in srv.requests[-1].parts if p.startswith("text:<")]
    assert labels == ["text:<2.00 seconds>", "text:<2.04 seconds>", "text:<2.08 seconds>",
                      "text:<2.12 seconds>"]


def test_max_image_side_and_quality_shrink_the_request(srv):
    frames = make_frames([0.0, 1.0], (0, 1), size=256)
    fast_backend(srv, max_image_side=64).generate(frames, PROMPT)
    assert srv.requests[-1].image_sizes == [(64, 64), (64, 64)]
    assert srv.requests[-1].present == [True, True]


# -- video_url mode (vLLM frame list + metadata) -------------------------------------------------


def test_video_url_mode_sends_one_frame_list_with_real_times_as_metadata(srv):
    times = [10.0, 10.5, 11.0, 11.5, 12.25, 13.0]
    backend = fast_backend(srv, video_mode="video_url")
    answer = backend.generate(make_frames(times, (11.0, 12.25)), PROMPT)
    assert answer == "The red square is visible from 11.0 to 12.25 seconds."
    body = srv.requests[-1].body
    assert srv.requests[-1].parts == ["video", "text:" + PROMPT.user]
    video = body["media_io_kwargs"]["video"]
    assert video["fps"] == 1000.0
    assert video["frames_indices"] == [10000, 10500, 11000, 11500, 12250, 13000]
    assert video["total_num_frames"] == 13001 and video["num_frames"] == 6
    assert body["mm_processor_kwargs"] == {"do_sample_frames": False}
    url = body["messages"][-1]["content"][0]["video_url"]["url"]
    assert url.startswith("data:video/jpeg;base64,") and url.count(",") == len(times)


# -- request size caps ----------------------------------------------------------------------------


def test_too_many_frames_raise_before_sending(srv):
    backend = fast_backend(srv, max_frames_per_request=4)
    with pytest.raises(RequestTooLargeError, match="exceed the cap of 4"):
        backend.generate(make_frames([0, 1, 2, 3, 4], None), PROMPT)
    assert srv.chat_count == 0
    assert backend.generate(make_frames([0, 1, 2, 3], None), PROMPT)


def noisy_frames(count: int, side: int = 128) -> list[Frame]:
    """Random pictures: JPEG cannot compress them much (about 17 kB of base64 each at 128 px)."""
    rng = np.random.default_rng(0)
    return [Frame(float(t), rng.integers(0, 255, (side, side, 3), dtype=np.uint8))
            for t in range(count)]


def test_a_request_over_the_byte_cap_is_encoded_smaller_until_it_fits(srv):
    # 4 noisy frames are ~70 kB at quality 85: over a 20 kB cap the client lowers the JPEG
    # quality, then the size, measured on the bytes it sends; the server refuses larger bodies
    srv.configure(max_body_bytes=20_000)
    backend = fast_backend(srv, max_request_bytes=20_000)
    with track_fit() as fit:
        backend.generate(noisy_frames(4), PROMPT)
    assert srv.chat_count == 1 and srv.body_sizes[0] <= 20_000
    assert srv.requests[-1].times == [0.0, 1.0, 2.0, 3.0]
    assert fit.refitted == 1 and fit.split == 0
    assert MIN_FIT_QUALITY <= fit.min_quality < 85
    assert 128 * MIN_FIT_SCALE - 1 <= fit.min_side < 128
    assert max(srv.requests[-1].image_sizes) == (fit.min_side, fit.min_side)
    # what fits at the configured quality is sent at that quality
    srv.configure(max_body_bytes=None)
    with track_fit() as untouched:
        fast_backend(srv, max_request_bytes=200_000).generate(noisy_frames(4), PROMPT)
    assert untouched.refitted == 0 and srv.requests[-1].image_sizes[0] == (128, 128)


def test_too_many_bytes_raise_before_sending_saying_how_many_frames_fit(srv):
    backend = fast_backend(srv, max_request_bytes=10_000)
    with pytest.raises(RequestTooLargeError, match="request cap") as caught:
        backend.generate(noisy_frames(4), PROMPT)
    assert caught.value.fits == 2
    assert "at most 2 frames fit" in caught.value.message
    assert "VIDGROUND_OPENAI_MAX_REQUEST_MB" in caught.value.message
    assert srv.chat_count == 0


def test_not_even_one_frame_fitting_names_the_setting_to_change(srv):
    backend = fast_backend(srv, max_request_bytes=3_000)
    with pytest.raises(RequestTooLargeError, match="not even one frame") as caught:
        backend.generate(noisy_frames(4), PROMPT)
    assert caught.value.fits == 0
    assert "VIDGROUND_OPENAI_MAX_REQUEST_MB" in caught.value.message
    assert srv.chat_count == 0


def test_fit_steps_never_raise_quality_or_size():
    assert fit_steps(85, 640) == [(85, 640), (75, 640), (65, 640), (55, 640), (50, 640),
                                  (50, 544), (50, 448)]
    assert fit_steps(40, 100) == [(40, 100), (40, 85), (40, 70)]


# -- failures -------------------------------------------------------------------------------------


def test_slow_server_times_out_within_the_timeout(srv):
    srv.configure(delay_s=60)  # woken when the fake server stops
    backend = fast_backend(srv, model="m", timeout_s=0.5, max_retries=1)
    start = time.monotonic()
    with pytest.raises(BackendError, match="timeout"):
        backend.generate(make_frames([0.0], None), PROMPT)
    elapsed = time.monotonic() - start
    assert srv.chat_count == 2  # one retry
    # two 0.5 s attempts (+ backoff), and far less than one answer of the server (60 s): the
    # upper bound leaves a loaded machine room, not 1 s
    assert 1.0 <= elapsed < 30.0


def test_429_is_retried_honouring_retry_after(srv):
    srv.configure(fail_429_times=2, retry_after="0.3")
    backend = fast_backend(srv, model="m", max_retries=3)
    start = time.monotonic()
    answer = backend.generate(make_frames([0.0, 1.0], (1, 1)), PROMPT)
    assert answer == "The red square is visible from 1.0 to 1.0 seconds."
    assert srv.chat_count == 3
    assert [r.status for r in srv.requests] == [429, 429, 200]
    assert time.monotonic() - start >= 0.6  # waited Retry-After twice


def test_500_forever_fails_after_max_retries_with_the_server_message(srv):
    srv.configure(always_500=True, fail_message="CUDA out of memory")
    backend = fast_backend(srv, model="m", max_retries=2)
    with pytest.raises(BackendError) as info:
        backend.generate(make_frames([0.0], None), PROMPT)
    assert srv.chat_count == 3
    assert "after 3 attempts" in info.value.message
    assert "HTTP 500: CUDA out of memory" in info.value.message


def test_400_is_not_retried_and_carries_the_server_message(srv):
    srv.configure(fail_status=400, fail_message="At most 5 image(s) may be provided")
    backend = fast_backend(srv, model="m", max_retries=3)
    with pytest.raises(BackendError, match=r"HTTP 400: At most 5 image\(s\) may be provided"):
        backend.generate(make_frames([0.0], None), PROMPT)
    assert srv.chat_count == 1


def test_404_model_is_model_not_available(srv):
    srv.configure(fail_status=404, fail_message="The model `nope` does not exist.")
    with pytest.raises(ModelNotAvailableError, match="VIDGROUND_OPENAI_MODEL"):
        fast_backend(srv, model="nope").generate(make_frames([0.0], None), PROMPT)
    assert srv.chat_count == 1


def test_connection_refused_says_where_and_how_to_start_a_server():
    port = free_closed_port()
    backend = OpenAICompatBackend(f"http://127.0.0.1:{port}/v1", model="m", max_retries=1,
                                  backoff_base_s=0.01)
    with pytest.raises(BackendError) as info:
        backend.generate(make_frames([0.0], None), PROMPT)
    message = info.value.message
    assert f"http://127.0.0.1:{port}/v1 is not reachable" in message
    assert "vllm serve Qwen/Qwen3-VL-4B-Instruct" in message


def test_model_discovery_against_a_closed_port_is_clear():
    port = free_closed_port()
    with pytest.raises(BackendError, match="not reachable"):
        _ = OpenAICompatBackend(f"http://127.0.0.1:{port}/v1").model_name


def test_garbage_body_is_a_clear_error(srv):
    srv.configure(garbage=True)
    with pytest.raises(BackendError, match="not JSON"):
        fast_backend(srv, model="m").generate(make_frames([0.0], None), PROMPT)
    assert srv.chat_count == 1


def test_empty_answer_is_a_clear_error(srv):
    srv.configure(empty=True)
    backend = fast_backend(srv, model="m")
    with pytest.raises(BackendError, match="empty answer"):
        backend.generate(make_frames([0.0], None), PROMPT)
    with pytest.raises(BackendError, match="empty answer"):
        backend.generate(make_frames([0.0], None), PROMPT, on_token=lambda piece: None)


def test_missing_choices_is_a_clear_error(srv):
    srv.configure(answer=None)
    backend = fast_backend(srv, model="m")
    from vidground.backends.openai_compat import parse_completion

    with pytest.raises(BackendError, match="without any choices"):
        parse_completion('{"object": "chat.completion", "choices": []}', srv.base_url)
    with pytest.raises(BackendError, match="without any choices"):
        parse_completion('{"error": "x"}', srv.base_url)
    assert backend.generate(make_frames([0.0], None), PROMPT)


# -- streaming ------------------------------------------------------------------------------------


def test_streaming_delivers_pieces_in_order(srv):
    pieces: list[str] = []
    backend = fast_backend(srv)
    answer = backend.generate(make_frames([0.0, 0.5, 1.0], (0.5, 1.0)), PROMPT,
                              on_token=pieces.append, max_new_tokens=64)
    assert answer == "The red square is visible from 0.5 to 1.0 seconds."
    assert len(pieces) > 3 and "".join(pieces) == answer
    assert srv.requests[-1].body["stream"] is True
    assert srv.requests[-1].body["max_tokens"] == 64


def test_streaming_with_garbage_is_a_clear_error(srv):
    srv.configure(garbage=True)
    with pytest.raises(BackendError, match="not JSON"):
        fast_backend(srv, model="m").generate(make_frames([0.0], None), PROMPT,
                                              on_token=lambda p: None)


def test_sse_lines():
    assert parse_sse_line('data: {"choices":[{"delta":{"content":"hi"}}]}') == "hi"
    assert parse_sse_line("data: [DONE]") is None
    assert parse_sse_line(": keep-alive") is None
    assert parse_sse_line('data: {"choices":[],"usage":{"total_tokens":3}}') is None
    with pytest.raises(BackendError, match="while streaming: boom"):
        parse_sse_line('data: {"error": {"message": "boom"}}')


def test_retry_after_and_backoff():
    assert retry_after_seconds("2", cap=60) == 2.0
    assert retry_after_seconds("999", cap=60) == 60.0
    assert retry_after_seconds("soon", cap=60) is None
    assert retry_after_seconds(None, cap=60) is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", cap=60) == 0.0
    delays = [backoff_delay(a, 0.5, 4.0) for a in range(6)]
    assert 0.25 <= delays[0] <= 0.5 and 0.5 <= delays[1] <= 1.0
    assert all(2.0 <= d <= 4.0 for d in delays[3:])


# -- concurrency ----------------------------------------------------------------------------------


def test_generate_many_overlaps_and_keeps_order(srv):
    # the model holds every request unanswered until all n are with it at once: overlap is
    # seen, not inferred from a wall-clock bound (was: 0.4 s each, done in under n * 0.2 s)
    n = 8
    srv.configure(hold_after=0)
    backend = fast_backend(srv, model="m", max_concurrency=8)
    requests = [(make_frames([0.0, float(i + 1)], (float(i + 1), float(i + 1))), PROMPT)
                for i in range(n)]
    answers: list[list[str]] = []
    caller = threading.Thread(target=lambda: answers.append(backend.generate_many(requests)))
    caller.start()
    try:
        deadline = time.monotonic() + 60
        while srv.in_flight < n:
            assert time.monotonic() < deadline and caller.is_alive(), srv.in_flight
            time.sleep(0.01)
    finally:
        srv.configure(hold_after=None)
        caller.join(60)
    assert answers and answers[0] == [
        f"The red square is visible from {i + 1}.0 to {i + 1}.0 seconds." for i in range(n)]
    assert srv.max_in_flight == n
    backend.close()


def test_generate_many_respects_the_concurrency_cap(srv):
    srv.configure(delay_s=0.25)
    backend = fast_backend(srv, model="m", max_concurrency=3)
    answers = backend.generate_many([(make_frames([0.0], None), PROMPT)] * 9)
    assert len(answers) == 9
    assert srv.max_in_flight == 3


def test_generate_many_raises_the_first_failure(srv):
    srv.configure(fail_status=400, fail_message="bad")
    with pytest.raises(BackendError, match="HTTP 400: bad"):
        fast_backend(srv, model="m").generate_many([(make_frames([0.0], None), PROMPT)] * 3)
    assert fast_backend(srv, model="m").generate_many([]) == []


def test_generate_from_many_threads_is_safe_and_capped(srv):
    srv.configure(delay_s=0.2)
    backend = fast_backend(srv, max_concurrency=2)  # model discovered concurrently
    results: list[str] = []
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            results.append(backend.generate(make_frames([0.0, 1.0], (1, 1)), PROMPT))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not errors
    assert results == ["The red square is visible from 1.0 to 1.0 seconds."] * 6
    assert srv.max_in_flight == 2
    assert srv.models_count == 1


def test_generate_works_inside_a_running_event_loop(srv):
    import asyncio

    async def main() -> str:
        return fast_backend(srv).generate(make_frames([0.0], (0, 0)), PROMPT)

    assert asyncio.run(main()) == "The red square is visible from 0.0 to 0.0 seconds."


# -- the client: one pooled connection pool, plain threads (issue 22.3) --------------------------


def test_one_pooled_http_client_serves_every_call(srv, monkeypatch):
    made: list[object] = []
    real_init = httpx.Client.__init__

    def counting_init(self, *args, **kwargs):
        made.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "__init__", counting_init)
    monkeypatch.setattr(asyncio, "run", None)  # no event loop per call any more
    backend = fast_backend(srv, max_concurrency=3)  # the model is discovered on the same client
    for _ in range(3):
        backend.generate(make_frames([0.0], None), PROMPT)
    backend.generate_many([(make_frames([0.0], None), PROMPT)] * 6)
    backend.generate(make_frames([0.0, 1.0], (1, 1)), PROMPT, on_token=lambda piece: None)
    assert len(made) == 1
    assert srv.chat_count == 10
    backend.close()
    backend.generate(make_frames([0.0], None), PROMPT)  # a closed backend makes a new one
    assert len(made) == 2


def test_generate_many_runs_on_a_bounded_pool_of_threads(srv):
    srv.configure(delay_s=0.05)
    backend = fast_backend(srv, model="m", max_concurrency=3)

    def pool_threads() -> set[threading.Thread]:
        # the backend's own pool (named), not every thread: the fake server's handler threads
        # come and go with its connections, which made a count of all threads flaky
        return {t for t in threading.enumerate() if t.name.startswith("vidground-openai")}

    before = pool_threads()  # other tests' backends' pools, if still alive
    for _ in range(3):
        backend.generate_many([(make_frames([0.0], None), PROMPT)] * 9)
    assert len(pool_threads() - before) <= 3
    assert srv.max_in_flight == 3
    backend.close()


def test_generate_many_keeps_the_fit_tally_of_the_question(srv):
    frames = make_frames([float(t) for t in range(6)], (1, 3), size=256)
    full = len(OpenAICompatBackend(srv.base_url, model="m").prepare(frames, PROMPT).content)
    backend = fast_backend(srv, model="m", max_request_bytes=int(full * 0.8))
    with track_fit() as fit:
        backend.generate_many([(frames, PROMPT)] * 3)
    assert fit.refitted == 3 and fit.min_quality is not None


def test_fit_request_takes_the_first_encoding_that_fits():
    sizes = {(85, 100): 1000, (75, 100): 900, (65, 100): 600}
    built: list[tuple[int, int]] = []

    def build(quality: int, side: int) -> Built[str]:
        built.append((quality, side))
        size = sizes.get((quality, side), 100)
        return Built(f"{quality}/{side}", size, [size - 10])

    def sample(frames, quality: int, side: int) -> list[int]:
        return [sizes.get((quality, side), 100) - 10] * len(frames)

    frames = make_frames([0.0], None)
    with track_fit() as fit:
        assert fit_request(frames, build, sample, quality=85, side=100, max_bytes=800,
                           empty_size=lambda: 10) == "65/100"
    # 85 and 75 were predicted too large from the sample, before any was built in full
    # (issue 22.7: fit before encoding; the old code built 85 in full first)
    assert built == [(65, 100)]
    assert (fit.refitted, fit.min_quality, fit.min_side) == (1, 65, 100)


# -- structured answers (issue 20.2) --------------------------------------------------------------

GROUNDING = build_prompt("When is the red square visible?", duration=4.0)


def test_structured_grounding_question_carries_the_schema_and_reads_back_as_spans(srv):
    backend = fast_backend(srv, model="m", structured_output=True)
    times = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]
    answer = backend.generate(make_frames(times, (1.5, 3.0)), GROUNDING)
    body = srv.requests[-1].body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "grounding_answer", "schema": grounding_schema(reasoning=True),
                        "strict": True}}
    assert list(body["response_format"]["json_schema"]["schema"]["properties"]) == [
        "spans", "reasoning"]
    assert srv.requests[-1].parts[-1].startswith("text:" + GROUNDING.user + "\n")
    assert '{"spans": [{"start": 12.5, "end": 18.0}]' in srv.requests[-1].parts[-1]
    assert json.loads(answer)["spans"] == [{"start": 1.5, "end": 3.0}]
    parsed = parse_answer(answer, duration=4.0, fps=2.0)
    assert [(s.start, s.end) for s in parsed.spans] == [(1.5, 3.0)]
    assert parsed.reasoning == "The red square is visible from 1.5 to 3.0 seconds."


def test_structured_leaves_other_questions_and_answers_without_reasoning_alone(srv):
    backend = fast_backend(srv, model="m", structured_output=True)
    backend.generate(make_frames([0.0], None), build_verify_prompt("the red square"))
    backend.generate(make_frames([0.0], None), PROMPT)
    assert srv.structured_count == 0
    quiet = build_prompt("When is the red square visible?", return_reasoning=False)
    backend.generate(make_frames([0.0], None), quiet)
    schema = srv.requests[-1].body["response_format"]["json_schema"]["schema"]
    assert schema == grounding_schema(reasoning=False) and "reasoning" not in schema["properties"]
    zh = build_prompt("红色方块什么时候出现？")
    backend.generate(make_frames([0.0], None), zh)
    assert "请改用 JSON 作答" in srv.requests[-1].parts[-1]


def test_structured_is_off_by_default_and_the_context_overrides_the_setting(srv):
    plain, structured = fast_backend(srv, model="m"), fast_backend(srv, model="m",
                                                                   structured_output=True)
    frames = make_frames([0.0], None)
    plain.generate(frames, GROUNDING)
    assert "response_format" not in srv.requests[-1].body
    assert srv.requests[-1].parts[-1] == "text:" + GROUNDING.user
    with structured_answers(True):
        plain.generate(frames, GROUNDING)
    assert "response_format" in srv.requests[-1].body
    with structured_answers(False):
        structured.generate_many([(frames, GROUNDING)] * 2)
    assert srv.structured_count == 1
    assert Settings().structured_output is False
    assert OpenAICompatBackend.from_settings(Settings(structured_output=True)).structured_output


def test_a_server_refusing_response_format_is_asked_in_free_text_once_logged(srv, caplog):
    srv.configure(response_format="refuse")
    backend = fast_backend(srv, model="m", structured_output=True)
    frames = make_frames([0.0, 1.0, 2.0], (1, 2))
    with caplog.at_level(logging.WARNING, logger="vidground.backends.structured"):
        first = backend.generate(frames, GROUNDING)
        rest = backend.generate_many([(frames, GROUNDING)] * 3)
        streamed: list[str] = []
        backend.generate(frames, GROUNDING, on_token=streamed.append)
    sentence = "The red square is visible from 1.0 to 2.0 seconds."
    assert [first, *rest, "".join(streamed)] == [sentence] * 5
    assert [r.status for r in srv.requests] == [400] + [200] * 5
    assert srv.structured_count == 1  # remembered: asked once
    retried = srv.requests[1]
    assert "response_format" not in retried.body
    assert retried.parts[-1] == "text:" + GROUNDING.user  # the free-text instruction again
    warnings = [r for r in caplog.records if "refused structured answers" in r.getMessage()]
    assert len(warnings) == 1 and "response_format" in warnings[0].getMessage()
    assert backend.structured_refusal.refused


def test_refusals_from_concurrent_requests_are_logged_once(srv, caplog):
    srv.configure(response_format="refuse", delay_s=0.2)
    backend = fast_backend(srv, model="m", structured_output=True, max_concurrency=4)
    with caplog.at_level(logging.WARNING, logger="vidground.backends.structured"):
        answers = backend.generate_many([(make_frames([0.0], None), GROUNDING)] * 4)
    assert answers == ["The red square does not appear in the video."] * 4
    assert srv.structured_count == 4  # all four were in flight before the first refusal
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1


def test_other_400s_of_a_structured_request_are_still_errors(srv):
    srv.configure(fail_status=400, fail_message="At most 5 image(s) may be provided")
    backend = fast_backend(srv, model="m", structured_output=True)
    with pytest.raises(BackendError, match=r"HTTP 400: At most 5 image"):
        backend.generate(make_frames([0.0], None), GROUNDING)
    assert srv.chat_count == 1 and not backend.structured_refusal.refused


def test_refusal_messages():
    assert refuses_structure(400, "HTTP 400: response_format json_schema is not supported")
    assert refuses_structure(422, "HTTP 422: guided decoding backend unavailable")
    assert not refuses_structure(400, "HTTP 400: At most 5 image(s) may be provided")
    assert not refuses_structure(500, "HTTP 500: structured outputs crashed")  # retried instead


def test_the_schema_bounds_every_number_and_the_span_count():
    schema = grounding_schema(reasoning=False)
    time_schema = schema["properties"]["spans"]["items"]["properties"]["start"]
    assert time_schema == {"type": "number", "minimum": 0, "maximum": MAX_TIME_S}
    assert schema["properties"]["spans"]["maxItems"] == MAX_SPANS
    assert schema["required"] == ["spans"] and schema["additionalProperties"] is False
