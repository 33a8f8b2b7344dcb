"""On-screen text, shots and speech over HTTP (issue 24): ``POST /api/v1/text``, ``/shots``,
``/speech`` on a video of the media root or an upload.

Thin, like ``/inference``: the service checks the request (the video confined to the media root
or the upload store, probed with the server's size and duration limits, the phrase and options),
queues the work on its shared executor (429 past the queue limit) and the answer has
``/inference``'s shape (``response``, ``timestamp_range``, ``segments[]`` with seconds and
formatted times, ``video``, ``model``, ``timings``) plus each detector's own fields. With
``"async": true`` the request becomes a job instead (202 ``{job_id}``; ``GET /api/v1/jobs/{id}``
gives its progress and result), for long videos. The API key guards every route when one is
set. Wired in by ``app.include_router(perception_router)``.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ConfigDict, Field, model_validator

from ..timecode import OUTPUT_FORMATS
from .http import SafeJSONResponse
from .ids import VIDEO_ID_PATTERN
from .routes import answer_or_drop, require_api_key, service, stop_when
from .schemas import ERROR_RESPONSES, TextCheckedBody, check_one_video

perception_router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)],
                              responses=ERROR_RESPONSES, tags=["perception"])

OutputFormat = Literal["HH:MM:SS.sss", "HH:MM:SS", "seconds", "frames"]
assert set(OutputFormat.__args__) == set(OUTPUT_FORMATS)  # type: ignore[attr-defined]


class PerceptionBody(TextCheckedBody):
    """The video (``video_path`` inside the media root, or ``video_id`` of an upload), the
    format of the answer's times, and ``async`` to get a job id at once."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    video_path: str | None = Field(default=None, max_length=4096,
                                   description="path relative to the media root")
    video_id: str | None = Field(default=None, pattern=VIDEO_ID_PATTERN,
                                 description="id of an uploaded video")
    output_format: OutputFormat = Field(default="HH:MM:SS.sss",
                                        description="how the answer writes times")
    run_async: bool = Field(default=False, alias="async", description=(
        "queue a job and answer 202 {job_id} at once (GET /api/v1/jobs/{job_id}); "
        "for long videos"))

    @model_validator(mode="after")
    def _one_video(self) -> PerceptionBody:
        check_one_video(self.video_path, self.video_id)
        return self

    def stored(self, kind: str) -> dict[str, Any]:
        """The request as the service (and a job) takes it (nulls dropped)."""
        values = self.model_dump(exclude={"run_async", "video_path", "video_id"},
                                 exclude_none=True)
        video = ({"video_path": self.video_path} if self.video_path is not None
                 else {"video_id": self.video_id})
        return {"kind": kind, **video, **values}


class TextBody(PerceptionBody):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"video_path": "checkout.mp4", "phrase": "PAYMENT FAILED"}]})

    phrase: str | None = Field(default=None, description=(
        "the words to find on screen (fuzzy: OCR slips, case and spacing are forgiven; "
        "Chinese and English); at most 200 characters"))
    all: bool = Field(default=False, description="every line of text on screen instead")
    step: float = Field(default=0.5, description="seconds between the frames OCR reads whole "
                        "(0.04..10; boundaries are still found to the frame)")


class ShotsBody(PerceptionBody):
    threshold: float = Field(default=0.5, description="transition score (0..1, exclusive) "
                             "a frame must pass")


class SpeechBody(PerceptionBody):
    language: str | None = Field(default=None, max_length=16, description=(
        "the speech's language (en, zh...) for the transcript; default: detected"))


async def _run(request: Request, body: PerceptionBody, kind: str) -> Response:
    svc = service(request)
    stored = body.stored(kind)
    if body.run_async:
        return await svc.off_loop(_queue_job, request, stored)
    client_gone = threading.Event()
    # checking and probing the video touches the file system: off the event loop
    future = await svc.off_loop(svc.submit_perception, stored, stop_when(client_gone))
    return await answer_or_drop(request, future, svc.executor, client_gone, kind)


def _queue_job(request: Request, stored: dict[str, Any]) -> SafeJSONResponse:
    svc = service(request)
    svc.check_perception(stored)  # the video is probed when the job runs
    _, ids = svc.store.create([stored], max_attempts=svc.settings.job_max_attempts)
    svc.executor.notify_jobs()
    return SafeJSONResponse({"job_id": ids[0]}, status_code=202)


@perception_router.post("/text")
async def find_text(request: Request, body: TextBody) -> Response:
    """When a phrase is on screen (PP-OCR over sampled frames, each boundary found to the
    frame), or every line of text with ``all: true``. Segments are labelled with the text
    read, scored by match x OCR confidence; ``ocr`` says how much was read."""
    return await _run(request, body, "text")


@perception_router.post("/shots")
async def find_shots(request: Request, body: ShotsBody) -> Response:
    """The shots of the video (TransNetV2 over every frame): one segment per shot
    (``shot 1``, ``shot 2`` ...), and ``transitions[]`` (hard ``cut``s to the frame,
    ``gradual`` ones as spans)."""
    return await _run(request, body, "shots")


@perception_router.post("/speech")
async def find_speech(request: Request, body: SpeechBody) -> Response:
    """When someone speaks (Silero VAD); with a speech model on the server
    (``VIDGROUND_SPEECH_MODEL``), the transcript's segments with their words' times."""
    return await _run(request, body, "speech")


__all__ = ["perception_router"]
