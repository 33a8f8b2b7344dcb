"""Qwen3-VL behind any OpenAI-compatible chat server: vLLM, SGLang, DashScope compatible mode.

How frames travel (``video_mode="images"``, the default and the tested path): every frame becomes
a text part with its real time in Qwen3-VL's own ``<t seconds>`` form followed by an ``image_url``
part (a JPEG data URL); the prompt text comes last. Times get one decimal, like Qwen3-VL's own
processor writes them; when frames are closer than that (two labels would read the same) the
labels get two or three decimals instead, so neighbouring frames never share a label.

``video_mode="video_url"`` sends the frames as one vLLM ``data:video/jpeg;base64,...`` frame list
plus per-request ``media_io_kwargs`` carrying the real frame times as video metadata (a virtual
1000 fps: ``frames_indices`` = milliseconds). vLLM then lets Qwen3-VL's processor write the
timestamps itself (one label per pair of frames, the pair's mean time). This needs a vLLM recent
enough to take ``media_io_kwargs`` per request and metadata for ``video/jpeg`` frame lists; it has
only been checked against the fake server in ``tests/``. See ``docs/scaling-out.md``.

Requests are sized to the caps (frames per request, bytes per request, measured on the body
that is sent): a request over the byte cap is encoded again at a lower JPEG quality, then with
smaller frames (:func:`fit_steps`, within ``MIN_FIT_QUALITY`` and ``MIN_FIT_SCALE``); past that
:class:`RequestTooLargeError` says how many frames fit and the pipeline splits the window
(all of it in :mod:`vidground.backends.fitting`). Requests are retried with exponential
backoff and jitter on 429, 5xx, connection errors and timeouts (``Retry-After`` honoured), and
never retried on other 4xx.

Transport: one pooled ``httpx.Client`` per backend, plain blocking calls. A semaphore keeps at
most ``max_concurrency`` requests in flight across every thread that calls
:meth:`OpenAICompatBackend.generate`; :meth:`OpenAICompatBackend.generate_many` runs its
requests on a thread pool of that size. ``timeout_s`` bounds the connection's every wait (the
server's answer, each streamed piece), ``connect_timeout_s`` the connection.

With structured answers on (``structured_output``; see :mod:`vidground.backends.structured`)
a grounding question carries ``response_format`` (a JSON schema); a server that refuses it is
asked again in free text, and from then on, with one warning in the log.
"""

from __future__ import annotations

import base64
import contextvars
import email.utils
import json
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from ..errors import BackendError, ModelNotAvailableError
from .base import BaseBackend, Prompt, TokenCallback
from .fitting import (
    MIN_FIT_QUALITY,
    MIN_FIT_SCALE,
    Built,
    RequestTooLargeError,
    check_frame_count,
    fit_request,
    fit_steps,
)
from .images import frame_jpeg
from .structured import (
    Refusals,
    is_grounding_prompt,
    refuses_structure,
    response_format,
    schema_for,
    structure_wanted,
    structured_prompt,
)

if TYPE_CHECKING:
    from ..config import Settings
    from ..video.decode import Frame

DEFAULT_MAX_REQUEST_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_FRAMES_PER_REQUEST = 256
VIDEO_MODES = ("images", "video_url")
#: virtual frame rate of the ``video_url`` metadata: ``frames_indices`` are milliseconds
VIDEO_URL_FPS = 1000.0
START_HINT = "start one, e.g. `vllm serve Qwen/Qwen3-VL-4B-Instruct`"


class _Retryable(Exception):
    """A failure worth another attempt (429, 5xx, connection error, timeout)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


# ---------------------------------------------------------------------------------------------
# pure helpers: time labels, payloads, responses
# ---------------------------------------------------------------------------------------------


def time_label_decimals(times: Sequence[float]) -> int:
    """Fewest decimals (1, 2 or 3) with which no two different frame times print the same."""
    distinct = sorted(set(times))
    for decimals in (1, 2, 3):
        labels = [f"{t:.{decimals}f}" for t in distinct]
        if len(set(labels)) == len(labels):
            return decimals
    return 3


def format_time_label(seconds: float, decimals: int = 1) -> str:
    """Qwen3-VL's timestamp text for one frame, e.g. ``<12.5 seconds>``."""
    return f"<{seconds:.{decimals}f} seconds>"


