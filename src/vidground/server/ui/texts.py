"""What the page says, in English and Chinese, and how it words the API's errors."""

from __future__ import annotations

import re
from typing import Any

from ...config import Settings
from ...errors import VidgroundError

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "vidground — find **when** it happens",
        "subtitle": "Upload a video (MP4, AVI, MOV, MKV, WebM, TS, …) or pick one from the "
                    "media root, ask a question, and see the moments on the timeline.",
        "lang": "Language",
        "upload": "Upload a video",
        "media": "…or pick from the media root",
        "refresh": "↻ Refresh list",
        "query": "Question",
        "query_ph": "e.g. When does the person first pick up the phone?",
        "locate": "Locate",
        "options": "Options",
        "sampling": "Frame sampling",
        "sampling_fps": "Fixed rate (fps)",
        "sampling_adaptive": "Adaptive",
        "fps": "Frames per second",
        "max_frames": "Max frames",
        "format": "Output format",
        "reasoning_on": "Return reasoning",
        "all": "Find all occurrences",
        "refine": "Refine boundaries",
        "answer": "Answer",
        "range": "Time range(s)",
        "reasoning": "Reasoning",
        "history": "Recent questions on this video (click to re-open)",
        "no_video": "No video yet — upload one or pick one from the media root.",
        "need_video": "Please upload a video or pick one from the media root first.",
        "ready": "Video ready: {name} ({duration}). Ask a question and press Locate.",
        "ready_unknown": "Video ready: {name}. Ask a question and press Locate.",
        "done": "Done in {seconds:.1f} s — {n} segment(s) found.",
        "not_found": "The model did not find the event in this video.",
        "none": "(not found)",
        "reopened": "Re-opened an earlier result (the model was not run again).",
        "error": "Error",
        "unexpected": "Unexpected error: {error}",
        "timeline": "Timeline",
        "timeline_empty": "The timeline appears here after a question is answered.",
        "play": "▶ Play",
        "segment": "Segment",
        "cannot_play": "Your browser cannot play this video format; the results still work.",
        "stage_probe": "Reading the video",
        "stage_decode": "Decoding frames",
        "stage_model": "The model is answering",
        "stage_refine": "Refining the boundaries",
        "stage_done": "Done",
        "media_empty": "(no videos in the media root)",
        "evidence": "Evidence: the first, middle and last frame of each segment (click to jump)",
        "describe": "What happens when?",
        "tab_ask": "Ask about a video",
        "described": "(every event in the video)",
        "export_format": "Export format",
        "export": "⬇ Download the result",
        "find_text": "Find text on screen",
        "find_text_ph": "e.g. PAYMENT FAILED — read from the pictures, to the frame",
        "find_text_btn": "Find on screen",
        "show_shots": "Show shots & speech",
        "text_found": "Done in {seconds:.1f} s — on screen {n} time(s).",
        "text_not_found": "That text is not on screen in this video.",
        "shots_done": "Done in {seconds:.1f} s — {shots} shot(s), {speech} speech span(s) on "
                      "the timeline.",
        "no_sound": "(no sound: no speech)",
        "speech": "Speech",
        "cut": "Cut at",
        "gradual": "Gradual transition",
        "overlay_legend": "{shots} shot(s): {cuts} cut(s) │ and {gradual} gradual "
                          "transition(s) ▨; {speech} speech span(s) ▬ (green).",
        "stage_text": "Reading the screen",
        "on_screen": "On screen:",
    },
    "zh": {
        "title": "vidground — 找出事件发生的**时间**",
        "subtitle": "上传视频（MP4、AVI、MOV、MKV、WebM、TS 等）或从媒体目录中选择，输入问题，"
                    "在时间轴上查看事件发生的时刻。",
        "lang": "语言",
        "upload": "上传视频",
        "media": "……或从媒体目录中选择",
        "refresh": "↻ 刷新列表",
        "query": "问题",
        "query_ph": "例如：请识别视频中人物第一次拿起手机的时间点",
        "locate": "定位",
        "options": "选项",
        "sampling": "抽帧方式",
        "sampling_fps": "固定帧率 (fps)",
        "sampling_adaptive": "自适应",
        "fps": "每秒帧数",
        "max_frames": "最大帧数",
        "format": "输出格式",
        "reasoning_on": "返回推理过程",
        "all": "查找所有出现",
        "refine": "精修边界",
        "answer": "回答",
        "range": "时间范围",
        "reasoning": "推理过程",
        "history": "此视频的最近提问（点击重新打开）",
        "no_video": "尚无视频——请上传或从媒体目录中选择。",
        "need_video": "请先上传视频或从媒体目录中选择一个视频。",
        "ready": "视频已就绪：{name}（{duration}）。输入问题并点击“定位”。",
        "ready_unknown": "视频已就绪：{name}。输入问题并点击“定位”。",
        "done": "完成，用时 {seconds:.1f} 秒——找到 {n} 个片段。",
        "not_found": "模型没有在视频中找到该事件。",
        "none": "（未找到）",
        "reopened": "已重新打开之前的结果（没有再次运行模型）。",
        "error": "错误",
        "unexpected": "意外错误：{error}",
        "timeline": "时间轴",
        "timeline_empty": "回答问题后，时间轴会显示在这里。",
        "play": "▶ 播放",
        "segment": "片段",
        "cannot_play": "浏览器无法播放此视频格式；定位结果不受影响。",
        "stage_probe": "正在读取视频",
        "stage_decode": "正在解码帧",
        "stage_model": "模型正在回答",
        "stage_refine": "正在精修边界",
        "stage_done": "完成",
        "media_empty": "（媒体目录中没有视频）",
        "evidence": "证据：每个片段的首帧、中间帧和末帧（点击跳转）",
        "describe": "视频里发生了什么？",
        "tab_ask": "提问单个视频",
        "described": "（视频中的所有事件）",
        "export_format": "导出格式",
        "export": "⬇ 下载结果",
        "find_text": "查找画面中的文字",
        "find_text_ph": "例如：支付失败——从画面中识别，精确到帧",
        "find_text_btn": "在画面中查找",
        "show_shots": "显示镜头和语音",
        "text_found": "完成，用时 {seconds:.1f} 秒——在画面中出现 {n} 次。",
        "text_not_found": "该视频的画面中没有这段文字。",
        "shots_done": "完成，用时 {seconds:.1f} 秒——时间轴上有 {shots} 个镜头、{speech} 段语音。",
        "no_sound": "（没有声音，因此没有语音）",
        "speech": "语音",
        "cut": "切换于",
        "gradual": "渐变转场",
        "overlay_legend": "{shots} 个镜头：{cuts} 个硬切 │，{gradual} 个渐变转场 ▨；"
                          "{speech} 段语音 ▬（绿色）。",
        "stage_text": "正在识别画面文字",
        "on_screen": "画面文字：",
    },
}

