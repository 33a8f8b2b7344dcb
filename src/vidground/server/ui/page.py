"""The Gradio Blocks of the page and its event handlers: thin shells over the server's
:class:`~vidground.server.service.Service` (the same validation, limits, queue and errors as
``POST /api/v1/inference``)."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...cache import file_identity
from ...errors import OptionsError, VideoError, VidgroundError
from ...options import LocateOptions
from ...outputs.exports import FORMATS as EXPORT_FORMATS
from ...progress import STAGE_SPANS, ProgressEvent
from ...timecode import OUTPUT_FORMATS
from .live_tab import build_live_tab
from .media import (
    VIDEO_EXTENSIONS,
    MediaRegistry,
    list_media,
    resolve_media,
    uploaded_file,
)
from .outputs import DescribedVideo, evidence_html, export_path
from .render import (
    Overlay,
    _duration_text,
    overlay_of,
    player_html,
    ranges_text,
    status_html,
    timeline_html,
)
from .search_tab import build_search_tab
from .texts import LANG_CHOICES, TEXTS, _lang, _t, error_text

if TYPE_CHECKING:
    from ..service import Service

log = logging.getLogger(__name__)

HISTORY_LIMIT = 50

DETECT_LANGUAGE_JS = """
(lang, sess, fmt) => {
  const l = ((navigator.languages && navigator.languages[0]) || navigator.language || "en");
  return [l.toLowerCase().startsWith("zh") ? "zh" : "en", sess, fmt];
}
"""


# -- session state ---------------------------------------------------------------------------


def _new_session() -> dict[str, Any]:
    return {"video": None, "history": [], "current": None, "next_id": 1, "status": ("", "")}


def _session(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) and "history" in value else _new_session()


def _history_for(sess: dict[str, Any]) -> list[dict[str, Any]]:
    video = sess.get("video")
    if not video:
        return []
    return [e for e in sess["history"] if e["video_key"] == video["key"]]


def _history_choices(sess: dict[str, Any], lang: str) -> list[tuple[str, str]]:
    choices = []
    for e in _history_for(sess):
        g = e["grounding"]
        rng = g.timestamp_range(e["fmt"])
        shown = f"{rng[0]} – {rng[1]}" if rng else _t(lang, "none")
        query = e["query"] if len(e["query"]) <= 60 else e["query"][:57] + "…"
        if e.get("kind") == "text":  # found on screen, not asked of the model
            query = f"{_t(lang, 'on_screen')} {query}"
        choices.append((f"{query}  →  {shown}", str(e["id"])))
    return choices


def _find_entry(sess: dict[str, Any], entry_id: Any) -> dict[str, Any] | None:
    for e in sess["history"]:
        if str(e["id"]) == str(entry_id):
            return e
    return None


# -- a question -------------------------------------------------------------------------------


def _form_options(form: dict[str, Any]) -> dict[str, Any]:
    """The options the page's form sets (the service checks them, over the defaults of a
    question or of describe)."""
    rate: Any = "adaptive" if form["sampling"] == "adaptive" else float(form["fps"])
    try:
        frames = int(form["max_frames"])
    except (TypeError, ValueError):
        raise OptionsError("max frames must be a whole number") from None
    return {"frame_sampling_rate": rate, "max_frames": frames,
            "output_format": form["format"], "return_reasoning": bool(form["reasoning"]),
            "all_occurrences": bool(form["all"]), "refine": bool(form["refine"])}


def _remember(sess: dict[str, Any], video: dict[str, Any], g: Any, fmt_value: str, *,
              describing: bool) -> dict[str, Any]:
    """Put the answer ``g`` first in the session's history and make it the current one."""
    entry = {"id": sess["next_id"], "video_key": video["key"], "query": g.query,
             "name": video["name"], "describe": describing,
             "fmt": fmt_value, "grounding": g, "at": time.time()}
    sess["next_id"] += 1
    sess["history"].insert(0, entry)
    del sess["history"][HISTORY_LIMIT:]
    sess["current"] = entry["id"]
    return entry


