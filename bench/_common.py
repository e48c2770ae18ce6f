"""Shared plumbing of the benchmark scripts (not a benchmark itself).

Each benchmark creates its own PostgreSQL database ``bench_<name>_<pid>``, migrates it,
runs, and drops it (``--keep`` leaves it). Django is configured for that database
*before* ``django.setup()``, so a benchmark runs once per process: ``bench/run.py``
starts each one in a child process.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
GUNICORN = str(ROOT / ".venv" / "bin" / "gunicorn")
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
SECRET = "bench-secret-key-not-for-production-0123456789"
LOG_DIR = ROOT / "var" / "bench"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------- machine

def loadavg() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def machine() -> dict:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kb / 2**20, 1), "load": loadavg(),
            "python": platform.python_version()}


def max_rss_mib(who: int | None = None) -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF if who is None else who)
    return usage.ru_maxrss / 1024  # Linux: KiB


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def percentile(sorted_xs: list[float], p: float) -> float:
    if not sorted_xs:
        return float("nan")
    k = min(len(sorted_xs) - 1, max(0, round(p / 100 * (len(sorted_xs) - 1))))
    return sorted_xs[k]


# --------------------------------------------------------------------------- database

def _admin_execute(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG_URL}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def setup_django(name: str, *, broker: bool = False, migrate: bool = True) -> str:
    """Create database ``bench_<name>_<pid>``, point Django at it and migrate. Returns the URL."""
    db = f"bench_{name}_{os.getpid()}"
    _admin_execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    _admin_execute(f'CREATE DATABASE "{db}"')
    url = f"{PG_URL}/{db}"
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["DJANGO_SECRET_KEY"] = SECRET
    os.environ["DJANGO_DEBUG"] = "false"
    os.environ["DJANGO_ALLOWED_HOSTS"] = "127.0.0.1,localhost"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # per-tenant API rate limits (config/throttling.py) would cap a load test at 100 requests/s
    os.environ.setdefault("FLEETWATCH_API_RATE", "10000000/min")
    os.environ.setdefault("FLEETWATCH_INGEST_RATE", "10000000/min")
    if broker:
        os.environ["CELERY_BROKER_URL"] = REDIS_URL
        os.environ["CELERY_RESULT_BACKEND"] = REDIS_URL
    else:
        os.environ.pop("CELERY_BROKER_URL", None)
        os.environ.pop("CELERY_RESULT_BACKEND", None)
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        try:
            call_command("migrate", verbosity=0)
        except BaseException:
            drop_database(url)
            raise
    return url


def drop_database(url: str) -> None:
    from django.db import connections

    connections.close_all()
    db = url.rsplit("/", 1)[1]
    _admin_execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def make_tenant(slug: str = "bench", *, hot_days: int = 30):
    """A tenant on a plan with no hard quota and a long hot retention."""
    from tenants.models import Plan, Tenant

    plan, _ = Plan.objects.get_or_create(
        slug="bench", defaults={"name": "Bench", "hot_retention_days": hot_days, "cold_retention_days": 3650,
                                "included_points_per_month": 10**12, "included_active_series": 10**7})
    return Tenant.objects.create(slug=slug, name=slug, plan=plan)


def ensure_days(first_ts_s: int, last_ts_s: int) -> None:
    """Daily partitions of the hot table covering [first, last] (epoch seconds)."""
    from datetime import UTC, datetime

    from analytics.store.partitions import ensure_partitions

    first = datetime.fromtimestamp(first_ts_s, UTC)
    days = (last_ts_s // 86400) - (first_ts_s // 86400)
    ensure_partitions(days_ahead=int(days), days_behind=0, now=first)


# --------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """gunicorn config.wsgi with N workers on loopback, own process group, logs to var/bench/."""

    def __init__(self, workers: int = 2, port: int | None = None, extra_env: dict | None = None, threads: int = 1):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log = LOG_DIR / f"gunicorn-{self.port}.log"
        env = {**os.environ, **(extra_env or {})}
        cmd = [GUNICORN, "config.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{self.port}", "--timeout", "300",
               "--keep-alive", "75"]
        if threads > 1:
            cmd += ["--threads", str(threads)]
        self.process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        import http.client

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.log.read_text()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/api/v1/rankings")
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer in time")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


class Worker:
    """A real Celery worker subprocess (prefork, given concurrency), as tests/integration/processes.py."""

    def __init__(self, concurrency: int = 2, extra_env: dict | None = None):
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.name = f"bench-{os.getpid()}"
        self.log = LOG_DIR / f"worker-{os.getpid()}.log"
        cmd = [PYTHON, "-m", "celery", "-A", "config", "worker", "--loglevel", "WARNING", "--concurrency",
               str(concurrency), "--hostname", f"{self.name}@%h", "--without-gossip", "--without-mingle",
               "--pool", "prefork"]
        self.process = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(extra_env or {})},
                                        stdout=self.log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, app, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log.read_text()[-2000:]}")
            replies = app.control.ping(destination=[f"{self.name}@{socket.gethostname()}"], timeout=0.5) or []
            if replies:
                return
        raise RuntimeError("worker did not answer a ping in time")

    def children_max_rss_mib(self) -> float:
        """Peak RSS (VmHWM) of the worker's pool processes and main process."""
        peak = 0.0
        try:
            pids = [self.process.pid] + [int(p) for p in subprocess.run(
                ["pgrep", "-g", str(self.process.pid)], capture_output=True, text=True, check=False).stdout.split()]
        except OSError:
            pids = [self.process.pid]
        for pid in set(pids):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM"):
                        peak = max(peak, int(line.split()[1]) / 1024)
            except OSError:
                continue
        return peak

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


@contextmanager
def stage(timings: dict, name: str):
    t0 = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0


def emit(result: dict, json_out: str | None) -> dict:
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=2, default=str))
    return result
