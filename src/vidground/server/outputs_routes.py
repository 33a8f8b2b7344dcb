"""Outputs over HTTP: exports of a job, a batch or a posted result; ``describe``; evidence
frames and clips of a video with download links (see docs/outputs.md).

Wired into the app by ``app.include_router(outputs_router)`` (after the other routers, before
the ``/api`` fallback). Every route needs the API key when one is set. Files made here live
under ``<data_dir>/outputs/<32 hex>/`` and are served by ``GET /api/v1/outputs/{id}/{name}``.

The files themselves (output folders, clips, evidence) are made by :mod:`.output_files`, which
the service uses too (``outputs: {clips, evidence}`` on an inference request).
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.concurrency import run_in_threadpool

from ..errors import OptionsError
from ..outputs.exports import FORMATS, check_format, export, media_type, suffix
from ..outputs.results import Result, results_from_json
from ..timecode import Span
from ..video.probe import VideoInfo
from .errors import JobNotDoneError, OutputNotFoundError
from .ids import JOB_ID_PATTERN, OUTPUT_ID_PATTERN, VIDEO_ID_PATTERN
from .jobstore import JobStore
from .output_files import (
    MAX_CLIPS,
    MAX_EVIDENCE_SPANS,
    Cancelled,
    make_clips,
    make_evidence,
)
from .routes import answer_or_drop, require_api_key, service, stop_when
from .schemas import ERROR_RESPONSES, check_one_video

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,150}$"
MAX_SPANS = MAX_EVIDENCE_SPANS

Format = Literal["srt", "vtt", "chapters", "csv", "jsonl", "edl", "otio", "youtube"]
FORMAT_QUERY = Query(description=f"one of {', '.join(FORMATS)}")
RELINK_QUERY = Query(None, max_length=4096, description="absolute folder (POSIX or Windows) "
                     "where the videos are on the editor's machine; the export names each video "
                     "there by its file name (the CLI's --relink)")

outputs_router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)],
                           responses=ERROR_RESPONSES, tags=["outputs"])


# -- bodies ----------------------------------------------------------------------------------

class SpanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: float = Field(ge=0, le=1e7, description="seconds from the first frame")
    end: float = Field(ge=0, le=1e7, description="seconds, after start (exclusive)")
    label: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _ordered(self) -> SpanIn:
        if not (math.isfinite(self.start) and math.isfinite(self.end)) or self.end < self.start:
            raise ValueError("end must not be before start")
        return self

    def span(self) -> Span:
        return Span(self.start, self.end, self.label)


class VideoRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    video_path: str | None = Field(default=None, max_length=4096,
                                   description="path relative to the media root")
    video_id: str | None = Field(default=None, pattern=VIDEO_ID_PATTERN,
                                 description="id of an uploaded video")

    @model_validator(mode="after")
    def _one_video(self) -> VideoRef:
        check_one_video(self.video_path, self.video_id)
        return self

    def stored(self) -> dict[str, Any]:
        return {"video_path": self.video_path} if self.video_path is not None else {
            "video_id": self.video_id}


class ExportBody(BaseModel):
    """A result to export: the response of ``POST /api/v1/inference`` (or ``/describe``), a
    job object, or a list of them, with the question and video name when the result lacks
    them."""

    model_config = ConfigDict(extra="forbid")

    result: dict[str, Any] | list[dict[str, Any]] = Field(description="response(s) or job(s)")
    query: str | None = Field(default=None, max_length=4000)
    video: str | None = Field(default=None, max_length=4096)


class EvidenceRequest(VideoRef):
    spans: list[SpanIn] = Field(min_length=1, max_length=MAX_SPANS)


class ClipsRequest(VideoRef):
    spans: list[SpanIn] = Field(min_length=1, max_length=MAX_CLIPS)
    pad: float = Field(default=0.0, ge=0, le=60, description="seconds added each side")
    mode: Literal["exact", "fast"] = "exact"


class DescribeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    frame_sampling_rate: float | None = Field(default=None, gt=0, le=60)
    max_frames: int | None = Field(default=None, ge=2, le=4096)
    max_windows: int | None = Field(default=None, ge=1, le=1024)
    refine: bool | None = None
    max_refine_calls: int | None = Field(default=None, ge=0, le=256)
    language: Literal["en", "zh"] | None = None
    max_new_tokens: int | None = Field(default=None, ge=1, le=32768)


class DescribeRequest(VideoRef):
    options: DescribeOptions | None = None
    include: list[Literal["subtitles", "shots"]] | None = Field(
        default=None, max_length=2,
        description="also: subtitles from the speech, the shots (chapters then start at shot "
                    "changes); needs vidground[perception]")


# -- helpers ---------------------------------------------------------------------------

def export_response(results: list[Result], fmt: str, filename: str,
                    relink: str | None = None) -> Response:
    """The export of ``results`` as a download (``Content-Disposition: attachment``);
    ``relink``: the absolute folder where the editor finds the videos (the CLI's
    ``--relink``)."""
    name = check_format(fmt)
    text = export(results, name, relink=relink)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", filename)[:100] or "result"
    return Response(text.encode("utf-8"), media_type=f"{media_type(name)}; charset=utf-8",
                    headers={"Content-Disposition":
                             f'attachment; filename="{safe}{suffix(name)}"'})


def _finished_job(store: JobStore, job_id: str) -> dict[str, Any]:
    job = store.get(job_id)
    if job["status"] != "succeeded":
        raise JobNotDoneError(f"job {job_id} is {job['status']}; only a job that succeeded "
                              "has a result")
    return job


# -- routes ------------------------------------------------------------------------------

@outputs_router.get("/jobs/{job_id}/export", response_class=Response)
def export_job(request: Request, job_id: str = Path(pattern=JOB_ID_PATTERN),
               format: Format = FORMAT_QUERY,  # noqa: A002 - the API's name
               relink: str | None = RELINK_QUERY) -> Response:
    """A finished job's spans as a file: srt, vtt, chapters, csv, jsonl, edl, otio, youtube."""
    job = _finished_job(service(request).store, job_id)
    return export_response([Result.from_job(job)], format, f"job_{job_id}", relink)


