"""Light checks of the container files that CI can run without a container engine (the real
build and run is scripts/container-smoke.sh, minutes long; issue 26): the Dockerfile's base
image argument, non-root user and health check; the entry script's behaviour with a fake
``vidground`` on PATH (it execs, so SIGTERM reaches vidground itself); compose.yaml's services;
the smoke script's syntax."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text()
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_dockerfile_takes_its_base_image_as_an_argument() -> None:
    ins = _instructions()
    first_from = next(i for i, (w, _) in enumerate(ins) if w == "FROM")
    args_before = [a for w, a in ins[:first_from] if w == "ARG"]
    assert "BASE_IMAGE=python:3.11-slim" in args_before  # the users' default
    assert ins[first_from][1] == "${BASE_IMAGE}"
    assert sum(1 for w, _ in ins if w == "FROM") == 1
    assert any(w == "ARG" and a.startswith("VARIANT=") for w, a in ins)
    assert any(w == "ARG" and a.startswith("EXTRAS=") for w, a in ins)
    assert re.search(r"remote\)\s*;;", DOCKERFILE), "the remote variant installs no torch"


def test_the_image_runs_as_a_non_root_user_with_a_health_check() -> None:
    ins = _instructions()
    users = [a for w, a in ins if w == "USER"]
    assert users and users[-1] not in ("root", "0"), users
    assert any(w == "RUN" and "useradd" in a and users[-1] in a for w, a in ins)
    health = [a for w, a in ins if w == "HEALTHCHECK"]
    assert len(health) == 1 and "healthcheck.py" in health[0]
    assert ("ENTRYPOINT", '["vidground-entrypoint"]') in ins
    assert ("VOLUME", '["/app/data"]') in ins
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


def _fake_vidground(tmp_path: Path) -> dict[str, str]:
    """A ``vidground`` that records its pid and arguments, and exits 0 on SIGTERM."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "vidground"
    fake.write_text('#!/bin/sh\necho "$$ $*" > "$RECORD"\n'
                    'trap \'echo term >> "$RECORD"; exit 0\' TERM\n'
                    'if [ -n "${WAIT:-}" ]; then while :; do sleep 0.1; done; fi\n')
    fake.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "RECORD": str(tmp_path / "record")}


def test_the_entry_script_maps_arguments_onto_vidground(tmp_path: Path) -> None:
    env = {**os.environ, **_fake_vidground(tmp_path)}
    cases = {(): "serve", ("--port", "8080"): "serve --port 8080",
             ("worker", "--workers", "2"): "worker --workers 2",
             ("vidground", "doctor"): "doctor", ("batch", "m.jsonl"): "batch m.jsonl"}
    for args, expected in cases.items():
        done = subprocess.run(["sh", str(ENTRYPOINT), *args], env=env, timeout=30,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "record").read_text().split(" ", 1)[1].strip() == expected


def test_the_entry_script_execs_so_sigterm_reaches_vidground(tmp_path: Path) -> None:
    env = {**os.environ, **_fake_vidground(tmp_path), "WAIT": "1"}
    proc = subprocess.Popen(["sh", str(ENTRYPOINT)], env=env)
    record = tmp_path / "record"
    try:
        deadline = time.monotonic() + 30
        while not (record.exists() and record.read_text().strip()):
            assert time.monotonic() < deadline, "the fake vidground never started"
            time.sleep(0.05)
        assert int(record.read_text().split()[0]) == proc.pid  # exec: no shell in between
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert record.read_text().split()[-1] == "term"
    finally:
        if proc.poll() is None:
            proc.kill()


def test_compose_names_its_services_and_builds_the_remote_image() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "vllm", "vidground", "worker"} <= set(services)
    assert services["worker"]["command"] == ["worker"]
    assert services["worker"]["deploy"]["replicas"] == 2
    for name in ("vidground", "worker"):
        assert services[name]["build"]["args"]["VARIANT"] == "remote"
    assert services["postgres"]["healthcheck"]["test"][0] == "CMD-SHELL"
    assert {"postgres-data", "vidground-data"} <= set(compose["volumes"])


def test_the_smoke_script_is_valid_bash() -> None:
    script = ROOT / "scripts" / "container-smoke.sh"
    assert os.access(script, os.X_OK)
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    text = script.read_text()
    for needle in ("debootstrap --variant=minbase", "--runtime runc",
                   "--cgroup-manager=cgroupfs", "BASE_IMAGE=", "id -u", "SIGTERM"):
        assert needle in text, needle
