import pytest
from django.db import connection

from config.celery import app
from tests.integration.processes import CeleryProcess


@pytest.fixture
def real_celery(transactional_db, tmp_path):
    """Tasks go through Redis to real worker processes that the test starts."""
    if connection.vendor != "postgresql" or not app.conf.broker_url:
        pytest.fail("integration tests need DATABASE_URL=postgres://... and CELERY_BROKER_URL=redis://...")
    app.control.purge()
    started: list[CeleryProcess] = []

    def start(kind: str = "worker", *args: str, **env: str) -> CeleryProcess:
        process = CeleryProcess(tmp_path, kind, *args, env={k: str(v) for k, v in env.items()})
        started.append(process)
        if kind == "worker":
            process.wait_ready(app)
        return process

    yield start
    for process in started:
        process.stop()
    app.control.purge()
