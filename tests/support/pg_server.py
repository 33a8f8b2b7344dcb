"""A real, throwaway PostgreSQL server for tests: ``initdb`` in a temp dir, ``postgres`` on a free
loopback port, stopped (and its files removed) after.

    with PostgresServer() as pg:
        url = pg.new_database("jobs")      # postgresql://postgres@127.0.0.1:<port>/jobs

Uses Debian's ``postgresql`` package (``/usr/lib/postgresql/<version>/bin``; scripts/test.sh
installs it when missing). PostgreSQL refuses to run as root, so as root the server runs as the
``postgres`` user. Durability settings are off (``fsync=off``): the tests need the engine's
locking and transactions, not crash safety of the test database.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from server_utils import free_port


def find_bin_dir() -> Path | None:
    """The newest installed PostgreSQL server's ``bin`` directory, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if
                   Path(p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    def __init__(self, startup_timeout_s: float = 60.0) -> None:
        self.bin_dir = find_bin_dir()
        if self.bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
        self.startup_timeout_s = startup_timeout_s
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="vidground-pg-"))
        self.data = self.base / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self.user: str | None = None
        if os.geteuid() == 0:
            self.user = "postgres"
            entry = pwd.getpwnam(self.user)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self._n = 0

    def _run(self, *args: str) -> None:
        subprocess.run([str(self.bin_dir / args[0]), *args[1:]], check=True, user=self.user,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=self.base,
                       timeout=120)

    @property
    def log_path(self) -> Path:
        return self.base / "postgres.log"

    def start(self) -> PostgresServer:
        import psycopg

        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync", "--no-instructions")
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [str(self.bin_dir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.base), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=200"],
            user=self.user, stdout=log, stderr=subprocess.STDOUT, cwd=self.base)
        log.close()
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{self.log()}")
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return self
            except psycopg.OperationalError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"postgres did not start in {self.startup_timeout_s} s:\n{self.log()}")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "db") -> str:
        """A fresh empty database; returns its URL."""
        import psycopg

        self._n += 1
        name = f"{prefix}_{self._n}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # "fast" shutdown: disconnects clients
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
