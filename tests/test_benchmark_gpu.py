"""benchmarks/gpu.py stays runnable where there is no GPU: its CPU mode (the tiny random
Qwen3-VL through the real local path, on a short encoded clip) prints a full table, and the
Qwen3-VL-2B/4B/8B shapes it builds on a GPU have the published parameter counts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.py"
COLUMNS = ("model", "attn", "fps", "q", "frames", "vis tok", "decode s", "prep s", "vision s",
           "tower", "prefill s", "gen s", "new tok", "total s", "peak GiB", "hits", "misses")
LABELS = {"model", "attn"}

pytestmark = pytest.mark.slow


def _run(*args: str, timeout: float = 240) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "CUDA_VISIBLE_DEVICES": "", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def _final_table(out: str) -> list[dict[str, str]]:
    """The rows of the last markdown table the script printed."""
    lines = out.splitlines()
    header = "| " + " | ".join(COLUMNS) + " |"
    start = max(i for i, line in enumerate(lines) if line == header)
    assert set(lines[start + 1]) <= set("|-"), lines[start + 1]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert len(cells) == len(COLUMNS), line
        rows.append(dict(zip(COLUMNS, cells, strict=True)))
    return rows


def test_cpu_mode_prints_every_column_with_numbers(tmp_path):
    """One run of the CPU mode: the table, the caches at work, and the real shapes' sizes."""
    out = _run("--device", "cpu", "--tokens", "3", "--duration", "4", "--size", "320x192",
               "--work", str(tmp_path / "work"))
    rows = _final_table(out)
    # tiny model x (sdpa, eager) x (1, 2 fps) x (first question, second with the caches)
    assert len(rows) == 8, out
    values = []
    for row in rows:
        assert row["model"] == "tiny" and row["attn"] in ("sdpa", "eager"), row
        numbers = {k: float(v) for k, v in row.items() if k not in LABELS}  # raises if not numeric
        assert all(v >= 0 for v in numbers.values()), row
        values.append(numbers)
    for row in values:
        assert row["new tok"] == 3  # a fixed number of new tokens: one forward each
        assert row["vis tok"] > 0 and row["frames"] >= 2 and row["total s"] > 0
        assert row["prefill s"] > 0 and row["peak GiB"] > 0
        if row["q"] == 1:
            assert row["tower"] == 1 and row["misses"] >= 1  # features computed and stored
        else:
            assert row["tower"] == 0 and row["misses"] == 0 and row["hits"] >= 2  # both caches
    by_fps = {(r["fps"], r["q"]): r for r in values}
    assert by_fps[(2.0, 1)]["frames"] == 2 * by_fps[(1.0, 1)]["frames"]
    assert by_fps[(2.0, 1)]["vis tok"] == 2 * by_fps[(1.0, 1)]["vis tok"]
    assert "peak GiB: process peak RSS so far (CPU)" in out
    # the Qwen3-VL-2B/4B/8B shapes built on a GPU have the published sizes: 2.13 B and
    # 4.44 B as the hub lists the 2B and 4B Instruct models, 8.77 B for the 8B one
    for key, billions in (("2b", "2.13"), ("4b", "4.44"), ("8b", "8.77")):
        line = next(line for line in out.splitlines() if line.startswith(f"# {key}: "))
        assert f"({billions} B)" in line, line
