import time

from django.core.management.base import BaseCommand, CommandError

from billing_site.jobs import run_scheduled_jobs


class Command(BaseCommand):
    help = (
        "Run the due work without a broker: every job in CELERY_BEAT_SCHEDULE (close ended "
        "periods, finalize drafts past their grace period, expire credit grants, keep event "
        "partitions ahead, purge expired records), the same tasks beat schedules."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--loop",
            type=int,
            metavar="SECONDS",
            help="Keep running, every SECONDS seconds (Ctrl-C to stop).",
        )

    def handle(self, *args, loop: int | None, **options):
        if loop is not None and loop < 1:
            raise CommandError("--loop needs a number of seconds of at least 1.")
        while True:
            failures = []
            for result in run_scheduled_jobs():
                self.stdout.write(self._describe(result))
                for failure in result.failures:
                    failures.append(failure)
                    self.stderr.write(f"  failed ({result.name}): {failure}")
            if loop is None:
                if failures:
                    raise CommandError(f"{len(failures)} step(s) failed; see above.")
                return
            time.sleep(loop)

    @staticmethod
    def _describe(result) -> str:
        if result.error:
            return f"{result.name}: failed."
        summary = result.summary
        if "periods_closed" in summary:
            return (
                f"Closed {summary['periods_closed']} period(s), finalized "
                f"{summary['invoices_finalized']} invoice(s), {len(summary['failures'])} "
                "failure(s)."
            )
        counts = ", ".join(
            f"{key.replace('_', ' ')} {value}"
            for key, value in summary.items()
            if key != "failures"
        )
        return f"{result.name}: {counts or 'done'}."
