"""``vidground batch``'s manifest reading, row keys and result writer, without Ray (issue 26)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from media import make_video

from vidground.batch.manifest import ManifestError, read_rows, row_key, video_identity
from vidground.batch.writer import ResultWriter


@pytest.fixture()
def videos(tmp_path: Path) -> list[Path]:
    (tmp_path / "v" / "sub").mkdir(parents=True)
    paths = [tmp_path / "v" / "a.mp4", tmp_path / "v" / "sub" / "b.mkv"]
    for p in paths:
        make_video(p, duration=1.0, fps=5, size=(64, 48))
    (tmp_path / "v" / "notes.txt").write_text("not a video")
    return paths


def test_jsonl_csv_and_parquet_manifests_give_the_same_rows(tmp_path: Path,
                                                            videos: list[Path]) -> None:
    rows = [{"video": "v/a.mp4", "query": "the red square", "options": {"refine": False}},
            {"video": str(videos[1]), "query": "a door opens"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n\n" for r in rows))
    with open(tmp_path / "m.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["video", "query", "options"])
        w.writeheader()
        w.writerow({**rows[0], "options": json.dumps(rows[0]["options"])})
        w.writerow({**rows[1], "options": ""})
    pq.write_table(pa.table({"video": [r["video"] for r in rows],
                             "query": [r["query"] for r in rows],
                             "options": ['{"refine": false}', None]}), tmp_path / "m.parquet")
    expected = None
    for name in ("m.jsonl", "m.csv", "m.parquet"):
        got = read_rows(tmp_path / name, options={"verify": False})
        assert [r.video for r in got] == [str(p.resolve()) for p in videos]
        assert got[0].options == {"verify": False, "refine": False}  # the row's own win
        assert got[1].options == {"verify": False}
        expected = expected or got
        assert got == expected


def test_a_folder_gives_one_row_per_video(tmp_path: Path, videos: list[Path]) -> None:
    got = read_rows(tmp_path / "v", "the red square")
    assert [r.video for r in got] == [str(p.resolve()) for p in videos]
    assert {r.query for r in got} == {"the red square"} and [r.index for r in got] == [0, 1]
    with pytest.raises(ManifestError, match="--query"):
        read_rows(tmp_path / "v")


@pytest.mark.parametrize("text, match", [
    ('{"video": "a.mp4"}\n', "'video' and 'query'"),
    ("not json\n", "not JSON"),
    ('{"video": "a.mp4", "query": "q", "options": [1]}\n', "options must be an object"),
    ("", "no rows"),
])
def test_bad_manifests_say_which_row(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "m.jsonl").write_text(text)
    with pytest.raises(ManifestError, match=match):
        read_rows(tmp_path / "m.jsonl")


def test_the_key_follows_content_query_and_effective_options(tmp_path: Path,
                                                             videos: list[Path]) -> None:
    copy = tmp_path / "copy.mp4"
    shutil.copy2(videos[0], copy)  # the same bytes and mtime elsewhere
    ident = video_identity(str(videos[0]))
    assert video_identity(str(copy)) == ident  # the file, not its path
    base = row_key(ident, "q", {})
    assert row_key(ident, "q", {"refine": True}) == base  # a default spelled out: same options
    assert row_key(ident, "q", {"refine": False}) != base
    assert row_key(ident, "q2", {}) != base
    assert row_key(video_identity(str(videos[1])), "q", {}) != base
    assert video_identity(str(tmp_path / "gone.mp4")).startswith("missing:")


def test_the_writer_resumes_and_keeps_one_record_per_key(tmp_path: Path) -> None:
    w = ResultWriter(tmp_path)
    assert w.write({"key": "a", "index": 0, "status": "ok", "response": {"x": 1}})
    assert w.write({"key": "b", "index": 1, "status": "error", "error": {"code": "c"}})
    assert not w.write({"key": "a", "index": 0, "status": "ok"})  # a retried task's copy
    w.close()
    with open(tmp_path / "results.jsonl", "a") as f:
        f.write('{"key": "c", "sta')  # torn by a kill
    w2 = ResultWriter(tmp_path)
    assert w2.done == {"a"}  # errors are asked again
    w2.write({"key": "b", "index": 1, "status": "ok", "response": {"x": 2}})
    final = w2.finish(["a", "b"])
    assert [(r["key"], r["status"]) for r in final] == [("a", "ok"), ("b", "ok")]
    lines = (tmp_path / "results.jsonl").read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "b"]
    table = pq.read_table(tmp_path / "results.parquet").to_pylist()
    assert [json.loads(t["response"]) for t in table] == [{"x": 1}, {"x": 2}]
