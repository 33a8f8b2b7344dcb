"""Request and response bodies of the HTTP API (pydantic; requests refuse unknown fields).

The ``options`` model is built from :class:`vidground.options.LocateOptions`, so the API accepts
exactly the library's options; their value ranges are checked by ``LocateOptions`` itself
(422 ``invalid_options`` with a message saying which option and why).
"""

from __future__ import annotations

import typing
from dataclasses import fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from ..options import OPTION_DOCS, LocateOptions


def _options_model() -> type[BaseModel]:
    hints = typing.get_type_hints(LocateOptions)
    defined: dict[str, Any] = {}
    for f in fields(LocateOptions):
        defined[f.name] = (hints[f.name] | None,
                           Field(default=None, description=OPTION_DOCS.get(f.name)))
    # JSON has no tuples: [start, end] (strict mode would take only a Python tuple)
    defined["time_range"] = (list[float] | None, Field(
        default=None, min_length=2, max_length=2, description=OPTION_DOCS["time_range"],
        examples=[[30.0, 45.0]]))
    return create_model(  # type: ignore[call-overload, no-any-return]
        "InferenceOptions",
        __config__=ConfigDict(extra="forbid", strict=True),
        __doc__="Every option is optional; a missing or null option takes its default.",
        **defined,
    )


InferenceOptions = _options_model()


def refuse_invalid_text(value: Any, where: str = "") -> None:
    """Raise ``ValueError`` when ``value`` (any JSON value) holds text that is not valid
    Unicode — a lone surrogate such as ``"\\ud800"``, which JSON can spell but UTF-8 cannot
    store."""
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"{path or 'a value'} holds text that is not valid Unicode "
                                 "(a lone surrogate); send UTF-8 text") from None
        elif isinstance(item, dict):
            for key, sub in item.items():
                refuse_invalid_text(key, f"{path}.<key>" if path else "a field name")
                stack.append((sub, f"{path}.{key}" if path else str(key)))
        elif isinstance(item, (list, tuple)):
            stack.extend((sub, f"{path}[{i}]") for i, sub in enumerate(item))


class TextCheckedBody(BaseModel):
    """A request body whose text is checked before anything else (a lone surrogate anywhere in
    it is a 422 at the door, not a 500 later): the base of every JSON body the API takes."""

    @model_validator(mode="before")
    @classmethod
    def _valid_text(cls, data: Any) -> Any:
        refuse_invalid_text(data)
        return data


def check_one_video(video_path: str | None, video_id: str | None) -> None:
    """A request names its video one way: ``video_path`` or ``video_id``, not both."""
    if (video_path is None) == (video_id is None):
        raise ValueError("give exactly one of video_path or video_id")


class OutputsRequest(BaseModel):
    """Files made from the answer, returned as download links (``GET /api/v1/outputs/…``,
    kept for a day)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    clips: bool = Field(default=False, description="one clip per segment, re-encoded to start "
                        "and end on the segment's frames (audio kept); links in `clips`")
    evidence: bool = Field(default=False, description="the first, middle and last frame of each "
                           "segment as JPEGs plus a contact sheet; links in `evidence`")


class InferenceRequest(TextCheckedBody):
    """One question about one video: give ``video_path`` (inside the media root) or
    ``video_id`` (from ``POST /api/v1/videos``), not both."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "video_path": "basketball_game.mp4",
        "query": "When does a player first attempt a three-point shot?",
        "options": {"enable_temporal_grounding": True, "return_reasoning": True,
                    "output_format": "HH:MM:SS.sss"},
    }]})

    video_path: str | None = Field(default=None, description="path relative to the media root")
    video_id: str | None = Field(default=None, description="id of an uploaded video")
    query: str = Field(description="what to find, in plain language (en or zh)")
    options: InferenceOptions | None = None  # type: ignore[valid-type]
    outputs: OutputsRequest | None = Field(
        default=None, description="files to make from the answer: clips, evidence frames")

    @model_validator(mode="after")
    def _one_video(self) -> InferenceRequest:
        check_one_video(self.video_path, self.video_id)
        return self

    def options_dict(self) -> dict[str, Any]:
        if self.options is None:
            return {}
        return {k: v for k, v in self.options.model_dump().items() if v is not None}

    def stored(self) -> dict[str, Any]:
        """The request as stored with a job (nulls dropped)."""
        out: dict[str, Any] = {"query": self.query, "options": self.options_dict()}
        if self.outputs is not None and (self.outputs.clips or self.outputs.evidence):
            out["outputs"] = self.outputs.model_dump()
        if self.video_path is not None:
            out["video_path"] = self.video_path
        else:
            out["video_id"] = self.video_id
        return out


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests: list[InferenceRequest] = Field(min_length=1, max_length=1000)


