"""Loaded into a test's worker (``celery worker -I tests.integration.lose_worker_after_commit``):
SIGKILL the worker's whole process group right after a detection batch has committed
and before its message is acknowledged, the moment a lost worker costs the most. Once
per marker file (``FLEETWATCH_TEST_LOSE_WORKER_MARKER``; it records the task id), so the
replacement worker, loading the same module, lives."""

import os
import signal

from celery.signals import task_postrun


@task_postrun.connect
def lose_the_worker(sender=None, task_id=None, state=None, **kwargs):
    marker = os.environ.get("FLEETWATCH_TEST_LOSE_WORKER_MARKER")
    if not marker or sender is None or sender.name != "results.tasks.detect_batch" or state != "SUCCESS":
        return
    try:
        fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return
    os.write(fd, str(task_id).encode())
    os.close(fd)
    os.killpg(os.getpgid(0), signal.SIGKILL)