#: What each API error code means, for the Chinese page (the API's own message follows).
ERROR_TEXTS_ZH: dict[str, str] = {
    "video_too_large": "视频超出了服务器的限制",
    "upload_too_large": "上传的文件超出了大小限制",
    "unsupported_media": "上传的文件不是可读取的视频",
    "invalid_upload": "上传失败",
    "invalid_video": "无法使用该视频",
    "video_not_found": "找不到该视频",
    "invalid_path": "视频路径无效",
    "path_not_allowed": "只能使用媒体目录中的文件",
    "invalid_query": "问题无效",
    "invalid_options": "选项无效",
    "invalid_request": "请求无效",
    "queue_full": "服务器正忙，请稍后再试",
    "shutting_down": "服务器正在关闭",
    "model_not_available": "模型不可用",
    "backend_error": "模型后端出错",
}

LANG_CHOICES = [("中文", "zh"), ("English", "en")]

# Which part of the progress bar each stage fills.
def _t(lang: str | None, key: str, **kw: Any) -> str:
    text = TEXTS.get(lang or "en", TEXTS["en"]).get(key) or TEXTS["en"][key]
    return text.format(**kw) if kw else text


def _lang(value: str | None) -> str:
    return value if value in TEXTS else "en"


_FLAG_RE = re.compile(r"(?<![\w-])--([a-z][a-z0-9-]*)(?:[ =]((?!--)[^\s;,)]+))?")
_OR_SET_RE = re.compile(r"\s*\(or set VIDGROUND_[A-Z_]+=[^)]*\)")


def server_advice(message: str) -> str:
    """``message`` for a page user: command-line flags that are server settings become the
    ``VIDGROUND_*`` settings the server is started with (``--backend openai`` ->
    ``VIDGROUND_BACKEND=openai``); other flags (of other tools' commands) stay."""
    names = set(Settings.model_fields)

    def setting(match: re.Match[str]) -> str:
        name = match.group(1).replace("-", "_")
        if name not in names:
            return match.group(0)
        value = match.group(2)
        return f"VIDGROUND_{name.upper()}" + (f"={value}" if value else "")

    return _FLAG_RE.sub(setting, _OR_SET_RE.sub("", message))


def error_text(exc: VidgroundError, lang: str) -> str:
    """The message the API gives for ``exc`` (with server settings instead of command-line
    flags); on the Chinese page after a Chinese summary."""
    message = server_advice(exc.message)
    if lang == "zh":
        summary = ERROR_TEXTS_ZH.get(exc.code, "出错了")
        return f"{summary}：{message}"
    return message


