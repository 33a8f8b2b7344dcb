"""``vidground batch`` on a real Ray cluster (2 CPUs on this machine, started by another process
and reached with ``--address``) against the fake model server: every row
answered like ``vidground locate``, errors recorded per row, a killed Ray worker costs nothing,
and a resumed run asks the model only for the rows it lacks (issue 26)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import ray
from fake_openai_server import FakeOpenAIServer
from media import make_video
from typer.testing import CliRunner

from vidground.batch.cli import batch_app
from vidground.batch.manifest import read_rows
from vidground.batch.pipeline import BatchConfig, run_batch
from vidground.cli import app as vidground_app
from vidground.config import Settings
from vidground.grounding import Grounder
from vidground.options import LocateOptions

N = 10
OPTIONS = {"refine": False, "verify": False, "frame_sampling_rate": 2}


CLUSTER = """
import sys, ray
ray.init(num_cpus=2, include_dashboard=False)
print("ADDRESS", ray.get_runtime_context().gcs_address, flush=True)
sys.stdin.read()  # until the test closes it
ray.shutdown()
"""


@pytest.fixture(scope="module")
def local_ray() -> Iterator[str]:
    """A real Ray cluster on this machine (2 CPUs) started by another process, as an existing
    cluster is: every batch connects with ``--address``. Stopped after the module."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen([sys.executable, "-c", CLUSTER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    old = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    try:
        assert proc.stdout is not None
        line = ""
        for line in proc.stdout:
            if line.startswith("ADDRESS "):
                break
        assert line.startswith("ADDRESS "), line  # this machine's node IP: Ray's choice
        yield line.split()[1]
    finally:
        if old is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = old
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """N tiny videos (the red square at different times) and a JSONL manifest asking about
    each with relative paths."""
    root = tmp_path_factory.mktemp("archive")
    (root / "videos").mkdir()
    rows = []
    for i in range(N):
        make_video(root / "videos" / f"v{i}.mp4", duration=3.0, fps=10, size=(96, 64),
                   intervals=[(0.5 * (i % 4), 0.5 * (i % 4) + 1.0)])
        rows.append({"video": f"videos/v{i}.mp4", "query": f"the red square (row {i})",
                     "options": OPTIONS})
    _write_jsonl(root / "manifest.jsonl", rows)
    return root


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _settings(fake: FakeOpenAIServer) -> Settings:
    return Settings(backend="openai", openai_base_url=fake.base_url, openai_model=fake.model,
                    openai_max_retries=0)


def _comparable(response: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != "timings"}


def test_batch_answers_every_row_like_locate_and_records_errors(
        local_ray: str, archive: Path, fake_model: FakeOpenAIServer, tmp_path: Path) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    manifest = tmp_path / "manifest.jsonl"
    rows = [json.loads(line) for line in (archive / "manifest.jsonl").read_text().splitlines()]
    rows = [{**r, "video": str(archive / r["video"])} for r in rows]
    rows.append({"video": str(archive / "videos" / "missing.mp4"), "query": "the red square"})
    rows.append({"video": rows[0]["video"], "query": "the red square",
                 "options": {"frame_sampling_rate": 1000}})
    _write_jsonl(manifest, rows)
    out = tmp_path / "out"
    result = CliRunner().invoke(batch_app, [
        str(manifest), "--out", str(out), "--json", "--actor-cpus", "0.5", "--quiet",
        "--address", local_ray,
        "--openai-base-url", fake_model.base_url, "--openai-model", fake_model.model])
    assert result.exit_code == 1, result.output  # two rows failed
    lines = [line for line in result.stdout.splitlines() if line.startswith('{"total"')]
    assert lines, result.output
    summary = json.loads(lines[-1])
    assert summary["total"] == N + 2 and summary["ok"] == N and summary["errors"] == 2
    assert summary["error_codes"] == {"video_not_found": 1, "invalid_options": 1}
    assert summary["ray_address"] == local_ray and not ray.is_initialized()

    records = _records(out)
    assert [r["index"] for r in records] == list(range(N + 2))  # one per row, manifest order
    assert len({r["key"] for r in records}) == N + 2
    grounder = Grounder(settings=_settings(fake_model))
    for rec, row in zip(records[:N], rows[:N], strict=True):
        assert rec["status"] == "ok" and rec["error"] is None
        expected = grounder.locate(row["video"], row["query"], LocateOptions.from_mapping(OPTIONS))
        assert _comparable(rec["response"]) == _comparable(expected.to_response())
    assert records[N]["error"]["code"] == "video_not_found"
    assert records[N + 1]["error"]["code"] == "invalid_options"

    # `vidground locate --json` prints the same object for a row
    cli = CliRunner().invoke(vidground_app, [
        "locate", rows[3]["video"], rows[3]["query"], "--json", "--no-refine", "--no-verify",
        "--fps", "2", "--backend", "openai", "--openai-base-url", fake_model.base_url,
        "--openai-model", fake_model.model, "--quiet"])
    assert cli.exit_code == 0, cli.output
    assert _comparable(json.loads(cli.stdout)) == _comparable(records[3]["response"])

    table = pq.read_table(out / "results.parquet").to_pylist()
    assert [t["key"] for t in table] == [r["key"] for r in records]
    assert [json.loads(t["response"]) if t["response"] else None for t in table] == \
        [r["response"] for r in records]
    assert json.loads((out / "summary.json").read_text())["ok"] == N


