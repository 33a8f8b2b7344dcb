"""The ``/api/v1`` endpoints: thin — validate, hand work to the shared executor, map errors.

Authentication: when ``VIDGROUND_API_KEY`` is set, every ``/api/v1`` route except
``GET /api/v1/health`` needs ``Authorization: Bearer <key>`` (compared in constant time).
Health stays open so load balancers and the web page can probe it; it reveals no request data.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..progress import ProgressEvent
from .errors import UnauthorizedError, UploadTooLargeError
from .executor import BoundedExecutor, ignore_outcome
from .http import SafeJSONResponse, key_matches
from .ids import JOB_ID_PATTERN, VIDEO_ID_PATTERN
from .schemas import (
    ERROR_RESPONSES,
    BatchCreated,
    BatchRequest,
    Health,
    InferenceRequest,
    InferenceResponse,
    Job,
    JobCreated,
    JobList,
    VideoResponse,
)
from .storage import MultipartFile

if TYPE_CHECKING:
    from .service import Service

DRAIN_LIMIT = 64 * 1024 * 1024
#: How often a waiting sync request checks that its client is still connected (seconds).
DISCONNECT_POLL_S = 0.25

log = logging.getLogger("vidground.server")


def service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


def require_api_key(request: Request) -> None:
    """Refuse the request unless it carries the configured API key (when one is set)."""
    key = service(request).settings.api_key
    if key and not key_matches(request, key):
        raise UnauthorizedError("missing or wrong API key: send 'Authorization: Bearer <key>'")


public = APIRouter(prefix="/api/v1", tags=["health"])
router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)],
                   responses=ERROR_RESPONSES)


@public.get("/health", response_model=Health)
async def health(request: Request) -> dict[str, Any]:
    """Is the model loaded? How many requests and jobs wait? Always answers at once, even
    while the model loads, when it cannot be loaded, or when the job store does not answer
    (``degraded``, naming the failing part). Folder paths only to callers with the API key."""
    svc = service(request)
    key = svc.settings.api_key
    parts = await svc.health_parts.aget()
    return svc.health(parts=parts, show_paths=key_matches(request, key) if key else False)


@router.post("/inference", response_model=InferenceResponse, tags=["inference"])
async def inference(body: InferenceRequest, request: Request) -> Response:
    """Find when ``query`` happens in the video, and wait for the answer.

    Waits in the shared queue (one model, ``workers`` at a time); 429 with ``Retry-After``
    when more than ``queue_limit`` requests already wait."""
    svc = service(request)
    client_gone = threading.Event()
    # checking and probing the video touches the file system: off the event loop
    future = await svc.off_loop(svc.submit, body.stored(), stop_when(client_gone))
    return await answer_or_drop(request, future, svc.executor, client_gone, "inference")


class ClientGone(Exception):
    """Raised from the progress callback of a sync request whose client disconnected."""


def stop_when(client_gone: threading.Event) -> Callable[[ProgressEvent], None]:
    """A progress callback that stops the work (:class:`ClientGone`) once ``client_gone``."""

    def check(event: ProgressEvent) -> None:
        if client_gone.is_set():
            raise ClientGone()

    return check


async def answer_or_drop(request: Request, future: Future[Any], executor: BoundedExecutor,
                         client_gone: threading.Event, what: str) -> Response:
    """Wait for ``future`` (queued on ``executor``) without holding a thread, and answer its
    result; when the client hangs up first, nobody will read the answer: a queued task
    leaves the queue at once and never runs, a running one sees ``client_gone`` at its next
    step (a progress event, the next clip) and stops. 499 then (nobody reads it)."""
    waiting = asyncio.wrap_future(future)
    while not (await asyncio.wait({waiting}, timeout=DISCONNECT_POLL_S))[0]:
        if await request.is_disconnected():
            client_gone.set()
            executor.discard(future)
            waiting.add_done_callback(ignore_outcome)
            log.info("client disconnected; its %s request was dropped", what)
            return Response(status_code=499)
    return SafeJSONResponse(waiting.result())


UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary",
                            "description": "the video file"}}}}}}}


@router.post("/videos", response_model=VideoResponse, status_code=201, tags=["videos"],
             openapi_extra=UPLOAD_BODY)
async def upload_video(request: Request) -> SafeJSONResponse:
    """Upload a video (multipart field ``file``). Streamed to disk in chunks; 413 past the size
    limit. The content is probed (not the extension): anything that is not a readable video is
    refused (415) and deleted. Use the returned ``video_id`` in inference requests."""
    svc = service(request)
    parser = MultipartFile(request)
    try:
        meta = await svc.uploads.save(parser.chunks(), lambda: parser.filename,
                                      run_in_threadpool, svc.off_loop)
    except UploadTooLargeError:
        await _drain(request)
        raise
    return SafeJSONResponse(meta, status_code=201)


@router.get("/videos/{video_id}", response_model=VideoResponse, tags=["videos"])
def get_video(request: Request, video_id: str = Path(pattern=VIDEO_ID_PATTERN)
              ) -> dict[str, Any]:
    """What is known about an uploaded video."""
    return service(request).uploads.describe(video_id)


@router.delete("/videos/{video_id}", status_code=204, tags=["videos"],
               response_class=Response)
def delete_video(request: Request, video_id: str = Path(pattern=VIDEO_ID_PATTERN)) -> Response:
    """Delete an uploaded video (404 unknown; 409 while a queued or running job needs it).
    Uploads unused for ``upload_retention_hours`` (default 7 days) are deleted anyway."""
    svc = service(request)
    svc.uploads.delete(video_id, svc.store.videos_in_use())
    return Response(status_code=204)


@router.post("/jobs", response_model=JobCreated | BatchCreated, status_code=202, tags=["jobs"])
def create_jobs(body: InferenceRequest | BatchRequest, request: Request) -> SafeJSONResponse:
    """Queue one request (-> ``{job_id}``) or ``{"requests": [...]}`` (-> ``{batch_id,
    job_ids}``). Every request is checked now (path, video_id, query, options); jobs are stored
    in SQLite and survive restarts."""
    svc = service(request)
    items = body.requests if isinstance(body, BatchRequest) else [body]
    stored = [item.stored() for item in items]
    for one in stored:
        svc.check(one)  # probed when the job runs (on whichever worker takes it)
    batch_id, ids = svc.store.create(stored, max_attempts=svc.settings.job_max_attempts,
                                     batch=isinstance(body, BatchRequest))
    svc.executor.notify_jobs()
    if batch_id is not None:
        return SafeJSONResponse({"batch_id": batch_id, "job_ids": ids}, status_code=202)
    return SafeJSONResponse({"job_id": ids[0]}, status_code=202)


@router.get("/jobs", response_model=JobList, tags=["jobs"])
def list_jobs(request: Request, limit: int = Query(50, ge=1, le=500),
              offset: int = Query(0, ge=0, le=10**9),
              status: Literal["queued", "running", "succeeded", "failed", "cancelled"] | None
              = None,
              batch_id: str | None = Query(None, pattern=JOB_ID_PATTERN)) -> dict[str, Any]:
    """Jobs, newest first, ``limit`` at a time from ``offset``; filter by status or batch."""
    jobs, total = service(request).store.list(limit=limit, offset=offset, status=status,
                                              batch_id=batch_id)
    return {"jobs": jobs, "total": total, "limit": limit, "offset": offset}


@router.get("/jobs/{job_id}", response_model=Job, tags=["jobs"])
def get_job(request: Request, job_id: str = Path(pattern=JOB_ID_PATTERN)) -> SafeJSONResponse:
    """A job's status, progress (fraction + stage), and its result or error."""
    return SafeJSONResponse(service(request).store.get(job_id))


@router.delete("/jobs/{job_id}", response_model=Job, tags=["jobs"])
def cancel_job(request: Request, job_id: str = Path(pattern=JOB_ID_PATTERN)) -> SafeJSONResponse:
    """Cancel a job: a queued job is cancelled at once; a running job is flagged and stops at
    its next progress event (the model call in progress finishes first). 409 when it has
    already finished."""
    svc = service(request)
    job = svc.store.cancel(job_id)
    return SafeJSONResponse(job)


async def _drain(request: Request) -> None:
    """Read (and drop) the rest of a refused upload, so the client gets to read the 413."""
    drained = 0
    try:
        async for chunk in request.stream():
            drained += len(chunk)
            if drained > DRAIN_LIMIT:
                break
    except Exception:  # noqa: BLE001 - client gone; nothing to answer
        pass
