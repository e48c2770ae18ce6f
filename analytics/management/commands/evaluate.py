"""Score an engine on a labelled data set in NAB layout (see docs/evaluation.md), with
``--simulated`` on simulated fleets (analytics/simulator/evaluation.py), or the root-cause
hints with ``--simulated --rca`` (analytics/simulator/rca.py)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from analytics.core.evaluation.harness import main
from analytics.simulator.evaluation import main as simulated_main
from analytics.simulator.rca import main as rca_main


def _run(args: list[str]) -> int:
    if "--simulated" in args and "--rca" in args:
        return rca_main([a for a in args if a not in ("--simulated", "--rca")])
    if "--simulated" in args:
        return simulated_main([a for a in args if a != "--simulated"])
    return main(args)


class Command(BaseCommand):
    help = ("Evaluate an anomaly engine on NAB-layout data: --data DIR [--engine NAME] [--params JSON] "
            "[--results-dir OUT] [--threshold T]; or on simulated fleets: --simulated [--seeds 101-105] "
            "[--engine NAME] [--params JSON] [--jobs N] [--json]; root-cause hints: --simulated --rca [--seeds 201-210]")

    def add_arguments(self, parser):
        parser.add_argument("args", nargs="*", help="the harness's own arguments (see --help of the harness)")

    def run_from_argv(self, argv):
        # Hand every option to the harness unchanged: one definition of the CLI.
        code = _run(argv[2:])
        if code:
            sys.exit(code)

    def handle(self, *args, **options):  # call_command("evaluate", "--data", DIR, ...)
        code = _run(list(args))
        if code:
            raise CommandError(f"evaluation failed (exit code {code})")