def _encode_frames(frames: Sequence[Frame], quality: int, max_side: int | None) -> list[str]:
    """Base64 JPEG of every frame, in order (the frame cache's stored bytes when it has them:
    :func:`~vidground.backends.images.frame_jpeg`)."""
    return [base64.b64encode(frame_jpeg(frame, quality=quality, max_side=max_side)
                             ).decode("ascii") for frame in frames]


def _longest_side(frames: Sequence[Frame], max_side: int | None) -> int:
    """The longest side the frames are sent with (``max_side`` shrinks, never enlarges)."""
    side = max((max(f.size) for f in frames), default=1)
    return min(side, max_side) if max_side else side


def _body_bytes(body: dict[str, Any]) -> bytes:
    """The exact bytes sent for ``body`` (measured against the cap before sending)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def image_parts(frames: Sequence[Frame], encoded: Sequence[str]) -> list[dict[str, Any]]:
    """Content parts ``<t seconds>`` + ``image_url`` for every frame."""
    decimals = time_label_decimals([f.time for f in frames])
    parts: list[dict[str, Any]] = []
    for frame, b64 in zip(frames, encoded, strict=True):
        parts.append({"type": "text", "text": format_time_label(frame.time, decimals)})
        parts.append({"type": "image_url",
                      "image_url": {"url": "data:image/jpeg;base64," + b64}})
    return parts


def video_url_fields(frames: Sequence[Frame], encoded: Sequence[str]
                     ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``video_url`` content part and the extra top-level request fields for vLLM.

    Real times reach Qwen3-VL's processor as metadata: fps = 1000 and ``frames_indices`` = each
    frame's time in milliseconds, ``do_sample_frames`` off so vLLM keeps exactly these frames.
    """
    indices = [max(0, round(f.time * VIDEO_URL_FPS)) for f in frames]
    part = {"type": "video_url",
            "video_url": {"url": "data:video/jpeg;base64," + ",".join(encoded)}}
    extra = {
        "media_io_kwargs": {"video": {
            "fps": VIDEO_URL_FPS,
            "frames_indices": indices,
            "total_num_frames": (max(indices) + 1) if indices else 1,
            "num_frames": len(frames),
        }},
        "mm_processor_kwargs": {"do_sample_frames": False},
    }
    return part, extra


def build_payload(model: str, prompt: Prompt, media_parts: list[dict[str, Any]], *,
                  max_new_tokens: int, stream: bool, temperature: float | None,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of one ``/chat/completions`` request."""
    messages: list[dict[str, Any]] = []
    if prompt.system:
        messages.append({"role": "system", "content": prompt.system})
    content = [*media_parts, {"type": "text", "text": prompt.user}]
    messages.append({"role": "user", "content": content})
    body: dict[str, Any] = {"model": model, "messages": messages,
                            "max_tokens": max_new_tokens, "stream": stream}
    if temperature is not None:
        body["temperature"] = temperature
    body.update(extra or {})
    return body


def server_message(response: httpx.Response) -> str:
    """The error text a server put in its body (OpenAI, FastAPI or plain-text shapes)."""
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:300] if text else response.reason_phrase
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict):
            for key in ("message", "detail", "msg"):
                if error.get(key):
                    return str(error[key])[:500]
        elif error:
            return str(error)[:500]
        if data.get("detail"):
            return str(data["detail"])[:500]
    return json.dumps(data)[:300]


def _content_text(content: Any) -> str:
    """Text of a message ``content`` that may be a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def parse_completion(text: str, url: str) -> str:
    """The answer in a non-streamed chat completion body; :class:`BackendError` if there is none."""
    try:
        data = json.loads(text)
    except ValueError:
        snippet = text[:200].replace("\n", " ")
        raise BackendError(
            f"the model server at {url} answered with something that is not JSON: {snippet!r}"
        ) from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise BackendError(
            f"the model server at {url} answered without any choices: {text[:200]!r}"
        )
    choice = choices[0]
    answer = _content_text((choice.get("message") or {}).get("content"))
    if not answer.strip():
        reason = choice.get("finish_reason")
        raise BackendError(
            f"the model server at {url} returned an empty answer (finish_reason={reason!r}); "
            "raise max_new_tokens or check the server log"
        )
    return answer


def parse_sse_line(line: str) -> str | None:
    """Text piece of one SSE ``data:`` line; ``None`` for other lines and ``[DONE]``."""
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if not data or data == "[DONE]":
        return None
    try:
        event = json.loads(data)
    except ValueError:
        raise BackendError(f"the model server sent a stream event that is not JSON: "
                           f"{data[:200]!r}") from None
    if isinstance(event, dict) and event.get("error"):
        err = event["error"]
        message = err.get("message") if isinstance(err, dict) else err
        raise BackendError(f"the model server failed while streaming: {message}")
    choices = event.get("choices") if isinstance(event, dict) else None
    if not choices:
        return None  # usage-only chunks
    delta = choices[0].get("delta") or {}
    return _content_text(delta.get("content")) or None


def retry_after_seconds(value: str | None, *, cap: float) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) as seconds, capped; ``None`` when absent/bad."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return min(max(seconds, 0.0), cap)


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with jitter: half fixed, half random, ``base * 2**attempt`` at most."""
    ceiling = min(cap, base * (2 ** attempt))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


# ---------------------------------------------------------------------------------------------
# the backend
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Request:
    """One prepared chat request: its JSON body, whether it streams, the body as sent, and,
    when it asks for a structured answer, the prompt text to send instead in free text."""

    body: dict[str, Any]
    stream: bool
    content: bytes = b""  # the body as sent (empty: serialise ``body``)
    plain_user: str | None = None  # set when the request carries ``response_format``

    def in_free_text(self) -> _Request:
        """The same request without ``response_format``, with the original prompt text."""
        body = {k: v for k, v in self.body.items() if k != "response_format"}
        messages = [dict(m) for m in body["messages"]]
        content = list(messages[-1]["content"])
        content[-1] = {"type": "text", "text": self.plain_user or ""}
        messages[-1]["content"] = content
        body["messages"] = messages
        return _Request(body, self.stream, _body_bytes(body))


class _StructuredRefused(Exception):
    """The server refused the request's ``response_format``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_JSON = {"Content-Type": "application/json"}


