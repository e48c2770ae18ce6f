"""Backtests on Celery: the orchestrator sends the parts not done; the part that commits
last sends the finish. Every step is safe to deliver twice (``runner``)."""

from __future__ import annotations

from celery import shared_task
from django.db import transaction

from results.backtests import runner
from results.models import Backtest
from results.tasks import TASK_OPTIONS, TenantTask


@shared_task(**TASK_OPTIONS)
def run_backtest(tenant_id: int, backtest_id: int) -> None:
    pending = runner.pending_parts(tenant_id, backtest_id)
    if pending is None:
        return  # finished already
    if not pending:
        finish_backtest.delay(tenant_id=tenant_id, backtest_id=backtest_id)
    for first in pending:
        backtest_part.apply_async((tenant_id, backtest_id, first), link_error=fail_backtest.si(tenant_id, backtest_id))


@shared_task(**TASK_OPTIONS)
def backtest_part(tenant_id: int, backtest_id: int, first_series_id: int) -> None:
    if runner.run_part(tenant_id, backtest_id, first_series_id):
        finish_backtest.delay(tenant_id=tenant_id, backtest_id=backtest_id)


@shared_task(**TASK_OPTIONS)
def finish_backtest(tenant_id: int, backtest_id: int) -> None:
    runner.finish(tenant_id, backtest_id)


@shared_task(base=TenantTask)
def fail_backtest(tenant_id: int, backtest_id: int, *args) -> None:
    error = next((str(a) for a in args if isinstance(a, BaseException)), "a backtest part failed")
    runner.fail(tenant_id, backtest_id, error)


def request_backtest(tenant_id: int, **fields) -> Backtest:
    """Create the backtest and enqueue it once the rows are committed."""
    with transaction.atomic():
        backtest = runner.create(tenant_id, **fields)
        transaction.on_commit(lambda: run_backtest.delay(tenant_id=tenant_id, backtest_id=backtest.pk))
    return backtest
