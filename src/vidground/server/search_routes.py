"""The library search routes (issue 27), thin shells over the service's
:class:`~vidground.server.search_service.Library`:

* ``GET /api/v1/search?q=…&top=…&in=…``: ranked moments of the indexed videos inside the media
  root (no model: the index alone);
* ``POST /api/v1/index``: index files and folders of the media root, as a job;
* ``POST /api/v1/search/ground``: search, then ask the model about each hit's neighbourhood
  (frame-exact times, unconfirmed hits dropped), as a job.

Jobs are the job queue's (``GET /api/v1/jobs/{id}`` shows their progress and result; any server
or worker sharing the job store runs them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from ..errors import OptionsError
from ..search.query import MAX_TOP
from ..search.terms import MAX_QUERY_CHARS
from .http import SafeJSONResponse
from .routes import require_api_key
from .schemas import (
    ERROR_RESPONSES,
    InferenceOptions,
    JobCreated,
    TextCheckedBody,
    refuse_invalid_text,
)
from .search_service import MAX_GROUND_TOP, MAX_INDEX_PATHS

if TYPE_CHECKING:
    from .service import Service

search_router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)],
                          responses=ERROR_RESPONSES, tags=["search"])


def _service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


class Why(BaseModel):
    text: str = Field(description="the indexed text that matched")
    source: str = Field(description="where it came from: event, text, speech, shot, facts")


class SearchHit(BaseModel):
    video: str = Field(description="path relative to the media root (use it as video_path)")
    name: str = Field(description="the file's name")
    start: float
    end: float
    start_text: str = Field(description="start as HH:MM:SS.sss")
    end_text: str = Field(description="end as HH:MM:SS.sss")
    score: float = Field(description="higher is better; comparable within one index engine")
    why: Why
    confirmed: bool | None = Field(default=None, description="grounded searches: the model "
                                   "found it there (times are then the model's, to the frame)")


class SearchResponse(BaseModel):
    query: str
    hits: list[SearchHit]


class _Body(TextCheckedBody):
    model_config = ConfigDict(extra="forbid")



class IndexRequest(_Body):
    """What to index: files and folders inside the media root (folders are walked), or
    ``"all"`` (the whole media root)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"paths": ["matches/2024"]}, {"paths": "all", "force": False}]})

    paths: list[str] | Literal["all"] = Field(
        description=f"paths relative to the media root (1 to {MAX_INDEX_PATHS}), or \"all\"")
    force: bool = Field(default=False, description="describe every video again, changed or not")
    shots: bool = Field(default=False, description="also store shot boundaries (needs "
                        "vidground[perception] where the job runs)")
    fps: float | None = Field(default=None, gt=0, le=60,
                              description="frames per second describe looks at")
    sources: list[str] | None = Field(
        default=None, max_length=8,
        description="what to store: events, text (on-screen, OCR), speech (the transcript of "
                    "VIDGROUND_SPEECH_MODEL), shots; default: events, text when OCR is "
                    "installed, speech when a speech model is configured")


class GroundRequest(_Body):
    """A search whose hits the model confirms (a job)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"query": "a red car stops", "top": 5}]})

    query: str = Field(description="what to look for (any language)")
    top: int = Field(default=5, ge=1, le=MAX_GROUND_TOP,
                     description="how many of the best hits the model is asked about")
    in_: str | None = Field(default=None, alias="in",
                            description="only videos inside this folder of the media root")
    options: InferenceOptions | None = Field(  # type: ignore[valid-type]
        default=None, description="the model's options, as for inference (time_range and "
        "all_occurrences are set per hit)")


@search_router.get("/search", response_model=SearchResponse)
def search_library(
    request: Request,
    q: str = Query(description=f"what to look for, any language (at most {MAX_QUERY_CHARS} "
                   "characters)"),
    top: int = Query(10, ge=1, le=MAX_TOP, description="how many moments"),
    in_: str | None = Query(None, alias="in", description="only videos inside this file or "
                            "folder (relative to the media root)"),
    ground: bool = Query(False, description="refused: asking the model is a job, "
                         "POST /api/v1/search/ground"),
) -> SafeJSONResponse:
    """Which indexed videos of the media root show ``q``, and when: the best moments first,
    each with the text that matched and where it came from. Uses the index only (build it
    with ``POST /api/v1/index``); 404 ``search_index_missing`` before anything is indexed."""
    if ground:
        raise OptionsError("ground=true asks the model about every hit, which takes minutes: "
                           "it is a job. POST /api/v1/search/ground {\"query\": ..., \"top\": "
                           "5} and poll GET /api/v1/jobs/{job_id}")
    library = _service(request).library
    refuse_invalid_text(q, "q")
    return SafeJSONResponse(library.response(q, library.search(q, top, in_)))


@search_router.post("/index", response_model=JobCreated, status_code=202)
def index_library(body: IndexRequest, request: Request) -> SafeJSONResponse:
    """Index files and folders of the media root for search, as a job (202 ``{job_id}``): new
    and changed videos are described by the model, unchanged ones skipped, removed ones
    dropped. ``GET /api/v1/jobs/{job_id}`` shows the progress (videos done, time left) and
    the report."""
    svc = _service(request)
    stored = svc.library.index_request(body.paths, force=body.force, shots=body.shots,
                                       fps=body.fps, sources=body.sources)
    return _queue(svc, stored)


@search_router.post("/search/ground", response_model=JobCreated, status_code=202)
def ground_search(body: GroundRequest, request: Request) -> SafeJSONResponse:
    """Search, then ask the model about each of the ``top`` hits' neighbourhoods (the hit ±
    2 s), as a job (202 ``{job_id}``): the job's result is the search response with only the
    hits the model confirms, at its frame-exact times (``confirmed: true``)."""
    svc = _service(request)
    options = ({k: v for k, v in body.options.model_dump().items() if v is not None}
               if body.options is not None else None)
    stored = svc.library.ground_request(body.query, top=body.top, within=body.in_,
                                        options=options)
    return _queue(svc, stored)


def _queue(svc: Service, stored: dict[str, Any]) -> SafeJSONResponse:
    _, ids = svc.store.create([stored], max_attempts=svc.settings.job_max_attempts)
    svc.executor.notify_jobs()
    return SafeJSONResponse({"job_id": ids[0]}, status_code=202)
