"""Real worker and beat processes for the integration tests, on the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from django.db import connection

from tests.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The URL of the database the tests are using (pytest-django's test database)."""
    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"



class CeleryProcess:
    """A celery worker or beat in its own process group, logging to a file."""

    def __init__(self, tmp_path: Path, kind: str, *args: str, env: dict[str, str] | None = None):
        self.name = f"{kind}-{uuid.uuid4().hex[:8]}"
        self.log = tmp_path / f"{self.name}.log"
        command = [sys.executable, "-m", "celery", "-A", "config", kind, "--loglevel", "INFO", *args]
        if kind == "worker":
            command += ["--hostname", f"{self.name}@%h", "--without-gossip", "--without-mingle", "--pool", "prefork"]
        full_env = {**os.environ, "DATABASE_URL": database_url(), **(env or {})}
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=full_env, stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, app, timeout: float = 60) -> None:
        """A worker is ready when it answers a ping by its own name."""
        def answered():
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited early:\n{self.output()}")
            replies = app.control.ping(destination=[self.hostname()], timeout=0.5) or []
            return any(self.name in name for reply in replies for name in reply)

        wait_for(answered, timeout, f"{self.name} to answer a ping")

    def hostname(self) -> str:
        import socket

        return f"{self.name}@{socket.gethostname()}"

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def kill(self) -> None:
        """SIGKILL the whole process group (main process and pool children)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