class Segment(BaseModel):
    start: float
    end: float
    start_text: str | float | int | None = None
    end_text: str | float | int | None = None
    label: str | None = None
    score: float | None = None


class VideoSummary(BaseModel):
    duration: float
    fps: float
    width: int
    height: int


class Motion(BaseModel):
    """The motion / scene-change curve adaptive sampling used (values in [0, 1])."""

    bin_s: float
    per_second: list[float]
    cuts: list[float]
    method: str


class InferenceResponse(BaseModel):
    response: str
    raw_answer: str | None = Field(default=None, description="the model's own text, before "
                                   "its times were replaced by the final ones")
    timestamp_range: list[str | float | int] | None
    reasoning: str | None
    segments: list[Segment]
    video: VideoSummary
    model: str
    timings: dict[str, float | int]
    motion: Motion | None = None
    clips: list[dict[str, Any]] | None = Field(
        default=None, description="with outputs.clips: one {url, start, end, ...} per segment "
        "(the first 20)")
    outputs_limited: dict[str, int] | None = Field(
        default=None, description="when segments were left out of clips (20 at most) or "
        "evidence (50 at most): {clips: 20} and/or {evidence: 50}")
    evidence: dict[str, Any] | None = Field(
        default=None, description="with outputs.evidence: {frames: [{url, span, role, time, "
        "frame_time}], contact_sheet}")


class VideoResponse(BaseModel):
    video_id: str
    video: VideoSummary
    filename: str | None = None
    size_bytes: int | None = None
    created_at: float | None = None


class JobProgress(BaseModel):
    fraction: float
    stage: str | None
    message: str | None


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Job(BaseModel):
    job_id: str
    batch_id: str | None
    status: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    attempts: int
    max_attempts: int
    cancel_requested: bool
    progress: JobProgress
    request: dict[str, Any]
    result: InferenceResponse | dict[str, Any] | None = Field(
        description="the inference response; a library job's (request.kind index or "
        "search_ground) is its report or its search response (docs/api.md)")
    error: dict[str, Any] | None
    created_at: str
    updated_at: str
    started_at: str | None
    finished_at: str | None


class JobCreated(BaseModel):
    job_id: str


class BatchCreated(BaseModel):
    batch_id: str
    job_ids: list[str]


class JobList(BaseModel):
    jobs: list[Job]
    total: int
    limit: int
    offset: int


class Health(BaseModel):
    status: str
    version: str
    backend: str
    model: str | None
    model_loaded: bool
    model_state: Literal["not_loaded", "loading", "ready", "error"]
    model_error: str | None
    queue: dict[str, int]
    outputs_queue: dict[str, int] | None = Field(
        default=None, description="clips and evidence: waiting, running, limit, workers")
    jobs: dict[str, int]
    job_store: dict[str, Any] | None = Field(
        default=None, description="ok, message (the failing part, no secrets), kept_aside "
        "(file names; full paths only with the API key)")
    cache: dict[str, Any] | None = None


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "bad path or request", 401: "API key missing or wrong",
        403: "path outside the media root", 404: "video or job not found",
        413: "upload or video too large", 422: "invalid request, options, query or video",
        429: "queue full (see Retry-After)", 503: "model not available",
        507: "the disk or the outputs quota is full (see Retry-After)",
    }.items()
}