@outputs_router.get("/batches/{batch_id}/export", response_class=Response)
def export_batch(request: Request, batch_id: str = Path(pattern=JOB_ID_PATTERN),
                 format: Format = FORMAT_QUERY,  # noqa: A002
                 relink: str | None = RELINK_QUERY) -> Response:
    """Every succeeded job of a batch in one file (404 when the batch has none)."""
    jobs, _ = service(request).store.list(limit=1000, offset=0, status="succeeded",
                                          batch_id=batch_id)
    if not jobs:
        raise OutputNotFoundError(f"batch {batch_id} has no job that succeeded")
    return export_response([Result.from_job(j) for j in reversed(jobs)], format,
                           f"batch_{batch_id}", relink)


EXPORT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": ExportBody.model_json_schema()}}}}


@outputs_router.post("/export", response_class=Response, openapi_extra=EXPORT_BODY)
async def export_result(request: Request, format: Format = FORMAT_QUERY,  # noqa: A002
                        relink: str | None = RELINK_QUERY) -> Response:
    """Export a result you hold (a sync response, a describe response or jobs) as a file
    (the body is an :class:`ExportBody`; read, checked and exported in a worker thread, not
    on the event loop: a body of several MB takes a while)."""
    raw = await request.body()
    return await run_in_threadpool(_export_posted, raw, format, relink)


def _export_posted(raw: bytes, fmt: str, relink: str | None) -> Response:
    try:
        data = json.loads(raw)
    except ValueError:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body",),
                                       "msg": "JSON decode error"}]) from None
    try:
        body = ExportBody.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    results = results_from_json(body.result)
    if body.query or body.video:
        results = [Result(r.spans, r.fps, r.duration, body.query or r.query,
                          body.video or r.video, r.model, r.answer) for r in results]
    if not results:
        raise OptionsError("the result holds nothing to export")
    return export_response(results, fmt, "result", relink)


