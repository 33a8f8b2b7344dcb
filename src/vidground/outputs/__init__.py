"""Results people can use: exports (subtitles, chapters, tables, editor timelines), clips,
evidence frames and contact sheets, and whole-video descriptions. See docs/outputs.md.

Each module imports its heavy libraries (PyAV, OpenTimelineIO, ``srt``, ``webvtt-py``) only
when it is used.
"""

from .results import Result, load_results, results_from_json

__all__ = ["Result", "load_results", "results_from_json"]