def test_a_killed_ray_worker_loses_no_row_and_doubles_none(
        local_ray: str, archive: Path, fake_model: FakeOpenAIServer, tmp_path: Path) -> None:
    fake_model.configure(delay_s=0.4, answer=None)
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_first_worker() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            path = out / "results.jsonl"
            lines = path.read_text().splitlines() if path.exists() else []
            if lines:
                pid = json.loads(lines[0])["worker"]["pid"]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.05)

    side = threading.Thread(target=kill_first_worker, daemon=True)
    side.start()
    before = fake_model.chat_count
    try:
        summary = run_batch(read_rows(archive / "manifest.jsonl"), _settings(fake_model), out,
                            BatchConfig(address=local_ray, actors=2, actor_cpus=0.5,
                                        concurrency=1, batch_size=1))
    finally:
        fake_model.configure(delay_s=0.0)
    side.join(5)
    assert killed, "no row was written, so no worker was killed"
    with pytest.raises(ProcessLookupError):
        os.kill(killed[0], 0)  # it really died
    assert summary.ok == N and summary.errors == 0 and summary.skipped == 0
    records = _records(out)
    assert sorted(r["index"] for r in records) == list(range(N))
    assert len({r["key"] for r in records}) == N
    pids = {r["worker"]["pid"] for r in records}
    assert pids - {killed[0]}, "every row was answered by the killed worker"
    # the killed worker's unfinished rows were asked again, so the model saw at least N asks
    assert fake_model.chat_count - before >= N


def test_a_resumed_run_asks_only_for_missing_rows(
        local_ray: str, archive: Path, fake_model: FakeOpenAIServer, tmp_path: Path) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    out = tmp_path / "out"
    full = read_rows(archive / "manifest.jsonl")
    settings = _settings(fake_model)
    config = BatchConfig(address=local_ray, actor_cpus=0.5)
    first = run_batch(full[:6], settings, out, config)
    assert first.ok == 6
    # a torn last line, as a killed run leaves it, is ignored
    with open(out / "results.jsonl", "a") as f:
        f.write('{"key": "tor')
    before = len(fake_model.requests)
    second = run_batch(full, settings, out, config)
    asked = fake_model.requests[before:]
    assert second.skipped == 6 and second.ok == N - 6 and second.errors == 0
    # refine and verify are off: one model request per row, and only for the new rows
    assert len(asked) == N - 6
    texts = [json.dumps(r.body) for r in asked]
    for row in full[6:]:
        assert sum(row.query in t for t in texts) == 1
    records = _records(out)
    assert [r["index"] for r in records] == list(range(N))
    assert len({r["key"] for r in records}) == N
