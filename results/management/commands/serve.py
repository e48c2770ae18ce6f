"""Serve the dashboard and API (Django's development server, no reloader) and, on the
embedded default (no broker, so no worker and no beat), run the queued runs and the
schedule's due detections every minute in this process; with ``--simulate``, the demo tenants' simulator sends the new
minute's points every minute too (``analytics.demo.live_tick``)."""

from collections.abc import Callable

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from analytics.demo import live_tick
from results.embedded import EmbeddedScheduler, run_due_detections, run_queued_runs


class Command(BaseCommand):
    help = "Serve; without a broker also run periodic detection here; --simulate keeps the demo's data flowing."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--simulate", action="store_true", help="send the demo tenants' simulated points every minute")

    def handle(self, *args, addrport, simulate, **options):
        jobs: list[Callable[[], object]] = [live_tick] if simulate else []
        if settings.CELERY_TASK_ALWAYS_EAGER:
            jobs += [run_queued_runs, run_due_detections]
        if jobs:
            names = ", ".join(job.__name__ for job in jobs)
            self.stdout.write(f"every minute in this process: {names}")
            EmbeddedScheduler(jobs).start()  # a daemon thread: it ends with the server
        call_command("runserver", addrport, use_reloader=False)
