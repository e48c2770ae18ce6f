"""Score an engine on a labelled data set in NAB layout (see docs/evaluation.md)."""

import sys

from django.core.management.base import BaseCommand, CommandError

from analytics.core.evaluation.harness import main


class Command(BaseCommand):
    help = "Evaluate an anomaly engine on NAB-layout data: --data DIR [--engine NAME] [--params JSON] [--results-dir OUT] [--threshold T]"

    def add_arguments(self, parser):
        parser.add_argument("args", nargs="*", help="the harness's own arguments (see --help of the harness)")

    def run_from_argv(self, argv):
        # Hand every option to the harness unchanged: one definition of the CLI.
        code = main(argv[2:])
        if code:
            sys.exit(code)

    def handle(self, *args, **options):  # call_command("evaluate", "--data", DIR, ...)
        code = main(list(args))
        if code:
            raise CommandError(f"evaluation failed (exit code {code})")