def _progress_bar(progress: Any, lang_value: str) -> Callable[[ProgressEvent], None]:
    """Show a progress event on Gradio's bar (each stage fills its part, ``STAGE_SPANS``)."""

    def show(event: ProgressEvent) -> None:
        lo, hi = STAGE_SPANS.get(event.stage, (0.5, 0.5))
        frac = event.fraction
        if frac is None:
            done = max(0.0, float(event.done or 0))
            frac = min(0.95, done / (done + 200.0))
        desc = _t(lang_value, f"stage_{event.stage}") if f"stage_{event.stage}" in \
            TEXTS["en"] else (event.message or event.stage)
        if event.total and event.stage in ("decode", "refine"):
            desc += f" {int(event.done)}/{int(event.total)}"
        try:
            progress(lo + (hi - lo) * frac, desc=desc)
        except Exception:  # a closed page must not break the work
            log.debug("progress update failed", exc_info=True)

    return show


def _wait_showing(future: Future[Any], events: queue.SimpleQueue[ProgressEvent],
                  show: Callable[[ProgressEvent], None]) -> Any:
    """``future``'s result, showing its progress ``events`` while it runs."""
    while True:
        try:
            return future.result(timeout=0.1)
        except FutureTimeout:
            pass
        finally:
            while not events.empty():
                show(events.get())


# -- the page -----------------------------------------------------------------------------------


def page_theme() -> Any:
    import gradio as gr

    # System fonts only: the default theme would fetch Google fonts from the internet.
    return gr.themes.Soft(
        primary_hue="orange",
        font=[gr.themes.Font("system-ui"), gr.themes.Font("-apple-system"),
              gr.themes.Font("Segoe UI"), gr.themes.Font("Noto Sans CJK SC"), "sans-serif"],
        font_mono=[gr.themes.Font("ui-monospace"), gr.themes.Font("SFMono-Regular"),
                   gr.themes.Font("Menlo"), "monospace"],
    )


