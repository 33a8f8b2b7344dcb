"""LocateOptions and query checks: bad values become OptionsError/QueryError with a reason."""

from __future__ import annotations

import pytest

from vidground.errors import OptionsError, QueryError
from vidground.options import MAX_QUERY_CHARS, LocateOptions, check_query


def test_defaults_match_the_api_contract() -> None:
    opts = LocateOptions()
    assert opts.output_format == "HH:MM:SS.sss"
    assert opts.frame_sampling_rate == 2.0
    assert opts.enable_temporal_grounding and opts.return_reasoning and opts.refine
    assert not opts.all_occurrences


def test_from_mapping_accepts_known_options() -> None:
    opts = LocateOptions.from_mapping(
        {"frame_sampling_rate": "adaptive", "max_frames": 64, "output_format": "seconds"}
    )
    assert opts.frame_sampling_rate == "adaptive"
    assert opts.max_frames == 64


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"colour": "red"}, "unknown option"),
        ({"frame_sampling_rate": "fast"}, "adaptive"),
        ({"frame_sampling_rate": 0}, "between 0 and 60"),
        ({"frame_sampling_rate": True}, "between 0 and 60"),
        ({"output_format": "mm:ss"}, "output_format"),
        ({"max_frames": 1}, "max_frames"),
        ({"max_frames": "many"}, "max_frames"),
        ({"min_frames": 100, "max_frames": 10}, "larger than"),
        ({"max_context_length": 10}, "max_context_length"),
        ({"language": "fr"}, "language"),
        ({"time_range": [5, 2]}, "must be after its start"),
        ({"time_range": [3, 3]}, "must be after its start"),
        ({"time_range": [-1, 2]}, "0 or later"),
        ({"time_range": [1]}, "two numbers"),
        ({"time_range": "0-5"}, "two numbers"),
        ({"time_range": [0, float("inf")]}, "finite"),
        ({"time_range": [True, 4]}, "finite number"),
        ({"use_shots": "yes"}, "use_shots must be true, false or null"),
    ],
)
def test_bad_options_are_refused_with_a_reason(values: dict, fragment: str) -> None:
    with pytest.raises(OptionsError, match=fragment):
        LocateOptions.from_mapping(values)


@pytest.mark.parametrize(
    ("query", "fragment"),
    [("", "empty"), ("   \n", "empty"), (None, "must be text"), (42, "must be text"),
     ("x" * (MAX_QUERY_CHARS + 1), "characters long"), ("a\x00b", "NUL")],
)
def test_bad_queries_are_refused(query: object, fragment: str) -> None:
    with pytest.raises(QueryError, match=fragment):
        check_query(query)


def test_query_is_stripped() -> None:
    assert check_query("  when does it start?  ") == "when does it start?"


def test_time_range_is_kept_as_seconds_and_clamped_to_the_video() -> None:
    opts = LocateOptions.from_mapping({"time_range": [4, 8]})
    assert opts.time_range == (4.0, 8.0)
    assert opts.range_in(6.5) == (4.0, 6.5)
    assert LocateOptions().range_in(6.5) == (0.0, 6.5)
    with pytest.raises(OptionsError, match="starts at 7 s but the video is only 6.500 s"):
        opts.__class__(time_range=(7, 9)).range_in(6.5)
