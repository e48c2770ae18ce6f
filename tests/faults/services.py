"""Private, throw-away PostgreSQL and Redis instances (and the product's own processes on
top of them) for fault injection: the tests stop, kill and restart these, never the
machine's shared services.

PostgreSQL refuses to run as root, so as root every PostgreSQL command runs as the
``postgres`` OS user (``runuser``); its data and socket live in a ``/tmp`` directory that
user owns. Every wait is a polling loop with a deadline.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from tests.polling import wait_for

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path(os.environ.get("FLEETWATCH_PG_BIN", "/usr/lib/postgresql/15/bin"))
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


class PrivatePostgres:
    """initdb + pg_ctl on a free port; ``stop(mode)`` / ``start()`` for the faults.

    synchronous_commit is always on: an ``immediate`` stop is a crash of the server
    processes, and with it off PostgreSQL would rightly lose the last acknowledged
    commits. ``fsync`` (off by default, for speed) only matters if the machine itself
    crashes, which these tests do not do.
    """

    def __init__(self, *, fsync: bool = False, name: str = "pg") -> None:
        self.base = Path(tempfile.mkdtemp(prefix=f"fleetwatch-{name}-"))
        self.base.chmod(0o755)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = free_port()
        self.fsync = fsync
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        result = subprocess.run(_as_postgres(list(command)), check=False, capture_output=True, text=True, timeout=timeout, cwd=self.base)
        if result.returncode:
            raise RuntimeError(f"{command[0]} failed ({result.returncode}): {result.stderr or result.stdout}\n{self.tail()}")
        return result

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log.read_text()[-chars:]
        except (FileNotFoundError, PermissionError):
            return ""

    def start(self, timeout: int = 30) -> None:
        options = (f"-p {self.port} -k {self.base} -c listen_addresses=127.0.0.1 -c max_connections=100"
                   f" -c fsync={'on' if self.fsync else 'off'} -c synchronous_commit=on"
                   " -c shared_buffers=64MB")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", str(timeout),
                  "-o", options, "start", timeout=timeout + 10)
        wait_for(self.ready, timeout, f"PostgreSQL on port {self.port}")

    def stop(self, mode: str = "fast", timeout: int = 30) -> None:
        """``fast`` (roll back and disconnect every client) or ``immediate`` (crash-like)."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", str(timeout), "stop",
                  timeout=timeout + 10)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def ready(self) -> bool:
        return subprocess.run([str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"], check=False).returncode == 0

    def url(self, dbname: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def query(self, sql: str, params: tuple = (), dbname: str = "postgres") -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def create_database(self, name: str) -> str:
        self.query(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        if self.running():
            try:
                self.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.base, ignore_errors=True)


class PrivateRedis:
    """A redis-server with no persistence (a restart loses everything), on a free port."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="fleetwatch-redis-"))
        self.port = free_port()
        self.log = self.base / "redis.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 15) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.base), "--logfile", str(self.log), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_for(self.ping, timeout, f"redis-server on port {self.port}")

    def ping(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"redis-server exited ({self.process.returncode}): {self.log.read_text()[-1000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self, kill: bool = False, timeout: float = 15) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        self.process.wait(timeout=timeout)
        wait_for(lambda: not port_open(self.port), timeout, f"redis port {self.port} to close")

    def restart(self, kill: bool = True) -> None:
        self.stop(kill=kill)
        self.start()

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def destroy(self) -> None:
        self.stop(kill=True)
        shutil.rmtree(self.base, ignore_errors=True)


# The product on top of them: subprocesses with their own environment.

def product_env(database_url: str, broker_url: str | None = None, **extra: object) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")}
    env.update({"DATABASE_URL": database_url, "DJANGO_SETTINGS_MODULE": "config.settings", "PYTHONUNBUFFERED": "1",
                "LOG_LEVEL": "WARNING"})
    if broker_url:
        env["CELERY_BROKER_URL"] = broker_url
    env.update({k: str(v) for k, v in extra.items()})
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 300) -> str:
    result = subprocess.run([PYTHON, "manage.py", *args], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} failed: {result.stderr[-3000:]}")
    return result.stdout


def django_python(env: dict[str, str], code: str, timeout: float = 120) -> str:
    """Run ``code`` in a fresh process with Django set up on ``env``; return its stdout."""
    prelude = "import django; django.setup()\n"
    result = subprocess.run([PYTHON, "-c", prelude + code], check=False, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if result.returncode:
        raise RuntimeError(f"python failed: {result.stderr[-3000:]}")
    return result.stdout


def make_tenant(env: dict[str, str], slug: str, *, interval_minutes: int = 5) -> tuple[int, str]:
    """A plan, a tenant and an API key; returns (tenant id, plain key)."""
    out = django_python(env, f"""
from tenants.models import ApiKey, Plan, Tenant
plan, _ = Plan.objects.get_or_create(slug="faults-{interval_minutes}", defaults=dict(
    name="Faults", hot_retention_days=7, detection_interval_minutes={interval_minutes}))
tenant, _ = Tenant.objects.get_or_create(slug={slug!r}, defaults=dict(name={slug!r}, plan=plan))
print("TENANT", tenant.pk, ApiKey.issue(tenant, "faults")[1])
""")
    line = next(line for line in out.splitlines() if line.startswith("TENANT "))
    _, tenant_id, key = line.split()
    return int(tenant_id), key


class Service:
    """A product process (gunicorn, celery worker or beat) in its own process group."""

    def __init__(self, command: list[str], env: dict[str, str], log_dir: Path, name: str) -> None:
        self.name = f"{name}-{uuid.uuid4().hex[:6]}"
        self.log = Path(log_dir) / f"{self.name}.log"
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log.open("w"),
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self, chars: int = 4000) -> str:
        return self.log.read_text()[-chars:] if self.log.exists() else ""

    def stop(self, timeout: float = 20) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def start_gunicorn(env: dict[str, str], log_dir: Path, *, workers: int = 2, timeout: float = 60) -> tuple[Service, str]:
    port = free_port()
    web = Service([PYTHON, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
                   "--timeout", "60", "--graceful-timeout", "5"], env, log_dir, "gunicorn")
    base = f"http://127.0.0.1:{port}"

    def up():
        if not web.alive():
            raise AssertionError(f"gunicorn exited:\n{web.output()}")
        try:
            with urllib.request.urlopen(base + "/api/schema/", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    wait_for(up, timeout, "gunicorn to answer")
    return web, base


def start_celery(env: dict[str, str], log_dir: Path, kind: str = "worker", *args: str) -> Service:
    command = [PYTHON, "-m", "celery", "-A", "config", kind, "--loglevel", "INFO", *args]
    if kind == "worker":
        command += ["--hostname", f"faults-{uuid.uuid4().hex[:6]}@%h", "--without-gossip", "--without-mingle"]
    return Service(command, {**env, "LOG_LEVEL": "INFO"}, log_dir, kind)


def post_json(base: str, path: str, body: object, key: str, timeout: float = 30) -> tuple[int, dict, dict]:
    """One POST, no retry: (status, JSON body or {"raw": text}, headers)."""
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            status, text, headers = r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        status, text, headers = e.code, e.read().decode("utf-8", "replace"), dict(e.headers)
    try:
        return status, json.loads(text), headers
    except ValueError:
        return status, {"raw": text[:2000]}, headers


def get_json(base: str, path: str, key: str, timeout: float = 30) -> tuple[int, object]:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {key}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, {"raw": e.read().decode("utf-8", "replace")[:2000]}
