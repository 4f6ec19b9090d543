import time

from django.core.management.base import BaseCommand, CommandError

from invoicing.services.billing_run import billing_run


class Command(BaseCommand):
    help = (
        "Run the billing cycle without a broker: close every ended period and finalize every "
        "draft past its grace period (the same services the Celery beat tasks call)."
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
            summary = billing_run()
            self.stdout.write(
                f"Closed {summary.periods_closed} period(s), finalized "
                f"{summary.invoices_finalized} invoice(s), {len(summary.failures)} failure(s)."
            )
            for failure in summary.failures:
                self.stderr.write(f"  failed: {failure}")
            if loop is None:
                if summary.failures:
                    raise CommandError(f"{len(summary.failures)} step(s) failed; see above.")
                return
            time.sleep(loop)
