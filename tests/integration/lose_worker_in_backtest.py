"""Loaded into a test's worker (``-I tests.integration.lose_worker_in_backtest``): SIGKILL
the worker's whole process group as a backtest part starts, before it commits, once per
marker file (``FLEETWATCH_TEST_LOSE_WORKER_MARKER``), so the replacement worker lives."""

import os
import signal

from celery.signals import task_prerun


@task_prerun.connect
def lose_the_worker(sender=None, task_id=None, **kwargs):
    marker = os.environ.get("FLEETWATCH_TEST_LOSE_WORKER_MARKER")
    if not marker or sender is None or sender.name != "results.backtests.tasks.backtest_part":
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, str(task_id).encode())
    os.close(fd)
    os.killpg(os.getpgid(0), signal.SIGKILL)
