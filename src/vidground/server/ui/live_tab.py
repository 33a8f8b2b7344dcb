"""The page's "Live" tab (issue 25): add a monitor (a stream and a question), see every
monitor's state and the chosen one's alerts arrive — evidence thumbnails and the event clip —
refreshed by a timer. Everything goes through the service's monitor manager, checked like
``POST /api/v1/monitors`` (the same confinement of sources and webhooks, the same cap)."""

from __future__ import annotations

import base64
import html
import logging
from datetime import datetime
from typing import Any

from ...errors import VidgroundError
from ..monitors import check_spec
from .media import MEDIA_ROUTE, MediaRegistry

log = logging.getLogger("vidground.server.ui")

REFRESH_S = 2.0
ALERTS_SHOWN = 20

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "tab": "Live", "source": "Stream (rtsp:// or https://…/live.m3u8)",
        "source_ph": "rtsp://camera.example.com/stream1", "query": "What to watch for",
        "query_ph": "a person walks through the door", "webhook": "Webhook (optional)",
        "add": "Add monitor", "monitor": "Monitor", "delete": "Delete monitor",
        "added": "Monitor added; it connects within a few seconds.", "deleted": "Deleted.",
        "none": "No monitors yet: add a stream and a question above.",
        "no_alerts": "No alerts yet.", "pick": "Choose a monitor to see its alerts.",
        "col_monitor": "Monitor", "col_status": "State", "col_fps": "frames/s",
        "col_check": "last check", "col_calls": "calls/min", "col_skipped": "skipped",
        "col_alerts": "alerts", "col_error": "last error", "started": "started",
        "ended": "ended", "clip": "clip", "connected": "connected", "waiting": "waiting",
        "connecting": "connecting", "dropped": "dropped", "reconnecting": "reconnecting",
        "gave_up": "gave up", "stopped": "stopped", "starting": "starting",
    },
    "zh": {
        "tab": "实时监控", "source": "视频流（rtsp:// 或 https://…/live.m3u8）",
        "source_ph": "rtsp://camera.example.com/stream1", "query": "要监视的事件",
        "query_ph": "有人走进门", "webhook": "Webhook（可选）", "add": "添加监控",
        "monitor": "监控", "delete": "删除监控", "added": "已添加监控，几秒内开始连接。",
        "deleted": "已删除。", "none": "还没有监控：请在上方填写视频流和问题。",
        "no_alerts": "还没有告警。", "pick": "选择一个监控查看其告警。",
        "col_monitor": "监控", "col_status": "状态", "col_fps": "帧/秒", "col_check": "上次检查",
        "col_calls": "调用/分钟", "col_skipped": "跳过", "col_alerts": "告警",
        "col_error": "最近错误", "started": "开始", "ended": "结束", "clip": "片段",
        "connected": "已连接", "waiting": "等待中", "connecting": "连接中", "dropped": "已断开",
        "reconnecting": "重连中", "gave_up": "已放弃", "stopped": "已停止",
        "starting": "启动中",
    },
}


def _t(lang: str, key: str) -> str:
    table = TEXTS.get(lang) or TEXTS["en"]
    return table.get(key) or TEXTS["en"].get(key, key)


def _lang(value: Any) -> str:
    return value if value in TEXTS else "en"


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _clock(iso: str | None) -> str:
    if not iso:
        return "–"
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return "–"


