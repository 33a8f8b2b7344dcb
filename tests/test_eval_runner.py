"""``vidground eval`` end to end: videos encoded here with known spans, written up in every
annotation format, answered by the fake OpenAI-compatible model that looks at the frames (and
by the tiny random Qwen3-VL), scored by the reference protocols; resuming a killed run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer
from media import make_video

from vidground.config import Settings
from vidground.evaluation import (
    RunSpec,
    TimeLensProtocol,
    evaluate,
    load_dataset,
    plan_runs,
    score_predictions,
)
from vidground.evaluation.predictions import read_predictions
from vidground.evaluation.records import EvaluationError
from vidground.evaluation.report import DEFAULT_METRICS
from vidground.grounding import Grounder

#: (video id, duration, span of the red square); whole seconds, so that TimeLens' rounding of
#: predictions to whole seconds leaves a right answer right.
CLIPS = (("clipa", 6.0, (2.0, 4.0)), ("clipb", 5.0, (1.0, 3.0)), ("clipc", 7.0, (3.0, 6.0)))
QUERY = "the red square is visible"


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("eval-videos")
    for vid, duration, span in CLIPS:
        make_video(folder / f"{vid}.mp4", duration=duration, fps=25, size=(160, 120),
                   intervals=[span])
    return folder


def write_annotations(kind: str, folder: Path, repeat: int = 1) -> Path:
    """The clips as ``kind`` annotations (``repeat`` differently worded queries per clip; every
    query in the file is different)."""
    queries = [QUERY if r == 0 else f"{QUERY} (take {r})" for r in range(repeat)]
    numbered = {vid: [f"{q}, clip {i}" for q in queries] for i, (vid, _, _) in enumerate(CLIPS)}
    if kind == "charades-sta":
        path = folder / "charades_sta_test.txt"
        path.write_text("".join(f"{vid} {s} {e}##{q}.\n" for vid, _, (s, e) in CLIPS
                                for q in numbered[vid]))
    elif kind == "timelens":
        path = folder / "charades-timelens.json"
        path.write_text(json.dumps({vid: {"duration": d, "spans": [[s, e]] * repeat,
                                          "queries": numbered[vid]} for vid, d, (s, e) in CLIPS}))
    elif kind == "activitynet":  # keys carry the v_ prefix, the files do not
        path = folder / "val_2.json"
        path.write_text(json.dumps({f"v_{vid}": {"duration": d, "timestamps": [[s, e]] * repeat,
                                                 "sentences": numbered[vid]}
                                    for vid, d, (s, e) in CLIPS}))
    elif kind == "qvhighlights":
        path = folder / "highlight_val_release.jsonl"
        rows = [{"qid": 100 * i + r, "query": q, "duration": d, "vid": vid,
                 "relevant_windows": [[s, e]]}
                for i, (vid, d, (s, e)) in enumerate(CLIPS)
                for r, q in enumerate(numbered[vid])]
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    else:
        path = folder / "mine.jsonl"
        path.write_text("".join(json.dumps({"video": f"{vid}.mp4", "query": q,
                                            "spans": [[s, e]]}) + "\n"
                                for vid, _, (s, e) in CLIPS for q in numbered[vid]))
    return path


def fake_settings(server: FakeOpenAIServer) -> Settings:
    return Settings(backend="openai", openai_base_url=server.base_url,
                    openai_model=server.model, openai_max_retries=0)


def run_cli(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vidground", "eval", *args],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("kind", ["charades-sta", "timelens", "activitynet", "qvhighlights",
                                  "jsonl"])
def test_a_model_that_sees_right_scores_full_marks_in_every_format(
        kind: str, videos: Path, tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    data = load_dataset(kind, write_annotations(kind, tmp_path), videos)
    assert len(data.samples) == len(CLIPS) and not data.missing
    report = evaluate(data, Grounder(settings=fake_settings(fake_model)), plan_runs(),
                      tmp_path / "out", concurrency=3)
    run = report["runs"][0]
    assert run["n"] == len(CLIPS) and run["errors"] == 0
    for protocol in DEFAULT_METRICS[kind]:
        metrics = run["scores"][protocol]["metrics"]
        assert metrics["R1@0.7"] == 1.0, (protocol, run["samples"])
        assert metrics.get("mIoU", metrics.get("mAP")) >= 0.95, (protocol, metrics)
    assert (tmp_path / "out" / "report.json").is_file()


def test_several_samples_are_in_flight_with_a_remote_backend(
        videos: Path, tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    data = load_dataset("jsonl", write_annotations("jsonl", tmp_path), videos)
    fake_model.configure(delay_s=0.3, answer=None)
    fake_model.reset_stats()
    try:
        report = evaluate(data, Grounder(settings=fake_settings(fake_model)),
                          plan_runs(protocol="timelens"), tmp_path / "out", concurrency=3)
    finally:
        fake_model.configure(delay_s=0.0)
    assert fake_model.chat_count == len(CLIPS)
    assert fake_model.max_in_flight >= 2
    assert report["runs"][0]["n"] == len(CLIPS)


def test_cli_run_grid_report_and_score(videos: Path, tmp_path: Path,
                                       fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    ann = write_annotations("charades-sta", tmp_path)
    with ann.open("a") as handle:
        handle.write("NOVID 1.0 2.0##a clip nobody has.\n")
    out = tmp_path / "out"
    result = run_cli("charades-sta", "--annotations", str(ann), "--videos", str(videos),
                     "--backend", "openai", "--openai-base-url", fake_model.base_url,
                     "--out", str(out), "--grid", "protocol=timelens,vidground",
                     "--grid", "refine=true,false")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "skipped 1 of 4 samples" in result.stderr and "NOVID" in result.stderr
    assert "[vidground refine=true] 3/3 samples" in result.stderr      # progress, not a TTY
    for name in ("timelens", "vidground refine=true", "vidground refine=false"):
        assert name in result.stdout
    assert "R1@0.7" in result.stdout and "mIoU" in result.stdout

    report = json.loads((out / "report.json").read_text())
    assert [r["name"] for r in report["runs"]] == ["timelens", "vidground refine=true",
                                                   "vidground refine=false"]
    assert report["missing_videos"]["count"] == 1
    config = report["config"]
    assert config["model"] == fake_model.model and config["backend"] == "openai"
    env = config["environment"]
    assert env["vidground"] and "libraries" in env and "git_commit" in env
    refined = report["runs"][1]
    assert refined["settings"]["options"]["refine"] is True
    assert report["runs"][2]["settings"]["options"]["refine"] is False
    assert report["runs"][0]["settings"]["prompt"].startswith("Please find the visual event")
    assert refined["scores"]["videomind"]["metrics"]["R1@0.7"] == 1.0
    row = refined["samples"][0]
    assert {"id", "query", "spans", "pred", "answer", "timelens_iou"} <= set(row)

    # score the refined run's predictions again, without a model
    predictions = Path(refined["predictions"])
    scored = run_cli("score", str(predictions), "--annotations", str(ann), "--json")
    assert scored.returncode == 0, scored.stderr
    again = json.loads(scored.stdout)["runs"][0]["scores"]
    assert again == refined["scores"]
    assert "1 of 4 annotated samples have no prediction" in scored.stderr


def test_cli_scores_another_tools_predictions(tmp_path: Path) -> None:
    ann = write_annotations("qvhighlights", tmp_path)
    preds = tmp_path / "submission.jsonl"
    preds.write_text(
        json.dumps({"qid": 0, "pred_relevant_windows": [[2, 4, 0.9], [0, 1, 0.1]]}) + "\n" +
        json.dumps({"qid": 100, "pred_relevant_windows": [[3, 5, 0.8]]}) + "\n" +
        json.dumps({"qid": 200, "pred_relevant_windows": []}) + "\n")
    result = run_cli("score", str(preds), "--annotations", str(ann), "--json")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout)["runs"][0]["scores"]["qvhighlights"]["metrics"]
    # R1: IoU 1, 1/3, 0 -> R1@0.5 = 1/3; AP: 1, 0 (IoU 1/3 < 0.5); moment_detr leaves the
    # query without a window out of mAP, mAP_strict counts it as AP 0
    assert metrics["R1@0.5"] == pytest.approx(1 / 3)
    assert metrics["mAP"] == pytest.approx(1 / 2)
    assert metrics["mAP_strict"] == pytest.approx(1 / 3)
    table = run_cli("score", str(preds), "--annotations", str(ann))
    assert table.returncode == 0 and "50.00" in table.stdout and "33.33" in table.stdout
    assert "1 queries have no predicted window: left out of mAP" in table.stderr


def test_cli_errors_are_one_readable_line(tmp_path: Path) -> None:
    ann = write_annotations("jsonl", tmp_path)
    result = run_cli("jsonl", "--annotations", str(ann), "--videos", str(tmp_path / "none"))
    assert result.returncode == 2
    assert "video folder" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("kinetics", "--annotations", str(ann), "--videos", str(tmp_path))
    assert result.returncode == 2 and "unknown dataset" in result.stderr
    result = run_cli("jsonl", "--annotations", str(ann), "--videos", str(tmp_path),
                     "--grid", "refin=true")
    assert result.returncode == 2 and "unknown key 'refin'" in result.stderr


def test_resume_after_a_kill_asks_only_what_is_left(videos: Path, tmp_path: Path,
                                                    fake_model: FakeOpenAIServer) -> None:
    ann = write_annotations("timelens", tmp_path, repeat=2)   # 6 samples
    out = tmp_path / "out"
    args = ["timelens", "--annotations", str(ann), "--videos", str(videos), "--backend",
            "openai", "--openai-base-url", fake_model.base_url, "--protocol", "timelens",
            "--concurrency", "1", "--out", str(out)]
    predictions = out / "timelens.predictions.jsonl"
    # the model answers two questions and then holds the third unanswered: the kill lands
    # midway however slow this machine is (was: 0.4 s per answer, killed when two were seen)
    fake_model.reset_stats()
    fake_model.configure(hold_after=2, answer=None)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "vidground", "eval", *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if predictions.exists():
                done = sum(1 for line in predictions.read_text().splitlines()
                           if '"pred"' in line)
                if done >= 2 and fake_model.chat_count > 2:  # the third question is held
                    break
            time.sleep(0.05)
        proc.kill()
        proc.wait(timeout=30)
    finally:
        fake_model.configure(hold_after=None)
    assert 2 <= done < 6, "the run should have been killed midway"
    _, kept = read_predictions(predictions)
    answered = {p.query for p in kept if p.ok}
    assert 2 <= len(kept) < 6

    fake_model.reset_stats()
    result = run_cli(*args, "--json")
    assert result.returncode == 0, result.stderr
    assert fake_model.chat_count == 6 - len(answered)        # nothing asked twice
    asked_again = [r.parts[-1] for r in fake_model.requests]
    assert not any(f"'{q}'" in text for q in answered for text in asked_again)
    run = json.loads(result.stdout)["runs"][0]
    assert run["n"] == 6 and run["resumed"] == len(answered)
    assert run["scores"]["timelens"]["metrics"]["R1@0.3"] == 1.0


def test_resuming_with_other_settings_is_refused(videos: Path, tmp_path: Path,
                                                 fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    data = load_dataset("jsonl", write_annotations("jsonl", tmp_path), videos)
    grounder = Grounder(settings=fake_settings(fake_model))
    opts = {"refine": False, "verify": False}
    evaluate(data, grounder, plan_runs(base={**opts, "frame_sampling_rate": 1.0}),
             tmp_path / "out", limit=1)
    with pytest.raises(EvaluationError, match="other settings"):
        evaluate(data, grounder, plan_runs(base={**opts, "frame_sampling_rate": 2.0}),
                 tmp_path / "out", limit=1)
    report = evaluate(data, grounder, plan_runs(base={**opts, "frame_sampling_rate": 2.0}),
                      tmp_path / "out", limit=1, overwrite=True)
    assert report["runs"][0]["resumed"] == 0


def test_tiny_random_qwen_run_completes(videos: Path, tmp_path: Path,
                                        tmp_path_factory: pytest.TempPathFactory) -> None:
    from tiny_qwen import build_tiny_qwen3vl

    model_dir = build_tiny_qwen3vl(tmp_path_factory.mktemp("models") / "tiny-qwen3vl")
    data = load_dataset("jsonl", write_annotations("jsonl", tmp_path), videos)
    grounder = Grounder(settings=Settings(backend="transformers", model=str(model_dir),
                                          device="cpu"))
    # TimeLens' 512 new tokens of random text take a minute on a busy 2-core machine: 48 here
    runs = [RunSpec("timelens", "timelens", TimeLensProtocol(max_new_tokens=48)),
            *plan_runs(base={"max_new_tokens": 48})]
    report = evaluate(data, grounder, runs, tmp_path / "out", limit=2)
    assert [r["name"] for r in report["runs"]] == ["timelens", "vidground"]
    for run in report["runs"]:
        assert run["n"] == 2 and run["errors"] == 0, run["samples"]
        for result in run["scores"].values():
            assert all(0.0 <= v <= 1.0 for v in result["metrics"].values())
        for row in run["samples"]:
            assert isinstance(row["answer"], str)
            if not row["pred"]:                      # unparseable: counted as 0
                assert row["timelens_iou"] == 0.0
    rescored = score_predictions(report["runs"][0]["predictions"],
                                 tmp_path / "mine.jsonl")["runs"][0]["scores"]
    assert rescored == report["runs"][0]["scores"]


def test_a_failing_backend_stops_the_run_and_a_rerun_asks_again(
        videos: Path, tmp_path: Path, fake_model: FakeOpenAIServer) -> None:
    data = load_dataset("timelens", write_annotations("timelens", tmp_path, repeat=3), videos)
    grounder = Grounder(settings=fake_settings(fake_model))
    runs = plan_runs(protocol="timelens")
    fake_model.configure(always_500=True)
    try:
        with pytest.raises(EvaluationError, match="5 backend failures in a row"):
            evaluate(data, grounder, runs, tmp_path / "out")
    finally:
        fake_model.configure(always_500=False)
    _, kept = read_predictions(tmp_path / "out" / "timelens.predictions.jsonl")
    assert len(kept) == 5 and all(p.error and p.error.startswith("BackendError") for p in kept)
    report = evaluate(data, grounder, runs, tmp_path / "out")
    run = report["runs"][0]
    assert run["resumed"] == 0 and run["asked"] == 9 and run["errors"] == 0
