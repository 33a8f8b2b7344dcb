"""Start and stop real ``vidground worker`` processes for tests and benchmarks.

    with WorkerProcess(tmp_path / "w1", env={...}, media_root=m, data_dir=d) as w:
        ...
        w.kill()                       # SIGKILL mid-job
        w.recorded("succeeded")        # job ids this worker wrote a result for
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from server_utils import ROOT

READY = "vidground worker ready"


class WorkerProcess:
    def __init__(self, base: Path, *, env: dict[str, str], media_root: Path, data_dir: Path,
                 args: tuple[str, ...] = (), startup_timeout_s: float = 60.0) -> None:
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.env = dict(env)
        self.media_root = media_root
        self.data_dir = data_dir
        self.args = args
        self.startup_timeout_s = startup_timeout_s
        self.log_path = self.base / "worker.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDGROUND_")}
        env.update({"PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1",
                    "PYTHONPATH": os.pathsep.join(
                        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])})
        env.update(self.env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vidground", "worker", "--media-root", str(self.media_root),
             "--data-dir", str(self.data_dir), *self.args],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(self.base))
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if READY in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"worker did not start in {self.startup_timeout_s} s:\n{self.log()}")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def recorded(self, status: str) -> list[str]:
        """Ids of the jobs whose outcome ``status`` this worker wrote (from its log)."""
        return re.findall(rf"job ([0-9a-f]{{24}}) {status} \(attempt", self.log())

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
