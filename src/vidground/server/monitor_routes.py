"""The ``/api/v1/monitors`` endpoints (issue 25): thin shells over the service's
:class:`~vidground.server.monitors.MonitorManager`; docs/api.md "Live monitors"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .http import SafeJSONResponse
from .ids import JOB_ID_PATTERN
from .monitors import MAX_QUERIES, check_spec
from .routes import require_api_key, service
from .schemas import ERROR_RESPONSES, TextCheckedBody

MONITOR_ID = JOB_ID_PATTERN  # secrets.token_hex(12), like a job
FILE_PATTERN = r"^[0-9a-f]{24}-[0-9a-f]{8}(-start\.jpg|\.mp4)$"


class MonitorOptions(BaseModel):
    """How the stream is watched; every option is optional."""

    model_config = ConfigDict(extra="forbid", strict=True)

    window_s: float | None = Field(None, description="seconds one model call sees (4)")
    every_s: float | None = Field(None, description="seconds between windows (1)")
    sample_fps: float | None = Field(None, description="frames per second shown to the "
                                     "model (2)")
    max_interval_s: float | None = Field(None, description="ask at least this often (s) when "
                                         "nothing moves (10)")
    calls_per_minute: int | None = Field(None, description="most model calls per minute for "
                                         "this stream (30); windows past it are skipped")
    buffer_s: float | None = Field(None, description="seconds of frames kept for exact ends "
                                   "and clips (30)")
    gate: bool | None = Field(None, description="ask only when the picture changed (true)")
    refine: bool | None = Field(None, description="frame-exact start and end (true)")


class MonitorRequest(TextCheckedBody):
    """A stream to watch and what to watch it for; where its alerts go."""

    model_config = ConfigDict(extra="forbid", strict=True)

    source: str = Field(max_length=2000, description="rtsp://, rtsps://, http(s)://...m3u8, "
                        "an HTTP video stream, rtmp://; no file://, device or file")
    query: str | None = Field(None, max_length=4000, description="what to watch for")
    queries: list[str] | None = Field(None, max_length=MAX_QUERIES,
                                      description="several questions on one stream")
    options: MonitorOptions | None = None
    webhook: str | None = Field(None, max_length=2000, description="POST each alert here "
                                "(signed with VIDGROUND_WEBHOOK_SECRET)")
    mqtt: str | None = Field(None, max_length=2000, description="publish each alert to "
                             "mqtt://HOST:PORT/TOPIC")
    name: str | None = Field(None, max_length=200)

    @model_validator(mode="after")
    def _one_way(self) -> MonitorRequest:
        if (self.query is None) == (self.queries is None):
            raise ValueError("give exactly one of query or queries")
        return self

    def spec(self) -> dict[str, Any]:
        """Checked (source confined, targets checked, options in range): 422 otherwise."""
        options = self.options.model_dump(exclude_none=True) if self.options else {}
        return check_spec(self.source, [self.query] if self.query is not None
                          else list(self.queries or []), options, webhook=self.webhook,
                          mqtt=self.mqtt, name=self.name)


monitor_router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_api_key)],
                           responses=ERROR_RESPONSES, tags=["monitors"])


@monitor_router.post("/monitors", status_code=201)
def create_monitor(body: MonitorRequest, request: Request) -> SafeJSONResponse:
    """Watch a live stream: stored in the job store, run (exactly once) by a server or worker
    process, resumed after a restart. 422 ``invalid_source`` for a source or alert target it
    may not reach; 409 ``too_many_monitors`` past ``VIDGROUND_MAX_MONITORS``."""
    svc = service(request)
    return SafeJSONResponse(svc.monitors.create(body.spec()), status_code=201)


@monitor_router.get("/monitors")
def list_monitors(request: Request) -> dict[str, Any]:
    """Every monitor with its state."""
    monitors = service(request).monitors.list()
    return {"monitors": monitors, "total": len(monitors)}


@monitor_router.get("/monitors/{monitor_id}")
def get_monitor(request: Request, monitor_id: str = Path(pattern=MONITOR_ID)
                ) -> SafeJSONResponse:
    """A monitor and its state: connected, frames/s, last check, last error, model calls in
    the last minute, skipped windows."""
    return SafeJSONResponse(service(request).monitors.get(monitor_id))


@monitor_router.get("/monitors/{monitor_id}/alerts")
def monitor_alerts(request: Request, monitor_id: str = Path(pattern=MONITOR_ID),
                   limit: int = Query(50, ge=1, le=500),
                   offset: int = Query(0, ge=0, le=10**9)) -> SafeJSONResponse:
    """A monitor's stored alerts, newest first, ``limit`` at a time from ``offset``."""
    alerts, total = service(request).monitors.alerts(monitor_id, limit=limit, offset=offset)
    return SafeJSONResponse({"alerts": alerts, "total": total, "limit": limit,
                             "offset": offset})


@monitor_router.delete("/monitors/{monitor_id}", status_code=204, response_class=Response)
def delete_monitor(request: Request, monitor_id: str = Path(pattern=MONITOR_ID)) -> Response:
    """Stop a monitor and delete it with its alerts and files."""
    service(request).monitors.delete(monitor_id)
    return Response(status_code=204)


@monitor_router.get("/monitors/{monitor_id}/files/{name}", response_class=FileResponse)
def monitor_file(request: Request, monitor_id: str = Path(pattern=MONITOR_ID),
                 name: str = Path(pattern=FILE_PATTERN)) -> FileResponse:
    """An alert's clip (MP4) or evidence picture (JPEG), as its alert links it."""
    return FileResponse(service(request).monitors.file(monitor_id, name), filename=name)