def _content(request: _Request) -> bytes:
    return request.content or _body_bytes(request.body)


class OpenAICompatBackend(BaseBackend):
    """Qwen3-VL served by an OpenAI-compatible ``/v1/chat/completions`` endpoint.

    ``model=None`` asks the server's ``/v1/models`` and uses the first model listed (once).
    One pooled HTTP client serves every request of the backend; a semaphore keeps at most
    ``max_concurrency`` requests in flight across all threads, and :meth:`generate_many` fans
    out on a thread pool of that size. :meth:`close` releases both (they are made on first use).
    """

    #: Frames are sent as JPEG bytes, which the frame cache keeps
    #: (:func:`~vidground.backends.images.frame_jpeg`): a caller may decode through the cache
    #: with ``pixels=False`` (:func:`vidground.cache.frames.cached_decode`).
    needs_pixels = False

    def __init__(self, base_url: str = "http://127.0.0.1:8000/v1", *, model: str | None = None,
                 api_key: str | None = None, timeout_s: float = 120.0,
                 max_concurrency: int = 4, max_retries: int = 3, image_quality: int = 85,
                 max_image_side: int | None = None, video_mode: str = "images",
                 max_frames_per_request: int = DEFAULT_MAX_FRAMES_PER_REQUEST,
                 max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
                 temperature: float | None = 0.0, backoff_base_s: float = 0.5,
                 backoff_max_s: float = 30.0, max_retry_after_s: float = 60.0,
                 connect_timeout_s: float = 10.0, structured_output: bool = False) -> None:
        if video_mode not in VIDEO_MODES:
            raise BackendError(f"unknown openai video mode {video_mode!r}; use one of "
                               f"{', '.join(VIDEO_MODES)}")
        if max_concurrency < 1:
            raise BackendError("openai max concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = float(timeout_s)
        self.connect_timeout_s = min(float(connect_timeout_s), self.timeout_s)
        self.max_concurrency = int(max_concurrency)
        self.max_retries = max(0, int(max_retries))
        self.image_quality = int(image_quality)
        self.max_image_side = max_image_side
        self.video_mode = video_mode
        self.max_frames_per_request = int(max_frames_per_request)
        self.max_request_bytes = int(max_request_bytes)
        self.temperature = temperature
        self.backoff_base_s = float(backoff_base_s)
        self.backoff_max_s = float(backoff_max_s)
        self.max_retry_after_s = float(max_retry_after_s)
        self.structured_output = bool(structured_output)
        self.structured_refusal = Refusals()
        self._model = model
        self._model_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._pool_lock = threading.Lock()
        self._http: httpx.Client | None = None
        self._workers: ThreadPoolExecutor | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAICompatBackend:
        """Backend configured from ``VIDGROUND_OPENAI_*`` settings."""
        return cls(
            settings.openai_base_url, model=settings.openai_model,
            api_key=settings.openai_api_key, timeout_s=settings.openai_timeout_s,
            max_concurrency=settings.openai_max_concurrency,
            max_retries=settings.openai_max_retries,
            image_quality=settings.openai_image_quality,
            video_mode=settings.openai_video_mode,
            max_image_side=settings.openai_max_image_side,
            max_request_bytes=int(settings.openai_max_request_mb * 1024 * 1024),
            max_frames_per_request=settings.openai_max_frames_per_request,
            structured_output=settings.structured_output,
        )

    # -- model name -------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The model requests name; asked from ``/v1/models`` once when not configured."""
        if self._model is None:
            with self._model_lock:
                if self._model is None:
                    self._model = self._discover_model()
        return self._model

    def list_models(self) -> list[str]:
        """Ids the server lists at ``/v1/models`` (one attempt, no retries)."""
        url = f"{self.base_url}/models"
        try:
            response = self._client().get(url)
        except httpx.ConnectError as exc:
            raise BackendError(self._unreachable(exc)) from None
        except httpx.TimeoutException:
            raise BackendError(f"the model server at {self.base_url} did not answer "
                               f"GET /models within {self.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise BackendError(f"GET {url} failed: {exc}") from None
        if response.status_code != 200:
            raise BackendError(f"GET {url} failed with HTTP {response.status_code}: "
                               f"{server_message(response)}")
        try:
            data = response.json()["data"]
            return [str(item["id"]) for item in data]
        except (ValueError, KeyError, TypeError):
            raise BackendError(f"GET {url} returned no model list: "
                               f"{response.text[:200]!r}") from None

    def _discover_model(self) -> str:
        """First model the server lists."""
        models = self.list_models()
        if not models:
            raise ModelNotAvailableError(
                f"the model server at {self.base_url} lists no models; {START_HINT}"
            )
        return models[0]

    # -- public generation API --------------------------------------------------------------

    def generate(self, frames: Sequence[Frame], prompt: Prompt, *, max_new_tokens: int = 512,
                 on_token: TokenCallback | None = None) -> str:
        """Answer ``prompt`` about ``frames``; streams pieces to ``on_token`` when given.

        Safe to call from several threads at once; at most ``max_concurrency`` requests are in
        flight across all threads of this backend.
        """
        request = self.prepare(frames, prompt, max_new_tokens=max_new_tokens,
                               stream=on_token is not None)
        return self._send(request, on_token)

    def generate_many(self, requests: Sequence[tuple[Sequence[Frame], Prompt]], *,
                      max_new_tokens: int = 512) -> list[str]:
        """Answers to many (frames, prompt) requests, in order, run concurrently.

        At most ``max_concurrency`` are in flight; the first failure raises (the requests not
        yet started are cancelled).
        """
        if not requests:
            return []
        pool = self._pool()
        futures = [pool.submit(contextvars.copy_context().run, self._ask, frames, prompt,
                               max_new_tokens)  # each with the question's fit tally
                   for frames, prompt in requests]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
            for future in futures:
                if future.done() and future.exception() is not None:
                    raise future.exception()  # type: ignore[misc]
            return [future.result() for future in futures]
        finally:
            for future in futures:
                future.cancel()

    def close(self) -> None:
        """Close the pooled HTTP client and the thread pool (both are made again when used)."""
        with self._pool_lock:
            http, self._http = self._http, None
            workers, self._workers = self._workers, None
        if workers is not None:
            workers.shutdown(wait=False, cancel_futures=True)
        if http is not None:
            http.close()

    def _ask(self, frames: Sequence[Frame], prompt: Prompt, max_new_tokens: int) -> str:
        """Prepare and send one non-streamed request (a task of :meth:`generate_many`)."""
        return self._send(self.prepare(frames, prompt, max_new_tokens=max_new_tokens), None)

    def wants_structure(self, prompt: Prompt) -> bool:
        """Whether ``prompt`` is asked for a structured answer: a grounding question, with
        structured answers on (the setting or :func:`structured_answers`), not refused."""
        return (structure_wanted(self.structured_output) and is_grounding_prompt(prompt)
                and not self.structured_refusal.refused)

    def prepare(self, frames: Sequence[Frame], prompt: Prompt, *, max_new_tokens: int = 512,
                stream: bool = False) -> _Request:
        """Encode the frames and build the request body, sized to the caps.

        A body over ``max_request_bytes`` (measured on the bytes that will be sent) is encoded
        again at a lower JPEG quality, then with smaller frames
        (:func:`~vidground.backends.fitting.fit_request`); when even the smallest encoding is
        too large, :class:`RequestTooLargeError` says how many frames fit.
        """
        check_frame_count(len(frames), self.max_frames_per_request)
        structured = self.wants_structure(prompt)
        sent = structured_prompt(prompt) if structured else prompt
        extra: dict[str, Any] = ({"response_format": response_format(schema_for(prompt))}
                                 if structured else {})
        plain_user = prompt.user if structured else None

        def build(quality: int, side: int) -> Built[_Request]:
            return self._build(frames, sent, quality, side, max_new_tokens=max_new_tokens,
                               stream=stream, extra=extra, plain_user=plain_user)

        def empty_size() -> int:
            return len(_body_bytes(build_payload(self.model_name, sent, [], max_new_tokens=1,
                                                 stream=False, temperature=self.temperature,
                                                 extra=extra)))

        def sample(some: Sequence[Frame], quality: int, side: int) -> list[int]:
            # the same encoding _build makes (no max_side at full size), so the sample's
            # encodes are reused when this setting is chosen
            max_side = side if side < _longest_side(some, None) else None
            return [len(b) for b in _encode_frames(some, quality, max_side)]

        return fit_request(frames, build, sample, quality=self.image_quality,
                           side=_longest_side(frames, self.max_image_side),
                           max_bytes=self.max_request_bytes, empty_size=empty_size)

    def _build(self, frames: Sequence[Frame], prompt: Prompt, quality: int, side: int, *,
               max_new_tokens: int, stream: bool, extra: dict[str, Any],
               plain_user: str | None) -> Built[_Request]:
        """The request with frames encoded at ``quality`` and ``side``, its size in bytes and
        the frames' encoded sizes."""
        max_side = side if side < _longest_side(frames, None) else None
        encoded = _encode_frames(frames, quality, max_side)
        fields = dict(extra)
        if self.video_mode == "video_url" and frames:
            part, video_fields = video_url_fields(frames, encoded)
            media = [part]
            fields.update(video_fields)
        else:
            media = image_parts(frames, encoded)
        body = build_payload(self.model_name, prompt, media, max_new_tokens=max_new_tokens,
                             stream=stream, temperature=self.temperature, extra=fields)
        content = _body_bytes(body)
        return Built(_Request(body, stream, content, plain_user), len(content),
                     [len(b) for b in encoded])

    # -- transport --------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s)

    def _client(self) -> httpx.Client:
        """The backend's pooled HTTP client (made on first use)."""
        with self._pool_lock:
            if self._http is None:
                limits = httpx.Limits(max_connections=self.max_concurrency + 1,
                                      max_keepalive_connections=self.max_concurrency)
                self._http = httpx.Client(timeout=self._timeout(), headers=self._headers(),
                                          limits=limits)
            return self._http

    def _pool(self) -> ThreadPoolExecutor:
        """The threads :meth:`generate_many` runs requests on (made on first use)."""
        with self._pool_lock:
            if self._workers is None:
                self._workers = ThreadPoolExecutor(max_workers=self.max_concurrency,
                                                   thread_name_prefix="vidground-openai")
            return self._workers

    def http_client(self) -> httpx.Client:
        """A plain client with this backend's timeouts and headers (for checks such as
        ``vidground doctor``)."""
        return httpx.Client(timeout=self._timeout(), headers=self._headers())

    def unreachable_message(self, exc: Exception) -> str:
        """What to tell a person when the server cannot be reached."""
        return self._unreachable(exc)

    def _unreachable(self, exc: Exception) -> str:
        return (f"the model server at {self.base_url} is not reachable ({exc}); {START_HINT} "
                "and set VIDGROUND_OPENAI_BASE_URL to its address (e.g. http://127.0.0.1:8000/v1)")

    def _send(self, request: _Request, on_token: TokenCallback | None) -> str:
        """One request with retries; a refused ``response_format`` is remembered (logged once)
        and the request sent again in free text."""
        try:
            return self._send_with_retries(request, on_token)
        except _StructuredRefused as refused:
            self.structured_refusal.refuse(self.base_url, refused.message)
            return self._send_with_retries(request.in_free_text(), on_token)

    def _send_with_retries(self, request: _Request, on_token: TokenCallback | None) -> str:
        """One request with retries and backoff; raises :class:`BackendError` when it fails."""
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                with self._slots:
                    return self._attempt(request, on_token)
            except _Retryable as failure:
                if attempt + 1 >= attempts:
                    raise BackendError(
                        f"the model server at {self.base_url} failed after {attempts} "
                        f"attempt{'s' if attempts > 1 else ''}: {failure.message}"
                    ) from None
                delay = failure.retry_after
                if delay is None:
                    delay = backoff_delay(attempt, self.backoff_base_s, self.backoff_max_s)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, request: _Request, on_token: TokenCallback | None) -> str:
        """One HTTP round trip; :class:`_Retryable` for failures worth retrying."""
        url = f"{self.base_url}/chat/completions"
        emitted = [False]
        try:
            if request.stream:
                return self._stream(url, request, on_token, emitted)
            return self._post(url, request)
        except httpx.ConnectError as exc:
            raise _Retryable(self._unreachable(exc)) from None
        except httpx.TimeoutException:
            if emitted[0]:
                raise BackendError(f"the model server at {self.base_url} stalled mid-stream "
                                   f"for more than {self.timeout_s:g} s") from None
            raise _Retryable(f"no answer within the {self.timeout_s:g} s timeout") from None
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            if emitted[0]:
                raise BackendError(f"the connection to {self.base_url} broke mid-stream: "
                                   f"{exc}") from None
            raise _Retryable(f"connection error: {exc or type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            raise BackendError(f"request to {url} failed: {exc}") from None

    def _post(self, url: str, request: _Request) -> str:
        """Non-streamed request: the whole answer."""
        response = self._client().post(url, content=_content(request), headers=_JSON)
        self._raise_for_status(response, request)
        return parse_completion(response.text, self.base_url)

    def _stream(self, url: str, request: _Request, on_token: TokenCallback | None,
                emitted: list[bool]) -> str:
        """Streamed request (SSE): pieces go to ``on_token`` as they arrive."""
        pieces: list[str] = []
        with self._client().stream("POST", url, content=_content(request),
                                   headers=_JSON) as response:
            if response.status_code != 200:
                response.read()
                self._raise_for_status(response, request)
            if "event-stream" not in response.headers.get("content-type", ""):
                # the server ignored ``stream`` (or sent an error page): read it whole
                answer = parse_completion(response.read().decode(errors="replace"),
                                          self.base_url)
                emitted[0] = True
                if on_token is not None:
                    on_token(answer)
                return answer
            for line in response.iter_lines():
                piece = parse_sse_line(line.strip())
                if piece:
                    pieces.append(piece)
                    emitted[0] = True
                    if on_token is not None:
                        on_token(piece)
        answer = "".join(pieces)
        if not answer.strip():
            raise BackendError(f"the model server at {self.base_url} streamed an empty answer; "
                               "raise max_new_tokens or check the server log")
        return answer

    def _raise_for_status(self, response: httpx.Response, request: _Request) -> None:
        """Map a non-200 status to a retryable failure, a refused ``response_format`` or a
        :class:`BackendError`."""
        status = response.status_code
        if status == 200:
            return
        message = f"HTTP {status}: {server_message(response)}"
        if request.plain_user is not None and refuses_structure(status, message):
            raise _StructuredRefused(message)
        if status == 429 or status >= 500:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"),
                                              cap=self.max_retry_after_s)
            raise _Retryable(message, retry_after)
        if status in (401, 403):
            raise BackendError(f"the model server at {self.base_url} refused the credentials "
                               f"({message}); set VIDGROUND_OPENAI_API_KEY")
        if status == 404 and "model" in message.lower():
            raise ModelNotAvailableError(
                f"the model server at {self.base_url} does not serve model "
                f"{self._model!r} ({message}); set VIDGROUND_OPENAI_MODEL to one it lists"
            )
        raise BackendError(f"the model server at {self.base_url} rejected the request "
                           f"({message})")


__all__ = [
    "MIN_FIT_QUALITY",
    "MIN_FIT_SCALE",
    "OpenAICompatBackend",
    "RequestTooLargeError",
    "VIDEO_MODES",
    "VIDEO_URL_FPS",
    "build_payload",
    "fit_steps",
    "format_time_label",
    "parse_completion",
    "parse_sse_line",
    "time_label_decimals",
]
