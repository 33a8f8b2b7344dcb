"""The page's Search tab (issue 27): search the indexed videos of the media root, see the
moments as thumbnails (the frame on screen at each hit's start), click one to play that video
from that moment in the tab's own player.

A shell over the service's :class:`~vidground.server.search_service.Library`, like ``GET
/api/v1/search``: the same confinement (only videos inside the media root), limits and errors
(translated on the Chinese page); videos are probed with the server's limits before a frame is
decoded and are served to the player only through the page's media registry
(``/ui-media/{token}``). The player starts at the moment by a media fragment
(``…#t=12.3``): the browser seeks there itself once the video's header is read.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import VidgroundError
from ...timecode import format_time
from .media import MEDIA_ROUTE, MediaRegistry
from .render import status_html
from .texts import _lang, error_text

if TYPE_CHECKING:
    from ...search.store import Hit
    from ..service import Service

log = logging.getLogger(__name__)

#: Thumbnail width (pixels); the height follows the video's shape.
THUMB_WIDTH = 240
#: The most hits the tab shows.
MAX_HITS = 50
DEFAULT_HITS = 12

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "tab": "Search the library",
        "query": "Search the indexed videos of the media root",
        "query_ph": "e.g. a red car stops at the crossing",
        "top": "Moments",
        "go": "Search",
        "hits": "Moments found (click one to play it)",
        "player_empty": "Click a moment to play it here.",
        "found": "{n} moment(s) for “{query}”.",
        "none": "No indexed video matches “{query}”. Index more videos (POST /api/v1/index "
                "or `vidground index`) or try other words.",
        "need_query": "Type what to look for first.",
        "playing": "{name} from {start}",
    },
    "zh": {
        "tab": "搜索视频库",
        "query": "搜索媒体目录中已索引的视频",
        "query_ph": "例如：一辆红色的车在路口停下",
        "top": "片段数",
        "go": "搜索",
        "hits": "找到的片段（点击即可播放）",
        "player_empty": "点击一个片段即可在此播放。",
        "found": "“{query}”共找到 {n} 个片段。",
        "none": "没有已索引的视频与“{query}”匹配。请索引更多视频（POST /api/v1/index 或 "
                "`vidground index`），或换个说法。",
        "need_query": "请先输入要找的内容。",
        "playing": "{name}，从 {start} 开始",
    },
}


def _s(lang: str, key: str, **kw: Any) -> str:
    text = TEXTS.get(lang, TEXTS["en"]).get(key) or TEXTS["en"][key]
    return text.format(**kw) if kw else text


def player_at(token: str | None, name: str, start: float, lang: str) -> str:
    """The tab's player: the registered video from ``start`` (a media fragment), or a hint
    while nothing was picked."""
    if token is None:
        return (f'<div class="vg-player-empty" id="vg-search-player-empty">'
                f'{html.escape(_s(lang, "player_empty"))}</div>')
    src = f"{MEDIA_ROUTE}/{token}#t={start:.3f}"
    label = _s(lang, "playing", name=name, start=format_time(start))
    return ('<div class="vg-player-wrap">'
            f'<video id="vg-search-player" src="{html.escape(src, quote=True)}" controls '
            f'preload="auto" playsinline data-vg-start="{start:.6f}"></video>'
            f'<div class="vg-player-name" id="vg-search-playing">{html.escape(label)}</div>'
            "</div>")


def thumbnails(svc: Service, hits: list[Hit]) -> list[np.ndarray]:
    """The frame on screen at each hit's start, :data:`THUMB_WIDTH` wide (each video probed
    with the server's limits and opened once; a video that cannot be read gets a grey
    tile)."""
    from ...video.decode import decode_frames

    out: dict[int, np.ndarray] = {}
    by_video: dict[str, list[int]] = {}
    for i, hit in enumerate(hits):
        by_video.setdefault(hit.video, []).append(i)
    for video, indexes in by_video.items():
        try:
            info = svc.probe(Path(video))
            w, h = info.display_size
            size = (THUMB_WIDTH, max(2, round(h * THUMB_WIDTH / max(w, 1))))
            times = [min(max(0.0, hits[i].start), max(0.0, info.duration - 1e-3))
                     for i in indexes]
            frames = decode_frames(info, times, size=size, unique=False)
            out.update({i: f.image for i, f in zip(indexes, frames, strict=True)})
        except VidgroundError as exc:
            log.info("search tab: no thumbnail for %s: %s", Path(video).name, exc.message)
    grey = np.full((THUMB_WIDTH * 9 // 16, THUMB_WIDTH, 3), 128, dtype=np.uint8)
    return [out.get(i, grey) for i in range(len(hits))]


def caption(hit: Hit, relative: str) -> str:
    return (f"{relative}  {format_time(hit.start)} – {format_time(hit.end)}  "
            f"[{hit.source}] {hit.text}")


def build_search_tab(svc: Service, lang: Any, lang0: str, registry: MediaRegistry) -> None:
    """The Search tab (``vg-tab-search``) with its handlers; it follows ``lang`` itself."""
    import gradio as gr

    with gr.Tab(_s(lang0, "tab"), id="search", elem_id="vg-tab-search") as tab:
        found = gr.State([])  # the hits shown: [{video (absolute), name, start}]
        picked = gr.State(None)  # what the player plays: {token, name, start}
        with gr.Row(equal_height=True):
            query = gr.Textbox(label=_s(lang0, "query"), placeholder=_s(lang0, "query_ph"),
                               lines=1, max_lines=1, elem_id="vg-search-query", scale=6)
            top = gr.Number(value=DEFAULT_HITS, minimum=1, maximum=MAX_HITS, precision=0,
                            step=1, label=_s(lang0, "top"), elem_id="vg-search-top", scale=1,
                            min_width=100)
            go = gr.Button(_s(lang0, "go"), variant="primary", elem_id="vg-search-go",
                           scale=1)
        status = gr.HTML("", elem_id="vg-search-status")
        with gr.Row(equal_height=False):
            with gr.Column(scale=6):
                gallery = gr.Gallery(label=_s(lang0, "hits"), columns=3, height="auto",
                                     allow_preview=False, object_fit="contain",
                                     elem_id="vg-search-hits", interactive=False)
            with gr.Column(scale=5):
                player = gr.HTML(player_at(None, "", 0.0, lang0), elem_id="vg-search-player-box")

    def on_search(query_value: str, top_value: Any, lang_value: str) -> Any:
        lv = _lang(lang_value)
        text = (query_value or "").strip()
        if not text:
            return {status: status_html("error", _s(lv, "need_query"))}
        try:
            count = int(top_value or DEFAULT_HITS)
            hits = svc.library.search(text, min(max(count, 1), MAX_HITS))
        except VidgroundError as exc:
            return {status: status_html("error", error_text(exc, lv)), gallery: [], found: []}
        except (TypeError, ValueError):
            return {status: status_html("error", _s(lv, "need_query"))}
        pictures = thumbnails(svc, hits)
        items = [(picture, caption(hit, svc.library.relative(hit.video)))
                 for picture, hit in zip(pictures, hits, strict=True)]
        shown = [{"video": hit.video, "name": svc.library.relative(hit.video),
                  "start": hit.start} for hit in hits]
        message = (_s(lv, "found", n=len(hits), query=text) if hits
                   else _s(lv, "none", query=text))
        return {status: status_html("ok" if hits else "info", message), gallery: items,
                found: shown}

    def on_pick(shown: list[dict[str, Any]], lang_value: str, evt: Any) -> Any:
        index = evt.index if isinstance(getattr(evt, "index", None), int) else None
        if index is None or not 0 <= index < len(shown):
            return gr.skip()
        chosen = shown[index]
        path = Path(chosen["video"])
        playing = {"token": registry.register(path, path.suffix), "name": chosen["name"],
                   "start": float(chosen["start"])}
        return {player: player_at(playing["token"], playing["name"], playing["start"],
                                  _lang(lang_value)), picked: playing}

    def on_language(lang_value: str, playing: dict[str, Any] | None) -> Any:
        lv = _lang(lang_value)
        shown = player_at(playing["token"], playing["name"], playing["start"], lv) \
            if playing else player_at(None, "", 0.0, lv)
        return {tab: gr.update(label=_s(lv, "tab")), player: shown,
                query: gr.update(label=_s(lv, "query"), placeholder=_s(lv, "query_ph")),
                top: gr.update(label=_s(lv, "top")), go: gr.update(value=_s(lv, "go")),
                gallery: gr.update(label=_s(lv, "hits"))}

    for trigger in (go.click, query.submit):
        trigger(on_search, [query, top, lang], [status, gallery, found],
                api_visibility="undocumented", show_progress_on=[status],
                concurrency_id="search")
    # Gradio passes the click's SelectData to the parameter annotated with its class (the
    # annotation itself, not the string this module's postponed annotations would give)
    on_pick.__annotations__["evt"] = gr.SelectData
    gallery.select(on_pick, [found, lang], [player, picked], api_visibility="undocumented",
                   show_progress="hidden")
    # (no loading overlay: a relabelling still pending must never cover the hits)
    lang.change(on_language, [lang, picked], [tab, player, query, top, go, gallery],
                api_visibility="undocumented", show_progress="hidden")
