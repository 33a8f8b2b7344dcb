"""Start and stop a real ``vidground serve`` process on a free loopback port, for HTTP tests.

    with ServerProcess(tmp_path, env={"VIDGROUND_BACKEND": "openai", ...}) as srv:
        requests.get(srv.url("/api/v1/health"))
        srv.kill()            # SIGKILL, like a crash
        srv.start()           # same data_dir and port settings, fresh process

The server's stdout/stderr go to ``<data_dir>/server-<n>.log`` (shown by :meth:`log`).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]  # the repository (tests/support/..)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """A ``python -m vidground serve`` subprocess with its own media root and data dir."""

    def __init__(self, base: Path, *, env: dict[str, str] | None = None,
                 media_root: Path | None = None, data_dir: Path | None = None,
                 api_key: str | None = None, startup_timeout_s: float = 60.0,
                 log_dir: Path | None = None) -> None:
        self.base = Path(base)
        self.media_root = media_root or self.base / "media"
        self.data_dir = data_dir or self.base / "data"
        self.media_root.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.extra_env = dict(env or {})
        self.api_key = api_key
        self.startup_timeout_s = startup_timeout_s
        #: where ``server-<n>.log`` goes (default the data dir; elsewhere when two servers
        #: share one data dir, or when the data dir is a tiny file system that fills up)
        self.log_dir = Path(log_dir) if log_dir is not None else self.data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def start(self) -> ServerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGROUND_")}
        env.update({"VIDGROUND_ENABLE_UI": "false", "PYTHONUNBUFFERED": "1",
                    "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
        env.update(self.extra_env)
        if self.api_key:
            env["VIDGROUND_API_KEY"] = self.api_key
        # the repository's code first; a PYTHONPATH in ``env`` (a sitecustomize that skews
        # the clock, say) goes before it
        env["PYTHONPATH"] = os.pathsep.join(
            [*filter(None, [self.extra_env.get("PYTHONPATH")]), str(ROOT / "src"),
             *filter(None, [os.environ.get("PYTHONPATH")])])
        self.starts += 1
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._log_path = self.log_dir / f"server-{self.starts}.log"
        log = open(self._log_path, "wb")  # noqa: SIM115 - closed with the process
        cmd = [sys.executable, "-m", "vidground", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--media-root", str(self.media_root),
               "--data-dir", str(self.data_dir)]
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                     cwd=str(self.base))
        log.close()
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                r = httpx.get(self.url("/api/v1/health"), timeout=2.0)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start in {self.startup_timeout_s} s:\n{self.log()}")

    def log(self) -> str:
        if self._log_path is None or not self._log_path.exists():
            return ""
        return self._log_path.read_text(errors="replace")[-8000:]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to clean up, like a crash or OOM kill."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.kill()

    def peak_rss_kb(self) -> int | None:
        """VmHWM of the server process (Linux), in kB."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def openai_env(fake: Any, **extra: str) -> dict[str, str]:
    """Environment that points the server at a FakeOpenAIServer."""
    env = {"VIDGROUND_BACKEND": "openai", "VIDGROUND_OPENAI_BASE_URL": fake.base_url,
           "VIDGROUND_OPENAI_MODEL": fake.model, "VIDGROUND_OPENAI_MAX_RETRIES": "0"}
    env.update(extra)
    return env


def wait_for(predicate: Any, timeout_s: float = 30.0, interval_s: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise TimeoutError("condition not met in time")