@outputs_router.post("/describe")
async def describe_video(request: Request, body: DescribeRequest) -> Response:
    """What happens when: the model lists the events of the whole video (labelled spans, the
    inference response's shape, ``kind: "describe"``). Waits in the shared model queue (429
    past its limit); dropped when the client hangs up, like ``/inference``."""
    svc = service(request)
    client_gone = threading.Event()
    values = body.options.model_dump(exclude_none=True) if body.options else {}
    # checking and probing the video touches the file system: off the event loop
    wanted = {"include": body.include} if body.include is not None else {}
    future = await svc.off_loop(svc.submit_describe, {**body.stored(), "options": values,
                                                      **wanted},
                                stop_when(client_gone))
    return await answer_or_drop(request, future, svc.executor, client_gone, "describe")


async def _heavy(request: Request, ref: dict[str, Any],
                 make: Callable[[VideoInfo, Cancelled], dict[str, Any]]) -> Response:
    """Queue ``make(video, cancelled)`` on the service's heavy queue (clips and evidence:
    ``heavy_workers`` at once, 429 with ``Retry-After`` past ``heavy_queue_limit``), never
    in the shared thread pool nor on the event loop; the video ``ref`` names is probed in
    the task too. Dropped when the client hangs up (a queued task never runs, a running one
    stops before its next clip and deletes what it made)."""
    svc = service(request)
    client_gone = threading.Event()
    future = svc.heavy.submit(lambda: make(svc.probed(ref), client_gone.is_set))
    return await answer_or_drop(request, future, svc.heavy, client_gone, "clip/evidence")


@outputs_router.post("/evidence")
async def evidence(request: Request, body: EvidenceRequest) -> Response:
    """The first, middle and last frame of each span (JPEG URLs) and a contact sheet."""
    svc = service(request)
    spans = [s.span() for s in body.spans]
    return await _heavy(request, body.stored(),
                        lambda info, gone: make_evidence(svc.outputs, info, spans, None, gone))


@outputs_router.post("/clips")
async def clips(request: Request, body: ClipsRequest) -> Response:
    """A clip per span (``exact``: re-encoded on the span's frames; ``fast``: copied from the
    keyframe before), with download URLs."""
    svc = service(request)
    spans = [s.span() for s in body.spans]
    return await _heavy(request, body.stored(), lambda info, gone: make_clips(
        svc.outputs, info, spans, pad=body.pad, mode=body.mode, cancelled=gone))


@outputs_router.get("/jobs/{job_id}/evidence")
async def job_evidence(request: Request, job_id: str = Path(pattern=JOB_ID_PATTERN)
                       ) -> Response:
    """Evidence frames of a finished job's spans (the first 50)."""
    svc = service(request)
    job = await svc.off_loop(_finished_job, svc.store, job_id)
    result = Result.from_job(job)
    return await _heavy(request, job["request"], lambda info, gone: make_evidence(
        svc.outputs, info, list(result.spans), result.query, gone))


@outputs_router.post("/jobs/{job_id}/clips")
async def job_clips(request: Request, job_id: str = Path(pattern=JOB_ID_PATTERN),
                    pad: float = Query(0.0, ge=0, le=60),
                    mode: Literal["exact", "fast"] = "exact") -> Response:
    """A clip of each span of a finished job (the first 20)."""
    svc = service(request)
    job = await svc.off_loop(_finished_job, svc.store, job_id)
    spans = list(Result.from_job(job).spans)
    return await _heavy(request, job["request"], lambda info, gone: make_clips(
        svc.outputs, info, spans, pad=pad, mode=mode, cancelled=gone))


@outputs_router.get("/outputs/{output_id}/{name}", response_class=FileResponse)
def download(request: Request, output_id: str = Path(pattern=OUTPUT_ID_PATTERN),
             name: str = Path(pattern=NAME_PATTERN)) -> FileResponse:
    """A clip, evidence frame or contact sheet made by the routes above."""
    root = service(request).outputs.root.resolve()
    path = (root / output_id / name).resolve()
    if root not in path.parents or not path.is_file():
        raise OutputNotFoundError(f"no output {output_id}/{name}")
    return FileResponse(path, filename=name)


__all__ = ["ExportBody", "export_response", "outputs_router"]


