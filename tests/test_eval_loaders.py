"""Annotation loaders on small files written in each dataset's published format, video lookup,
durations, and the predictions file (ours and other tools')."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidground.evaluation.loaders import (
    VideoResolver,
    dataset_kind,
    guess_kind,
    load_dataset,
    read_annotations,
    read_durations,
)
from vidground.evaluation.predictions import PredictionWriter, read_predictions
from vidground.evaluation.records import EvaluationError, Prediction


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00")
    return path


def test_charades_sta_lines(tmp_path: Path) -> None:
    ann = tmp_path / "charades_sta_test.txt"
    ann.write_text("3MSZA 24.3 30.4##person turn a light on.\n"
                   "\n"
                   "3MSZA 11.1 16.0##person  opening a door.\n"
                   "AO8RW 0.0 6.9##a person is putting a book on a shelf.\n")
    samples = read_annotations("charades-sta", ann)
    assert [s.id for s in samples] == ["3MSZA#0", "3MSZA#1", "AO8RW#2"]
    assert samples[0].spans == ((24.3, 30.4),)
    assert samples[1].query == "person opening a door"      # parse_query
    assert samples[0].duration is None                        # probed later


def test_charades_durations_from_json_or_csv(tmp_path: Path) -> None:
    ann = tmp_path / "charades_sta_test.txt"
    ann.write_text("AO8RW 0.0 6.9##a person is putting a book on a shelf.\n")
    as_json = tmp_path / "durations.json"
    as_json.write_text(json.dumps({"AO8RW": 33.67}))
    as_csv = tmp_path / "Charades_v1_test.csv"
    as_csv.write_text("id,subject,scene,quality,relevance,verified,script,objects,descriptions,"
                      "actions,length\nAO8RW,P1,Kitchen,6,7,Yes,x,book,y,c001 0.0 6.9,33.67\n")
    for table in (as_json, as_csv):
        assert read_annotations("charades-sta", ann,
                                durations=read_durations(table))[0].duration == 33.67


def test_timelens_json(tmp_path: Path) -> None:
    ann = tmp_path / "charades-timelens.json"
    ann.write_text(json.dumps({
        "AO8RW": {"duration": 33.67, "spans": [[0.0, 6.0], [10.0, 14.0]],
                  "queries": ["A person puts a book on a shelf.", "A person sits down."]},
        "Y6R7T": {"duration": 20.5, "spans": [[3.0, 5.0]], "queries": ["Someone laughs"]},
    }))
    samples = read_annotations("charades-timelens", ann)
    assert [s.id for s in samples] == ["AO8RW#0", "AO8RW#1", "Y6R7T#0"]
    assert samples[1].spans == ((10.0, 14.0),) and samples[1].duration == 33.67
    assert samples[0].query == "A person puts a book on a shelf"


def test_activitynet_captions(tmp_path: Path) -> None:
    ann = tmp_path / "val_2.json"
    ann.write_text(json.dumps({"v_uqiMw7tQ1Cc": {
        "duration": 55.15, "timestamps": [[0.28, 55.15], [13.79, 54.32]],
        "sentences": ["A weight lifting tutorial is given.",
                      "  The coach helps the guy in red with the proper body placement"]}}))
    samples = read_annotations("activitynet", ann)
    assert [s.id for s in samples] == ["v_uqiMw7tQ1Cc#0", "v_uqiMw7tQ1Cc#1"]
    assert samples[1].query.startswith("The coach") and samples[1].spans == ((13.79, 54.32),)
    assert samples[0].names == ("v_uqiMw7tQ1Cc", "uqiMw7tQ1Cc")
    # a file stored without the v_ prefix is found
    touch(tmp_path / "videos" / "uqiMw7tQ1Cc.mp4")
    data = load_dataset("activitynet", ann, tmp_path / "videos")
    assert len(data.samples) == 2 and not data.missing
    assert data.samples[0].video_path == tmp_path / "videos" / "uqiMw7tQ1Cc.mp4"


def test_qvhighlights_jsonl(tmp_path: Path) -> None:
    ann = tmp_path / "highlight_val_release.jsonl"
    rows = [{"qid": 2579, "query": "A girl and her mother cooked while talking with each other",
             "duration": 150, "vid": "j7rJstUseKg_360.0_510.0",
             "relevant_clip_ids": [0, 1, 2], "saliency_scores": [[1, 2, 3]] * 3,
             "relevant_windows": [[0, 6], [40, 52]]},
            {"qid": 8, "query": "Man films himself.", "duration": 126, "vid": "abc_60.0_210.0",
             "relevant_windows": [[96, 114]]}]
    ann.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    samples = read_annotations("qvhighlights", ann)
    assert [s.id for s in samples] == ["2579", "8"]
    assert samples[0].spans == ((0.0, 6.0), (40.0, 52.0)) and samples[0].duration == 150
    test_split = tmp_path / "highlight_test_release.jsonl"
    test_split.write_text(json.dumps({"qid": 1, "query": "x", "duration": 150, "vid": "a"}))
    with pytest.raises(EvaluationError, match="no public ground truth"):
        read_annotations("qvhighlights", test_split)


def test_our_jsonl(tmp_path: Path) -> None:
    ann = tmp_path / "mine.jsonl"
    ann.write_text(json.dumps({"video": "clips/a.mkv", "query": "the dog jumps",
                               "spans": [[1, 2], [5, 6.5]]}) + "\n" +
                   json.dumps({"id": "x", "video": "b", "query": "q", "spans": [[0, 1]],
                               "duration": 4.0}) + "\n")
    samples = read_annotations("jsonl", ann)
    assert [s.id for s in samples] == ["1", "x"]
    assert samples[0].spans == ((1.0, 2.0), (5.0, 6.5)) and samples[1].duration == 4.0
    touch(tmp_path / "v" / "clips" / "a.mkv")
    touch(tmp_path / "v" / "b.webm")
    data = load_dataset("jsonl", ann, tmp_path / "v")
    assert [s.video_path.name for s in data.samples] == ["a.mkv", "b.webm"]


def test_missing_videos_are_listed_not_dropped(tmp_path: Path) -> None:
    ann = tmp_path / "charades_sta_test.txt"
    ann.write_text("AAAAA 0 1##one\nBBBBB 0 1##two\nCCCCC 0 1##three\n")
    touch(tmp_path / "videos" / "AAAAA.mp4")
    touch(tmp_path / "videos" / "sub" / "CCCCC.mkv")
    data = load_dataset("charades-sta", ann, tmp_path / "videos")
    assert [s.id for s in data.samples] == ["AAAAA#0"]
    assert [s.video for s in data.missing] == ["BBBBB", "CCCCC"] and data.total == 3
    deep = load_dataset("charades-sta", ann, tmp_path / "videos", recursive=True)
    assert [s.video for s in deep.samples] == ["AAAAA", "CCCCC"]
    only_mp4 = load_dataset("charades-sta", ann, tmp_path / "videos", extensions=["mp4"],
                            recursive=True)
    assert [s.video for s in only_mp4.missing] == ["BBBBB", "CCCCC"]


@pytest.mark.parametrize(("kind", "text", "message"), [
    ("charades-sta", "AO8RW 0.0##no end\n", "not a Charades-STA line"),
    ("charades-sta", "AO8RW zero 6.9##x\n", "not a number"),
    ("timelens", "[1, 2]", "one JSON object"),
    ("timelens", '{"a": {"duration": 3, "spans": [[0, 1]], "queries": []}}', "1 spans for 0"),
    ("activitynet", '{"v_a": {"duration": 3, "sentences": ["x"]}}', "missing 'timestamps'"),
    ("jsonl", '{"video": "a", "query": "q"}\n', "missing 'spans'"),
    ("jsonl", '{"video": "a", "query": "q", "spans": [[0, "inf"]]}\n', "not a finite number"),
    ("qvhighlights", "{not json}\n", "ann.txt:1: not valid JSON"),
])
def test_bad_annotation_files_say_what_is_wrong(tmp_path: Path, kind: str, text: str,
                                                message: str) -> None:
    ann = tmp_path / "ann.txt"
    ann.write_text(text)
    with pytest.raises(EvaluationError, match=message):
        read_annotations(kind, ann)


def test_unknown_dataset_and_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="unknown dataset 'kinetics'"):
        dataset_kind("kinetics")
    with pytest.raises(EvaluationError, match="does not exist"):
        read_annotations("jsonl", tmp_path / "nope.jsonl")
    with pytest.raises(EvaluationError, match="video folder .* does not exist"):
        VideoResolver(tmp_path / "no-videos")


def test_guess_kind(tmp_path: Path) -> None:
    files = {"a.txt": "V 0 1##q\n",
             "b.json": json.dumps({"v": {"duration": 1, "spans": [], "queries": []}}),
             "c.json": json.dumps({"v": {"duration": 1, "timestamps": [], "sentences": []}}),
             "d.jsonl": json.dumps({"qid": 1, "vid": "v", "query": "q",
                                    "relevant_windows": [[0, 2]]}),
             "e.jsonl": json.dumps({"video": "v", "query": "q", "spans": [[0, 1]]})}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert [guess_kind(tmp_path / n) for n in files] == [
        "charades-sta", "timelens", "activitynet", "qvhighlights", "jsonl"]


def test_predictions_file_round_trip_and_other_tools_forms(tmp_path: Path) -> None:
    path = tmp_path / "run.predictions.jsonl"
    with PredictionWriter(path, {"dataset": "jsonl"}) as writer:
        writer.write(Prediction("a", ((1.0, 2.0),), (0.9,), answer="1 - 2", duration=5.0))
        writer.write(Prediction("b", (), error="BackendError: down"))
        writer.write(Prediction("b", ((3.0, 4.0),)))          # retried: the later line wins
    with path.open("a") as handle:
        handle.write('{"id": "c", "pred": [[1')               # a killed run's last line
    meta, preds = read_predictions(path)
    assert meta is not None and meta["dataset"] == "jsonl"
    by_id = {p.id: p for p in preds}
    assert set(by_id) == {"a", "b"}
    assert by_id["a"].spans == ((1.0, 2.0),) and by_id["a"].scores == (0.9,)
    assert by_id["b"].ok and by_id["b"].spans == ((3.0, 4.0),)
    # appending again first cuts the half line, so the file stays valid JSONL
    with PredictionWriter(path, {"dataset": "jsonl"}) as writer:
        writer.write(Prediction("c", ((0.0, 1.0),)))
    assert {p.id for p in read_predictions(path)[1]} == {"a", "b", "c"}
    for line in path.read_text().splitlines():
        json.loads(line)

    other = tmp_path / "other.jsonl"
    other.write_text(
        json.dumps({"qid": 7, "pred_relevant_windows": [[0, 10, 0.4], [20, 30, 0.9]]}) + "\n" +
        json.dumps({"video": "v", "query": "q", "timestamps": [[1, 2]]}) + "\n")
    _, preds = read_predictions(other)
    assert preds[0].id == "7" and preds[0].scores == (0.4, 0.9)
    assert preds[1].spans == ((1.0, 2.0),)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "q", "pred": []}\n')
    with pytest.raises(EvaluationError, match="needs an 'id'"):
        read_predictions(bad)


def test_timelens_own_output_lines_are_read(tmp_path: Path) -> None:
    path = tmp_path / "charades-timelens.jsonl"
    path.write_text(json.dumps({"AO8RW.mp4>>>A person puts a book away>>>[0.0, 6.0]": {
        "timestamps": [[1.0, 6.0]], "answers": "The event happens in 1.0 - 6.0 seconds.",
        "duration": 33.67}}) + "\n")
    _, preds = read_predictions(path)
    assert preds[0].video == "AO8RW" and preds[0].query == "A person puts a book away"
    assert preds[0].spans == ((1.0, 6.0),) and preds[0].duration == 33.67


def test_limit_draws_the_same_samples_for_the_same_seed(tmp_path: Path) -> None:
    from vidground.evaluation.runner import select_samples

    ann = tmp_path / "charades_sta_test.txt"
    ann.write_text("".join(f"V{i:03d} 0 1##query {i}\n" for i in range(50)))
    samples = read_annotations("charades-sta", ann)
    first = select_samples(samples, 10, seed=1)
    assert [s.id for s in first] == [s.id for s in select_samples(samples, 10, seed=1)]
    assert [s.id for s in first] != [s.id for s in select_samples(samples, 10, seed=2)]
    assert first == sorted(first, key=samples.index)          # kept in file order
    assert select_samples(samples, None) == samples
    with pytest.raises(EvaluationError, match="at least 1"):
        select_samples(samples, 0)
