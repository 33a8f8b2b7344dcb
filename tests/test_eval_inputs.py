"""What ``vidground eval`` does with the inputs people give it: hostile or broken annotation and
predictions files (clear errors naming file and line, through the real command), videos named
outside ``--videos``, scoring without durations, raw model answers instead of spans, and which
TimeLens setup a protocol follows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vidground.config import Settings
from vidground.evaluation import load_dataset, plan_runs, score_predictions
from vidground.evaluation.protocols import TimeLensProtocol, make_protocol
from vidground.evaluation.records import EvaluationError
from vidground.video.probe import VideoInfo


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidground", "eval", *args],
                          capture_output=True, text=True, timeout=120)


def assert_clear_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, \
        result.stderr[-2000:]
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr[-2000:])


def write_lines(path: Path, *rows: object) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# ------------------------------------------------------------------ broken or hostile files


@pytest.fixture
def qvh_ann(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "highlight_val_release.jsonl",
                       {"qid": 1, "query": "a dog", "vid": "v1", "duration": 150,
                        "relevant_windows": [[2, 10]]},
                       {"qid": 2, "query": "a cat", "vid": "v2", "duration": 150,
                        "relevant_windows": [[20, 30]]})


def test_deep_nesting_and_huge_integers_name_file_and_line(tmp_path: Path,
                                                           qvh_ann: Path) -> None:
    deep = "[" * 200_000 + "]" * 200_000
    preds = write_lines(tmp_path / "preds.jsonl",
                        {"qid": 1, "pred_relevant_windows": [[2, 10, 0.9]]},
                        '{"qid": 2, "pred_relevant_windows": ' + deep + "}",
                        {"qid": 3, "pred_relevant_windows": []})
    assert_clear_error(run_cli("score", str(preds), "-a", str(qvh_ann)),
                       f"{preds}:2", "nested too deeply")
    for digits, needle in ((4300, "is not a number"), (4301, "cannot be read")):
        preds.write_text(json.dumps({"qid": 1, "pred_relevant_windows": [[2, 10, 0.9]]}) +
                         '\n{"qid": 2, "pred_relevant_windows": [[' + "7" * digits +
                         ", 3, 1]]}\n" + json.dumps({"qid": 3, "pred": []}) + "\n")
        assert_clear_error(run_cli("score", str(preds), "-a", str(qvh_ann)),
                           f"{preds}:2", needle)
    preds = write_lines(preds, {"id": "1", "pred": [[0, 1]]})
    ann = write_lines(tmp_path / "ann.jsonl",
                      '{"video": "a.mp4", "query": "q", "spans": ' + deep + "}")
    assert_clear_error(run_cli("score", str(preds), "-a", str(ann), "--dataset", "jsonl"),
                       f"{ann}:1", "nested too deeply")


@pytest.mark.parametrize(("entry", "needle"), [
    ({"duration": 10, "spans": 5, "queries": ["a"]}, "'spans' must be a list"),
    ({"duration": 10, "spans": [[0, 1]], "queries": None}, "'queries' must be a list"),
    ({"duration": 10, "spans": [[0, 1]], "queries": [["a"]]}, "a query must be non-empty text"),
    ({"duration": 10, "spans": [5], "queries": ["a"]}, "is not a [start, end] pair"),
    ({"duration": True, "spans": [[0, 1]], "queries": ["a"]}, "not a number of seconds"),
])
def test_malformed_timelens_entries_are_clear_errors(tmp_path: Path, entry: dict,
                                                     needle: str) -> None:
    ann = tmp_path / "charades-timelens.json"
    ann.write_text(json.dumps({"vidA": entry}))
    preds = write_lines(tmp_path / "p.jsonl", {"id": "vidA#0", "pred": [[0, 1]]})
    assert_clear_error(run_cli("score", str(preds), "-a", str(ann), "--dataset", "timelens"),
                       str(ann), "'vidA'", needle)


def test_duplicate_qvhighlights_qids_are_refused(tmp_path: Path) -> None:
    """Both samples were scored with the last prediction."""
    ann = write_lines(tmp_path / "highlight_val_release.jsonl",
                      {"qid": 7, "query": "a", "vid": "v1", "relevant_windows": [[2, 10]]},
                      {"qid": 8, "query": "b", "vid": "v2", "relevant_windows": [[2, 10]]},
                      {"qid": 7, "query": "c", "vid": "v3", "relevant_windows": [[40, 50]]})
    preds = write_lines(tmp_path / "p.jsonl", {"qid": 7, "pred_relevant_windows": [[2, 10, 1]]})
    assert_clear_error(run_cli("score", str(preds), "-a", str(ann)),
                       f"{ann}:3", "qid '7' is already used on line 1")


def test_our_jsonl_spans_must_be_ordered_and_not_negative(tmp_path: Path) -> None:
    ann = write_lines(tmp_path / "mine.jsonl",
                      {"video": "a.mp4", "query": "q", "spans": [[1, 2]]},
                      {"video": "a.mp4", "query": "r", "spans": [[-5, -1]]})
    preds = write_lines(tmp_path / "p.jsonl", {"id": "1", "pred": [[1, 2]]})
    assert_clear_error(run_cli("score", str(preds), "-a", str(ann)),
                       f"{ann}:2", "0 <= start <= end")
    ann.write_text(json.dumps({"video": "a.mp4", "query": "q", "spans": 5}) + "\n")
    assert_clear_error(run_cli("score", str(preds), "-a", str(ann)), f"{ann}:1",
                       "'spans' must be a non-empty list")


# ----------------------------------------------------------------------- video confinement


def test_videos_outside_the_video_folder_are_refused_unless_allowed(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    outside = tmp_path / "outside"
    videos.mkdir()
    outside.mkdir()
    (outside / "x.mp4").write_bytes(b"not read")
    (videos / "in.mp4").write_bytes(b"not read")
    for name in ("../outside/x.mp4", str(outside / "x.mp4"), "sub/../../outside/x.mp4"):
        ann = write_lines(tmp_path / "mine.jsonl",
                          {"video": "in.mp4", "query": "q", "spans": [[0, 1]]},
                          {"video": name, "query": "r", "spans": [[0, 1]]})
        result = run_cli("jsonl", "-a", str(ann), "--videos", str(videos), "--backend", "openai",
                         "--openai-base-url", "http://127.0.0.1:9/v1", "-q")
        assert_clear_error(result, f"{ann}:2", "outside the video folder",
                           "--allow-outside-videos")
        with pytest.raises(EvaluationError, match="outside the video folder"):
            load_dataset("jsonl", ann, videos)
        data = load_dataset("jsonl", ann, videos, allow_outside=True)
        if not name.startswith("sub/"):   # (no sub/ folder: that one is not found at all)
            assert [s.video_path.resolve() for s in data.samples] == [
                (videos / "in.mp4").resolve(), (outside / "x.mp4").resolve()]
    # a name inside the folder that a link points elsewhere is the folder's business
    (videos / "linked.mp4").symlink_to(outside / "x.mp4")
    ann = write_lines(tmp_path / "mine.jsonl",
                      {"video": "linked.mp4", "query": "q", "spans": [[0, 1]]})
    assert load_dataset("jsonl", ann, videos).samples[0].video_path == videos / "linked.mp4"


# --------------------------------------------------------------------- scoring: durations


def test_score_without_durations_refuses_the_videomind_table(tmp_path: Path) -> None:
    """It printed a VideoMind table of zeros with 'failed 3' and no warning."""
    ann = tmp_path / "charades_sta_test.txt"
    ann.write_text("AO8RW 0.0 6.9##a person opens a door.\nY6R7T 2.0 8.5##someone sits.\n"
                   "Y6R7T 9.0 12.0##someone stands.\n")
    preds = write_lines(tmp_path / "p.jsonl", {"id": "AO8RW#0", "pred": [[0.0, 6.9]]},
                        {"id": "Y6R7T#1", "pred": [[2.0, 8.5]]},
                        {"id": "Y6R7T#2", "pred": [[9.0, 12.0]]})
    assert_clear_error(run_cli("score", str(preds), "-a", str(ann)),
                       "3 of 3 samples have no video duration", "first: AO8RW", "--durations",
                       "--metrics timelens")
    result = run_cli("score", str(preds), "-a", str(ann), "--metrics", "timelens")
    assert result.returncode == 0 and "100.00" in result.stdout
    assert "no video duration" in result.stderr
    durations = tmp_path / "durations.json"
    durations.write_text(json.dumps({"AO8RW": 30.0, "Y6R7T": 20.0}))
    result = run_cli("score", str(preds), "-a", str(ann), "--durations", str(durations))
    assert result.returncode == 0 and "no video duration" not in result.stderr
    assert "videomind" in result.stdout and "100.00" in result.stdout


# ------------------------------------------------------------------- scoring: raw answers


def test_raw_model_answers_are_parsed_and_scored(tmp_path: Path) -> None:
    """A JSONL of the model's text (under answer/output/response/pred_text) instead of spans;
    spans are read by vidground's answer parser with the sample's duration."""
    ann = write_lines(tmp_path / "mine.jsonl",
                      {"video": "a.mp4", "query": "the dog jumps", "spans": [[2, 4]],
                       "duration": 10},
                      {"video": "b.mp4", "query": "the cat sits", "spans": [[1, 3]],
                       "duration": 10},
                      {"video": "c.mp4", "query": "a car passes", "spans": [[5, 9]],
                       "duration": 10},
                      {"video": "d.mp4", "query": "a bird sings", "spans": [[0, 2]],
                       "duration": 10})
    preds = write_lines(
        tmp_path / "raw.jsonl",
        {"video": "a.mp4", "query": "the dog jumps",
         "answer": "The event happens in 2.0 - 4.0 seconds."},
        {"video": "b.mp4", "query": "the cat sits", "output": "From 0:01 to 0:03."},
        {"video": "c.mp4", "query": "a car passes", "response": "Answer: 5 - 30 seconds"},
        {"video": "d.mp4", "query": "a bird sings", "pred_text": "I cannot find it."})
    report = score_predictions(preds, ann)
    rows = {r["video"]: r for r in report["runs"][0]["samples"]}
    assert rows["a.mp4"]["pred"] == [[2.0, 4.0]] and rows["b.mp4"]["pred"] == [[1.0, 3.0]]
    assert rows["c.mp4"]["pred"] == [[5.0, 10.0]]          # clamped to the duration
    assert rows["d.mp4"]["pred"] == [] and rows["d.mp4"]["answer"] == "I cannot find it."
    timelens = report["runs"][0]["scores"]["timelens"]
    assert timelens["failed"] == 1 and timelens["metrics"]["R1@0.7"] == 0.75
    result = run_cli("score", str(preds), "-a", str(ann), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["runs"][0]["scores"] == report["runs"][0]["scores"]
    bad = write_lines(tmp_path / "bad.jsonl", {"video": "a.mp4", "query": "q", "answer": 5})
    assert_clear_error(run_cli("score", str(bad), "-a", str(ann)), f"{bad}:1",
                       "no predicted spans", "'output'")


# ------------------------------------------------------------------- the TimeLens protocols


def test_timelens_protocols_follow_a_named_reference_commit() -> None:
    """The current script budgets pixels with 32x32 patches (d8db2908, 2026-02-02): a 854x480
    30 s video gets 864x480 frames, 12,150 visual tokens; the legacy protocol keeps the first
    release's 28x28 (800x448, 10,500)."""
    info = VideoInfo(path="x.mp4", duration=30.0, fps=30.0, frame_count=900, width=854,
                     height=480, codec="h264", container="mp4")
    current, legacy = (make_protocol(n) for n in ("timelens", "timelens-legacy"))
    assert isinstance(current, TimeLensProtocol) and isinstance(legacy, TimeLensProtocol)
    for proto, size, tokens, commit in ((current, (864, 480), 12_150, "d8db2908"),
                                        (legacy, (800, 448), 10_500, "df357404")):
        times, got = proto.frame_plan(info)
        assert got == size and len(times) == 60
        assert len(times) * (got[0] // 32) * (got[1] // 32) // 2 == tokens
        settings = proto.settings()
        assert settings["reference"]["commit"].startswith(commit)
        assert settings["reference_dtype"] == "bfloat16"
    names = [r.name for r in plan_runs(["protocol=timelens,timelens-legacy,vidground"])]
    assert names == ["timelens", "timelens-legacy", "vidground"]


def test_timelens_runs_get_bfloat16_on_the_local_backend() -> None:
    from vidground.evaluation.cli import _reference_precision

    runs = plan_runs(["protocol=timelens"])
    chosen = _reference_precision(Settings(backend="transformers"), runs)
    assert chosen.dtype == "bfloat16"
    assert _reference_precision(Settings(backend="transformers", dtype="float32"),
                                runs).dtype == "float32"
    assert _reference_precision(Settings(backend="transformers"), plan_runs()).dtype == "auto"