def monitors_html(monitors: list[dict[str, Any]], lang: str) -> str:
    """Every monitor as a table row with its state."""
    if not monitors:
        return f'<div class="vg-live-empty vg-muted">{_esc(_t(lang, "none"))}</div>'
    head = "".join(f"<th>{_esc(_t(lang, k))}</th>" for k in (
        "col_monitor", "col_status", "col_fps", "col_check", "col_calls", "col_skipped",
        "col_alerts", "col_error"))
    rows = []
    for m in monitors:
        s = m.get("state") or {}
        status = str(s.get("status") or "waiting")
        title = m.get("name") or m.get("source")
        rows.append(
            f'<tr class="vg-live-row" data-vg-monitor="{_esc(m["monitor_id"])}" '
            f'data-vg-status="{_esc(status)}" data-vg-alerts="{int(m.get("alerts") or 0)}">'
            f'<td title="{_esc(m.get("source"))}"><b>{_esc(title)}</b><br>'
            f'<span class="vg-muted">{_esc("; ".join(m.get("queries") or []))}</span></td>'
            f'<td class="vg-live-status">{_esc(_t(lang, status))}</td>'
            f'<td>{_esc(s.get("fps", 0))}</td><td>{_esc(_clock(s.get("last_check")))}</td>'
            f'<td>{_esc(s.get("calls_per_minute", 0))}</td>'
            f'<td>{_esc(s.get("skipped_windows", 0))}</td>'
            f'<td>{int(m.get("alerts") or 0)}</td>'
            f'<td class="vg-muted">{_esc(s.get("last_error") or "")}</td></tr>')
    return (f'<table class="vg-live-table" id="vg-live-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _thumbnail(svc: Any, monitor_id: str, link: str | None) -> str:
    """The evidence picture ``link`` names, inline (the page needs no API key for it)."""
    if not link:
        return ""
    try:
        path = svc.monitors.file(monitor_id, link.rsplit("/", 1)[-1])
        data = base64.b64encode(path.read_bytes()).decode("ascii")
    except (VidgroundError, OSError):
        return ""
    return (f'<img class="vg-live-thumb" alt="evidence" width="160" '
            f'src="data:image/jpeg;base64,{data}">')


def _clip_link(svc: Any, registry: MediaRegistry | None, monitor_id: str,
               link: str | None, lang: str) -> str:
    """A link to the event's clip, through the page's own media route (its login)."""
    if not link or registry is None:
        return ""
    try:
        path = svc.monitors.file(monitor_id, link.rsplit("/", 1)[-1])
    except VidgroundError:
        return ""
    token = registry.register(path)
    return (f'<a class="vg-live-clip" href="/{MEDIA_ROUTE}/{token}" target="_blank" '
            f'rel="noopener">{_esc(_t(lang, "clip"))}</a>')


def alerts_html(svc: Any, registry: MediaRegistry | None, monitor_id: str | None,
                lang: str) -> str:
    """The newest alerts of ``monitor_id``: what, when (stream seconds and wall clock), the
    evidence thumbnail and the clip link."""
    if not monitor_id:
        return f'<div class="vg-muted">{_esc(_t(lang, "pick"))}</div>'
    try:
        alerts, total = svc.monitors.alerts(monitor_id, limit=ALERTS_SHOWN)
    except VidgroundError:
        return f'<div class="vg-muted">{_esc(_t(lang, "pick"))}</div>'
    if not alerts:
        return f'<div class="vg-live-alerts vg-muted">{_esc(_t(lang, "no_alerts"))}</div>'
    items = []
    for a in alerts:
        e = a["event"]
        kind = str(a["kind"])
        span = f'{float(e["start"]):.2f} s' + (f' – {float(e["end"]):.2f} s'
                                               if e.get("end") is not None else "")
        evidence = (e.get("evidence") or [{}])[0]
        items.append(
            f'<div class="vg-live-alert" data-vg-kind="{_esc(kind)}" '
            f'data-vg-event="{_esc(e.get("id"))}">'
            f'{_thumbnail(svc, monitor_id, evidence.get("image"))}'
            f'<div><b>{_esc(_t(lang, kind))}</b> {_esc(span)} '
            f'<span class="vg-muted">{_esc(_clock(a.get("stored_at")))}</span><br>'
            f'{_esc(e.get("query"))}<br>'
            f'<span class="vg-muted">{_esc(str(evidence.get("answer") or "")[:200])}</span> '
            f'{_clip_link(svc, registry, monitor_id, e.get("clip"), lang)}</div></div>')
    return (f'<div class="vg-live-alerts" id="vg-live-alert-list" data-vg-total="{total}">'
            f'{"".join(items)}</div>')


def _choice(m: dict[str, Any]) -> tuple[str, str]:
    label = f'{m.get("name") or m["source"]} — {"; ".join(m["queries"])}'
    return label[:120], m["monitor_id"]


def _status(kind: str, text: str) -> str:
    return f'<div class="vg-status vg-{_esc(kind)}">{_esc(text)}</div>' if text else ""


def build_live_tab(svc: Any, lang: Any, lang0: str, registry: MediaRegistry | None = None
                   ) -> None:
    """The Live tab, its handlers and its own relabelling on ``lang`` changes (call inside
    the page's ``gr.Blocks``, after the tabs before it)."""
    import gradio as gr

    with gr.Tab(_t(lang0, "tab"), id="live", elem_id="vg-tab-live") as tab:
        with gr.Row(equal_height=True):
            source = gr.Textbox(label=_t(lang0, "source"), placeholder=_t(lang0, "source_ph"),
                                elem_id="vg-live-source", scale=4, max_lines=1)
            query = gr.Textbox(label=_t(lang0, "query"), placeholder=_t(lang0, "query_ph"),
                               elem_id="vg-live-query", scale=4, max_lines=1)
            webhook = gr.Textbox(label=_t(lang0, "webhook"), elem_id="vg-live-webhook",
                                 scale=3, max_lines=1)
            add = gr.Button(_t(lang0, "add"), variant="primary", elem_id="vg-live-add",
                            scale=1)
        status = gr.HTML("", elem_id="vg-live-status-box")
        table = gr.HTML(monitors_html([], lang0), elem_id="vg-live-monitors")
        with gr.Row(equal_height=True):
            pick = gr.Dropdown(choices=[], value=None, label=_t(lang0, "monitor"),
                               elem_id="vg-live-pick", scale=4)
            delete = gr.Button(_t(lang0, "delete"), variant="stop", size="sm",
                               elem_id="vg-live-delete", scale=1)
        alerts = gr.HTML(alerts_html(svc, registry, None, lang0), elem_id="vg-live-alerts")
        shown = gr.State(None)  # what this page shows now: a tick sends only what changed
        timer = gr.Timer(REFRESH_S)

    def refresh(picked: str | None, lang_value: str, was: Any = None) -> dict[Any, Any]:
        """The list, the choice and the chosen monitor's alerts; with ``was`` (what the page
        shows), only the parts that changed (the thumbnails are not sent again every tick)."""
        lv = _lang(lang_value)
        try:
            monitors = svc.monitors.list()
        except VidgroundError as exc:
            return {status: _status("error", exc.message)}
        ids = [m["monitor_id"] for m in monitors]
        if picked not in ids:
            picked = ids[-1] if ids else None
        counts = {m["monitor_id"]: m.get("alerts") for m in monitors}
        now: dict[str, Any] = {"table": monitors_html(monitors, lv),
                               "choices": [_choice(m) for m in monitors],
                               "alerts": [picked, counts.get(picked), lv]}
        was = was if isinstance(was, dict) else {}
        updates: dict[Any, Any] = {shown: now}
        if now["table"] != was.get("table"):
            updates[table] = now["table"]
        if now["choices"] != was.get("choices") or picked != was.get("picked"):
            updates[pick] = gr.update(choices=now["choices"], value=picked)
        if now["alerts"] != was.get("alerts"):
            updates[alerts] = alerts_html(svc, registry, picked, lv)
        now["picked"] = picked
        return updates

    def on_add(src: str, q: str, hook: str, lang_value: str) -> dict[Any, Any]:
        lv = _lang(lang_value)
        try:
            spec = check_spec(src or "", [q or ""], {}, webhook=(hook or "").strip() or None)
            made = svc.monitors.create(spec)
        except VidgroundError as exc:
            return {status: _status("error", svc.public_text(exc.message))}
        return {**refresh(made["monitor_id"], lv), status: _status("ok", _t(lv, "added"))}

    def on_delete(picked: str | None, lang_value: str) -> dict[Any, Any]:
        lv = _lang(lang_value)
        if picked:
            try:
                svc.monitors.delete(picked)
            except VidgroundError as exc:
                return {status: _status("error", exc.message)}
        return {**refresh(None, lv), status: _status("ok", _t(lv, "deleted"))}

    def on_pick(picked: str | None, lang_value: str) -> Any:
        return alerts_html(svc, registry, picked, _lang(lang_value))

    def on_language(lang_value: str, picked: str | None) -> dict[Any, Any]:
        lv = _lang(lang_value)
        return {tab: gr.update(label=_t(lv, "tab")),
                source: gr.update(label=_t(lv, "source"), placeholder=_t(lv, "source_ph")),
                query: gr.update(label=_t(lv, "query"), placeholder=_t(lv, "query_ph")),
                webhook: gr.update(label=_t(lv, "webhook")),
                add: gr.update(value=_t(lv, "add")), delete: gr.update(value=_t(lv, "delete")),
                pick: gr.update(label=_t(lv, "monitor")), **refresh(picked, lv)}

    outputs = [table, pick, alerts, status, shown]
    add.click(on_add, [source, query, webhook, lang], outputs, api_visibility="undocumented",
              concurrency_id="live")
    delete.click(on_delete, [pick, lang], outputs, api_visibility="undocumented",
                 concurrency_id="live")
    pick.input(on_pick, [pick, lang], alerts, api_visibility="undocumented")
    timer.tick(refresh, [pick, lang, shown], outputs, api_visibility="undocumented",
               show_progress="hidden")
    lang.change(on_language, [lang, pick],
                [tab, source, query, webhook, add, delete, *outputs],
                api_visibility="undocumented")