def build_blocks(svc: Service, registry: MediaRegistry):
    """The Gradio Blocks of the page (not yet mounted)."""
    import gradio as gr
    from gradio.utils import get_upload_folder

    settings = svc.settings
    media_root = svc.media_root
    default = LocateOptions()
    lang0 = "en"

    def media_choices() -> list[str]:
        return list_media(media_root)

    # uploads live in Gradio's cache: files older than a day are removed (checked hourly)
    with gr.Blocks(title="vidground", analytics_enabled=False,
                   delete_cache=(3600, 24 * 3600)) as demo:
        sess_state = gr.State(None)
        with gr.Row(equal_height=False):
            header = gr.Markdown(f"# {_t(lang0, 'title')}\n{_t(lang0, 'subtitle')}",
                                 elem_classes=["vg-header"])
            lang = gr.Radio(LANG_CHOICES, value=lang0, label=_t(lang0, "lang"),
                            elem_id="vg-lang", scale=0, min_width=240)
        # one tab per way in: asking about one video (this one); the live monitors and the
        # library search add their own tabs after it (each module builds its tab and follows
        # the language switch itself)
        with gr.Tab(_t(lang0, "tab_ask"), id="ask", elem_id="vg-tab-ask") as ask_tab:
            with gr.Row(equal_height=False):
                with gr.Column(scale=5):
                    player = gr.HTML(player_html(None, lang0), elem_id="vg-player-box",
                                     js_on_load=None)
                    upload = gr.File(label=_t(lang0, "upload"), file_types=list(VIDEO_EXTENSIONS),
                                     file_count="single", type="filepath", elem_id="vg-upload",
                                     height=110)
                    with gr.Row(equal_height=True):
                        media = gr.Dropdown(choices=[], value=None, label=_t(lang0, "media"),
                                            elem_id="vg-media", scale=4, allow_custom_value=False)
                        refresh = gr.Button(_t(lang0, "refresh"), scale=1, size="sm",
                                            elem_id="vg-refresh")
                with gr.Column(scale=6):
                    query = gr.Textbox(label=_t(lang0, "query"), placeholder=_t(lang0, "query_ph"),
                                       lines=2, max_lines=6, elem_id="vg-query")
                    with gr.Accordion(_t(lang0, "options"), open=False,
                                      elem_id="vg-options") as options_box:
                        with gr.Row():
                            sampling = gr.Radio(
                                [(_t(lang0, "sampling_fps"), "fps"),
                                 (_t(lang0, "sampling_adaptive"), "adaptive")],
                                value="fps", label=_t(lang0, "sampling"), elem_id="vg-sampling")
                            fps = gr.Number(value=float(default.frame_sampling_rate)
                                            if default.frame_sampling_rate != "adaptive" else 2.0,
                                            minimum=0.01, maximum=60, step=0.5,
                                            label=_t(lang0, "fps"), elem_id="vg-fps")
                            max_frames = gr.Number(value=default.max_frames, minimum=2,
                                                   maximum=4096,
                                                   precision=0, step=16,
                                                   label=_t(lang0, "max_frames"),
                                                   elem_id="vg-max-frames")
                        with gr.Row():
                            fmt = gr.Dropdown(list(OUTPUT_FORMATS), value=default.output_format,
                                              label=_t(lang0, "format"), elem_id="vg-format",
                                              min_width=190)
                            reasoning_on = gr.Checkbox(value=default.return_reasoning,
                                                       label=_t(lang0, "reasoning_on"),
                                                       elem_id="vg-reasoning-on")
                            all_occ = gr.Checkbox(value=default.all_occurrences,
                                                  label=_t(lang0, "all"), elem_id="vg-all")
                            refine = gr.Checkbox(value=default.refine, label=_t(lang0, "refine"),
                                                 elem_id="vg-refine")
                    with gr.Row(equal_height=True):
                        locate_btn = gr.Button(_t(lang0, "locate"), variant="primary", size="lg",
                                               elem_id="vg-locate", scale=3)
                        describe_btn = gr.Button(_t(lang0, "describe"), variant="secondary",
                                                 size="lg", elem_id="vg-describe", scale=2)
                    # read off the pictures by OCR, shots and speech (issue 24): no model
                    with gr.Row(equal_height=True):
                        find_text = gr.Textbox(label=_t(lang0, "find_text"), lines=1,
                                               max_lines=1, placeholder=_t(lang0, "find_text_ph"),
                                               elem_id="vg-find-text", scale=4)
                        find_text_btn = gr.Button(_t(lang0, "find_text_btn"), size="sm",
                                                  elem_id="vg-find-text-btn", scale=2)
                        shots_btn = gr.Button(_t(lang0, "show_shots"), size="sm",
                                              elem_id="vg-show-shots", scale=2)
                    status = gr.HTML("", elem_id="vg-status", js_on_load=None)
                    answer = gr.Textbox(label=_t(lang0, "answer"), lines=2, max_lines=8,
                                        interactive=False, elem_id="vg-answer", buttons=["copy"])
                    ranges = gr.Textbox(label=_t(lang0, "range"), lines=1, max_lines=10,
                                        interactive=False, elem_id="vg-range", buttons=["copy"])
            timeline = gr.HTML(timeline_html(None, "HH:MM:SS.sss", lang0),
                               elem_id="vg-timeline-box",
                               js_on_load=None)
            with gr.Row(equal_height=False):
                reasoning = gr.Textbox(label=_t(lang0, "reasoning"), lines=3, max_lines=12,
                                       interactive=False, elem_id="vg-reasoning", scale=6)
                history = gr.Radio([], value=None, label=_t(lang0, "history"), elem_id="vg-history",
                                   scale=5)
            evidence = gr.HTML("", elem_id="vg-evidence-box", js_on_load=None)
            with gr.Row(equal_height=True):
                export_fmt = gr.Dropdown(list(EXPORT_FORMATS), value="srt",
                                         label=_t(lang0, "export_format"),
                                         elem_id="vg-export-format", scale=1, min_width=180)
                export_btn = gr.DownloadButton(_t(lang0, "export"), value=None,
                                               elem_id="vg-export", scale=2, interactive=False)

        build_search_tab(svc, lang, lang0, registry)  # library search (issue 27)
        build_live_tab(svc, lang, lang0, registry)  # live monitors (issue 25)
        # -- handlers: each returns its updates keyed by component; what it leaves out is
        # left as it is ------------------------------------------------------------------

        def result_updates(entry: dict[str, Any] | None, fmt_value: str,
                           lang_value: str, overlay: Overlay | None = None) -> dict[Any, Any]:
            """The answer, ranges, reasoning and timeline of ``entry`` (None: cleared), the
            video's shots and speech (``overlay``) drawn on the timeline too."""
            if entry is None:
                return {answer: "", ranges: "", reasoning: "",
                        timeline: timeline_html(None, fmt_value, lang_value, overlay)}
            g = entry["grounding"]
            # the answer's times follow the format chosen on the page
            return {answer: g.answer_in(fmt_value) or "",
                    ranges: ranges_text(g, fmt_value, lang_value),
                    reasoning: g.reasoning or "",
                    timeline: timeline_html(g, fmt_value, lang_value, overlay)}

        def shown_overlay(sess: dict[str, Any]) -> Overlay | None:
            """The shots and speech of the session's video, once shown."""
            return (sess.get("video") or {}).get("overlay")

        def output_updates(entry: dict[str, Any] | None, export_value: str,
                           lang_value: str) -> dict[Any, Any]:
            """The evidence strip and the download button of ``entry`` (None: cleared)."""
            if entry is None:
                return {evidence: "", export_btn: gr.update(value=None, interactive=False)}
            if "evidence" not in entry:
                entry["evidence"] = evidence_html(entry["grounding"], lang_value)
            return {evidence: entry["evidence"], export_btn: export_update(entry, export_value)}

        def export_update(entry: dict[str, Any], export_value: str) -> Any:
            return gr.update(value=export_path(entry["grounding"], export_value,
                                               entry.get("name"), svc.data_dir),
                             interactive=True)

        def status_updates(sess: dict[str, Any], kind: str, text: str) -> dict[Any, Any]:
            sess["status"] = (kind, text)
            return {sess_state: sess, status: status_html(kind, text)}

        def choose_video(sess: dict[str, Any], path: Path, name: str, key: str,
                         source: dict[str, str], duration: float | None,
                         lang_value: str) -> dict[Any, Any]:
            """Make ``path`` the session's video; ``source`` is how requests name it
            (``{"video_id": ...}`` or ``{"video_path": ...}``, as in the API)."""
            token = registry.register(path, Path(name).suffix)
            video = {"path": str(path), "name": name, "key": key, "token": token,
                     "duration": duration, "source": source}
            sess["video"] = video
            sess["current"] = None
            if duration is not None:
                text = _t(lang_value, "ready", name=name, duration=_duration_text(duration))
            else:
                text = _t(lang_value, "ready_unknown", name=name)
            return {**status_updates(sess, "info", text),
                    player: player_html(video, lang_value),
                    **result_updates(None, "HH:MM:SS.sss", lang_value),
                    history: gr.update(choices=_history_choices(sess, lang_value), value=None),
                    **output_updates(None, "srt", lang_value)}

        def refuse(sess: dict[str, Any], exc: VidgroundError, lang_value: str
                   ) -> dict[Any, Any]:
            return status_updates(sess, "error", error_text(exc, lang_value))

        def on_upload(file: Any, sess: Any, lang_value: str) -> Any:
            sess = _session(sess)
            lang_value = _lang(lang_value)
            if not file:
                return gr.skip()
            try:
                path = uploaded_file(file, Path(get_upload_folder()))
                key = "upload:" + file_identity(path)
                # into the API's upload store: probed with the API's limits, same video_id
                meta = svc.adopt_upload(path, path.name)
                stored = svc.uploads.video_path(meta["video_id"])
            except VidgroundError as exc:
                return refuse(sess, exc, lang_value)
            except OSError:
                log.exception("taking the page's upload failed")
                return refuse(sess, VideoError("the upload could not be read; upload it again"),
                              lang_value)
            name = meta.get("filename") or path.name
            return {**choose_video(sess, stored, name, key, {"video_id": meta["video_id"]},
                                   float(meta["video"]["duration"]), lang_value),
                    media: gr.update(value=None)}

        def on_pick(rel: str | None, sess: Any, lang_value: str) -> Any:
            sess = _session(sess)
            lang_value = _lang(lang_value)
            if not rel:
                return gr.skip()
            try:
                path = resolve_media(media_root, rel)
                info = svc.probe(path)  # the API's limits
            except VidgroundError as exc:
                return refuse(sess, exc, lang_value)
            return {**choose_video(sess, path, rel, "media:" + rel, {"video_path": rel},
                                   float(info.duration), lang_value),
                    upload: gr.update(value=None)}

        def on_refresh() -> Any:
            return gr.update(choices=media_choices())

        def question_handler(describing: bool) -> Any:
            """The handler of ``Locate`` (a question) or of "what happens when?"."""

            def handler(sess: Any, query_value: str, sampling_value: str, fps_value: Any,
                        max_frames_value: Any, fmt_value: str, reasoning_value: bool,
                        all_value: bool, refine_value: bool, lang_value: str,
                        export_value: str,
                        progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
                form = {"sampling": sampling_value, "fps": fps_value,
                        "max_frames": max_frames_value, "format": fmt_value,
                        "reasoning": reasoning_value, "all": all_value,
                        "refine": refine_value}
                return ask_model(_session(sess), query_value, form, _lang(lang_value),
                                 export_value, progress, describing=describing)

            return handler

        on_locate, on_describe = question_handler(False), question_handler(True)

        def ask_model(sess: dict[str, Any], query_value: str, form: dict[str, Any],
                      lang_value: str, export_value: str, progress: Any, *,
                      describing: bool) -> dict[Any, Any]:
            """A question (``Locate``), or "what happens when?" (``describing``: every event
            of the video, labelled), through the server's service like the API: checked
            there once, queued on the shared executor, with the API's limits and defaults."""
            video = sess.get("video")

            def fail(message: str | VidgroundError) -> dict[Any, Any]:
                if isinstance(message, VidgroundError):
                    message = error_text(message, lang_value)
                return status_updates(sess, "error", message)

            if not video:
                return fail(_t(lang_value, "need_video"))
            try:
                options = _form_options(form)
            except (TypeError, ValueError) as exc:
                return fail(str(exc))
            except VidgroundError as exc:
                return fail(exc)
            progress(0.0, desc=_t(lang_value, "stage_probe"))
            started = time.perf_counter()
            request = {**video["source"], "query": query_value or "", "options": options}
            if describing and shown_overlay(sess) is not None:
                # shots and speech were shown for this video (so they are cached): describe's
                # one output holds them too, subtitles and chapters starting at shot changes
                request["include"] = ["subtitles", "shots"]
            events: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
            try:
                if describing:
                    future = svc.submit_describe(request, events.put, as_description=True)
                else:
                    future = svc.submit(request, events.put, as_grounding=True)
                g = _wait_showing(future, events, _progress_bar(progress, lang_value))
            except VidgroundError as exc:
                return fail(exc)
            except Exception as exc:
                log.exception("locate failed in the web page")
                return fail(_t(lang_value, "unexpected", error=f"{type(exc).__name__}: {exc}"))
            if describing:
                found = g
                if found.shots is not None or found.subtitles is not None:
                    heard = found.subtitles.spans if found.subtitles is not None else ()
                    video["overlay"] = overlay_of(
                        found.video.duration, found.shots.transitions if found.shots else (),
                        heard, "no_sound" if found.subtitles is None
                        or found.subtitles.source == "none" else "")
                g = DescribedVideo(found, _t(lang_value, "described"))
            entry = _remember(sess, video, g, form["format"], describing=describing)
            if g.spans:
                kind = "ok"
                text = _t(lang_value, "done", seconds=time.perf_counter() - started,
                          n=len(g.spans))
            else:
                kind, text = "info", _t(lang_value, "not_found")
            return {**status_updates(sess, kind, text),
                    **result_updates(entry, form["format"], lang_value, shown_overlay(sess)),
                    history: gr.update(choices=_history_choices(sess, lang_value),
                                       value=str(entry["id"])),
                    **output_updates(entry, export_value, lang_value)}

        def perceive_here(sess: dict[str, Any], request: dict[str, Any], progress: Any,
                          lang_value: str) -> Any:
            """Text, shots or speech of the session's video through the server's service
            (the API's checks, limits and shared queue); the
            :class:`~vidground.server.perception_work.Perceived`."""
            events: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
            future = svc.submit_perception({**sess["video"]["source"], **request}, events.put,
                                           as_result=True)
            return _wait_showing(future, events, _progress_bar(progress, lang_value))

        def on_find_text(sess: Any, phrase: str, fmt_value: str, lang_value: str,
                         export_value: str,
                         progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
            """When the phrase is on screen (OCR, to the frame), shown like an answer."""
            sess = _session(sess)
            lang_value = _lang(lang_value)
            video = sess.get("video")
            if not video:
                return status_updates(sess, "error", _t(lang_value, "need_video"))
            progress(0.0, desc=_t(lang_value, "stage_text"))
            started = time.perf_counter()
            try:
                found = perceive_here(sess, {"kind": "text", "phrase": phrase or "",
                                             "output_format": fmt_value}, progress, lang_value)
            except VidgroundError as exc:
                return status_updates(sess, "error", error_text(exc, lang_value))
            except Exception as exc:
                log.exception("finding text failed in the web page")
                return status_updates(sess, "error", _t(
                    lang_value, "unexpected", error=f"{type(exc).__name__}: {exc}"))
            entry = _remember(sess, video, found.grounding, fmt_value, describing=False)
            entry["kind"] = "text"
            seconds = time.perf_counter() - started
            if found.grounding.spans:
                kind = "ok"
                text = _t(lang_value, "text_found", seconds=seconds,
                          n=len(found.grounding.spans))
            else:
                kind, text = "info", _t(lang_value, "text_not_found")
            return {**status_updates(sess, kind, text),
                    **result_updates(entry, fmt_value, lang_value, shown_overlay(sess)),
                    history: gr.update(choices=_history_choices(sess, lang_value),
                                       value=str(entry["id"])),
                    **output_updates(entry, export_value, lang_value)}

        def on_shots(sess: Any, fmt_value: str, lang_value: str,
                     progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
            """The video's shots (TransNetV2) and speech (Silero VAD) drawn on the timeline."""
            sess = _session(sess)
            lang_value = _lang(lang_value)
            video = sess.get("video")
            if not video:
                return status_updates(sess, "error", _t(lang_value, "need_video"))
            started = time.perf_counter()
            try:
                shots = perceive_here(sess, {"kind": "shots"}, progress, lang_value)
                try:
                    heard = perceive_here(sess, {"kind": "speech"}, progress, lang_value)
                    speech, note = heard.grounding.spans, ""
                except VideoError as exc:
                    if exc.code != "invalid_video":  # a video without sound has no speech
                        raise
                    speech, note = (), "no_sound"
            except VidgroundError as exc:
                return status_updates(sess, "error", error_text(exc, lang_value))
            except Exception as exc:
                log.exception("finding shots failed in the web page")
                return status_updates(sess, "error", _t(
                    lang_value, "unexpected", error=f"{type(exc).__name__}: {exc}"))
            overlay = overlay_of(shots.grounding.video.duration, shots.extra["transitions"],
                                 speech, note)
            video["overlay"] = overlay
            entry = _find_entry(sess, sess.get("current"))
            text = _t(lang_value, "shots_done", seconds=time.perf_counter() - started,
                      shots=len(shots.grounding.spans), speech=len(speech))
            return {**status_updates(sess, "ok", text),
                    timeline: timeline_html(entry["grounding"] if entry else None, fmt_value,
                                            lang_value, overlay)}

        def on_history(entry_id: Any, sess: Any, fmt_value: str, lang_value: str,
                       export_value: str) -> Any:
            sess = _session(sess)
            lang_value = _lang(lang_value)
            entry = _find_entry(sess, entry_id)
            if entry is None:
                return {sess_state: sess}
            sess["current"] = entry["id"]
            updates = {**status_updates(sess, "info", _t(lang_value, "reopened")),
                       **result_updates(entry, fmt_value, lang_value, shown_overlay(sess)),
                       **output_updates(entry, export_value, lang_value)}
            if entry.get("kind") == "text":
                updates[find_text] = entry["query"]
            elif not entry.get("describe"):
                updates[query] = entry["query"]
            return updates

        def on_export_format(export_value: str, sess: Any) -> Any:
            entry = _find_entry(_session(sess), _session(sess).get("current"))
            if entry is None or export_value not in EXPORT_FORMATS:
                return gr.skip()
            return export_update(entry, export_value)

        def on_format(fmt_value: str, sess: Any, lang_value: str) -> Any:
            sess = _session(sess)
            entry = _find_entry(sess, sess.get("current"))
            if entry is None:
                return gr.skip()
            try:
                updates = result_updates(entry, fmt_value, _lang(lang_value), shown_overlay(sess))
            except ValueError:
                return gr.skip()
            del updates[reasoning]  # the format changes times only
            return updates

        def on_language(lang_value: str, sess: Any, fmt_value: str) -> dict[Any, Any]:
            lv = _lang(lang_value)
            sess = _session(sess)
            entry = _find_entry(sess, sess.get("current"))
            kind, text = sess.get("status") or ("", "")
            labels = {component: gr.update(label=_t(lv, name))
                      for component, name in labelled.items()}
            updates = {
                **labels,
                lang: gr.update(value=lv, label=_t(lv, "lang")),
                ask_tab: gr.update(label=_t(lv, "tab_ask")),
                header: f"# {_t(lv, 'title')}\n{_t(lv, 'subtitle')}",
                player: player_html(sess.get("video"), lv),
                media: gr.update(label=_t(lv, "media"), choices=media_choices()),
                query: gr.update(label=_t(lv, "query"), placeholder=_t(lv, "query_ph")),
                sampling: gr.update(label=_t(lv, "sampling"),
                                    choices=[(_t(lv, "sampling_fps"), "fps"),
                                             (_t(lv, "sampling_adaptive"), "adaptive")]),
                history: gr.update(label=_t(lv, "history"), choices=_history_choices(sess, lv)),
                timeline: timeline_html(entry["grounding"] if entry else None, fmt_value, lv,
                                        shown_overlay(sess)),
                find_text: gr.update(label=_t(lv, "find_text"),
                                     placeholder=_t(lv, "find_text_ph")),
                **{button: gr.update(value=_t(lv, name)) for button, name in buttons.items()},
            }
            if kind != "error":
                updates[status] = status_html(kind, text)
            if entry:
                # (no nested gr.skip(): Gradio would show it as text in the box)
                updates[ranges] = gr.update(label=_t(lv, "range"),
                                            value=ranges_text(entry["grounding"], fmt_value, lv))
            return updates

        # components whose label is a text of the page, and buttons whose value is one
        labelled = {upload: "upload", options_box: "options", fps: "fps",
                    max_frames: "max_frames", fmt: "format", reasoning_on: "reasoning_on",
                    all_occ: "all", refine: "refine", answer: "answer", ranges: "range",
                    reasoning: "reasoning", export_fmt: "export_format", export_btn: "export"}
        buttons = {refresh: "refresh", locate_btn: "locate", describe_btn: "describe",
                   find_text_btn: "find_text_btn", shots_btn: "show_shots"}
        # (the handlers' updates are keyed by component: the order of these lists is free)
        language_outputs = [lang, ask_tab, header, player, media, query, sampling, history,
                            timeline, find_text,
                            status, *labelled, *buttons]
        video_outputs = [sess_state, player, status, answer, ranges, reasoning, timeline, history,
                         evidence, export_btn]

        upload.upload(on_upload, [upload, sess_state, lang], [*video_outputs, media],
                      api_visibility="undocumented")
        media.input(on_pick, [media, sess_state, lang], [*video_outputs, upload],
                    api_visibility="undocumented")
        refresh.click(on_refresh, None, media, api_visibility="undocumented")
        locate_inputs = [sess_state, query, sampling, fps, max_frames, fmt, reasoning_on,
                         all_occ, refine, lang, export_fmt]
        locate_outputs = [sess_state, status, answer, ranges, reasoning, timeline, history,
                          evidence, export_btn]
        for trigger, handler in ((locate_btn.click, on_locate), (query.submit, on_locate),
                                 (describe_btn.click, on_describe)):
            trigger(handler, locate_inputs, locate_outputs, api_visibility="undocumented",
                    show_progress_on=[status], concurrency_id="locate")
        find_outputs = [sess_state, status, answer, ranges, reasoning, timeline, history,
                        evidence, export_btn]
        for trigger in (find_text_btn.click, find_text.submit):
            trigger(on_find_text, [sess_state, find_text, fmt, lang, export_fmt], find_outputs,
                    api_visibility="undocumented", show_progress_on=[status],
                    concurrency_id="locate")
        shots_btn.click(on_shots, [sess_state, fmt, lang], [sess_state, status, timeline],
                        api_visibility="undocumented", show_progress_on=[status],
                        concurrency_id="locate")
        history.input(on_history, [history, sess_state, fmt, lang, export_fmt],
                      [sess_state, status, answer, ranges, reasoning, timeline, query,
                       find_text, evidence, export_btn],
                      api_visibility="undocumented")
        export_fmt.input(on_export_format, [export_fmt, sess_state], export_btn,
                         api_visibility="undocumented")
        fmt.input(on_format, [fmt, sess_state, lang], [answer, ranges, timeline],
                  api_visibility="undocumented")
        lang.input(on_language, [lang, sess_state, fmt], language_outputs,
                   api_visibility="undocumented")
        # Follow the browser's language on load (and fill the media list).
        demo.load(on_language, [lang, sess_state, fmt], language_outputs, js=DETECT_LANGUAGE_JS,
                  api_visibility="undocumented")
    # the shared executor bounds the model work; Gradio's queue only has to let questions
    # reach it (and they get its 429 when it is full)
    limit = max(1, int(settings.queue_limit or 64))
    demo.queue(default_concurrency_limit=limit, max_size=limit)
    return demo


