"""The container files, as far as they can be checked without a container engine (none runs on
the development and CI machines): the image's entry script really starts the server and the
worker from the settings the Dockerfile sets, and the Dockerfile and compose.yaml agree on the
paths every vidground container must share."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import requests
import yaml
from fake_openai_server import FakeOpenAIServer
from server_utils import ROOT, free_port, wait_for

ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def _dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text()
    block = re.search(r"^ENV (.*?)(?=\n\S)", text, re.S | re.M)
    assert block, "the Dockerfile has no ENV block"
    return dict(re.findall(r"(\w+)=(\S+)", block.group(1)))


def _env(tmp_path: Path, fake: FakeOpenAIServer, port: int) -> dict[str, str]:
    image = _dockerfile_env()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGROUND_")}
    env.update({k: v for k, v in image.items() if k.startswith("VIDGROUND_")})
    # the image's paths and port, moved under tmp_path (the same names, not the same root)
    env.update({"VIDGROUND_MEDIA_ROOT": str(tmp_path / "videos"),
                "VIDGROUND_DATA_DIR": str(tmp_path / "data"), "VIDGROUND_HOST": "127.0.0.1",
                "VIDGROUND_PORT": str(port), "VIDGROUND_ENABLE_UI": "false",
                "VIDGROUND_BACKEND": "openai", "VIDGROUND_OPENAI_BASE_URL": fake.base_url,
                "VIDGROUND_OPENAI_MODEL": fake.model,
                "PATH": os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]]),
                "PYTHONPATH": str(ROOT / "src")})
    return env


def test_the_entry_script_serves_by_default(tmp_path: Path, fake_model: FakeOpenAIServer
                                            ) -> None:
    assert shutil.which("vidground", path=str(Path(sys.executable).parent)), \
        "the vidground console script is not installed next to this Python"
    (tmp_path / "videos").mkdir()
    port = free_port()
    proc = subprocess.Popen(["sh", str(ENTRYPOINT)], env=_env(tmp_path, fake_model, port),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        def healthy() -> dict | None:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                r = requests.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2)
            except requests.ConnectionError:
                return None
            return r.json() if r.status_code == 200 else None

        health = wait_for(healthy, 60, 0.2)
        assert health["backend"] == "openai" and health["status"] == "ok"
        assert (tmp_path / "data" / "jobs.sqlite3").exists()  # the data dir from VIDGROUND_*
    finally:
        proc.terminate()
        proc.wait(20)


def test_the_entry_script_passes_commands_to_vidground(tmp_path: Path,
                                                       fake_model: FakeOpenAIServer) -> None:
    env = _env(tmp_path, fake_model, free_port())
    for args in (["worker", "--help"], ["vidground", "worker", "--help"]):
        out = subprocess.run(["sh", str(ENTRYPOINT), *args], env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "Run queued jobs from the job store" in out.stdout
    flags = subprocess.run(["sh", str(ENTRYPOINT), "--help"], env=env, capture_output=True,
                           text=True, timeout=60)
    assert flags.returncode == 0 and "Serve the web page and the REST API" in flags.stdout


def test_compose_and_dockerfile_share_one_media_root_data_dir_and_job_store() -> None:
    image = _dockerfile_env()
    assert image["VIDGROUND_MEDIA_ROOT"] == "/app/videos"
    assert image["VIDGROUND_DATA_DIR"] == "/app/data" and image["VIDGROUND_HOST"] == "0.0.0.0"
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "vllm", "vidground", "worker"} <= set(services)
    front, worker = services["vidground"], services["worker"]
    assert worker["command"] == ["worker"] and front["ports"] == ["7860:7860"]
    for svc in (front, worker):
        targets = {v.split(":")[1] for v in svc["volumes"]}
        assert {image["VIDGROUND_MEDIA_ROOT"], image["VIDGROUND_DATA_DIR"]} <= targets
        assert svc["environment"]["VIDGROUND_JOB_STORE"].startswith("postgresql://")
        assert svc["environment"]["VIDGROUND_OPENAI_BASE_URL"].startswith("http://vllm:")
    assert front["volumes"] == worker["volumes"]
    assert front["environment"]["VIDGROUND_JOB_STORE"] == worker["environment"][
        "VIDGROUND_JOB_STORE"]
    assert front["environment"]["VIDGROUND_RUN_JOBS"] == "false"
