"""Copy the meter events of Django's database to ClickHouse, verified a day at a time:
`manage.py meter_events_copy --to clickhouse [--since 2026-01-01] [--until 2026-01-31]`.

Run it as often as needed (README, "ClickHouse event store": the cut-over): each run copies
only what ClickHouse lacks, then compares every (meter, customer, day)'s totals on both sides.
It exits with an error while any day differs; switch METER_EVENT_STORE only after a clean run.
"""

from __future__ import annotations

import datetime as dt
import time

from django.core.management.base import BaseCommand, CommandError

from metering.store.clickhouse.copy import advance_claim_ids, copy_days, days_with_events
from metering.store.clickhouse.store import connect


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise CommandError(f"Not a day (YYYY-MM-DD): {text!r}") from error


class Command(BaseCommand):
    help = "Copy meter events to ClickHouse, resumably, verifying each day's totals."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--to", required=True, choices=["clickhouse"], help="The target store.")
        parser.add_argument("--since", type=_day, help="First UTC day to copy (default: oldest).")
        parser.add_argument("--until", type=_day, help="Last UTC day to copy (default: newest).")

    def handle(self, *args, **options) -> None:
        since, until = options["since"], options["until"]
        if since and until and since > until:
            raise CommandError(f"--since {since} is after --until {until}.")
        transport, schema = connect()
        days = days_with_events(since, until)
        if not days:
            self.stdout.write("No meter events to copy.")
            return
        self.stdout.write(f"Copying {days[0]} to {days[-1]} ({len(days)} days) to ClickHouse.")
        started = time.monotonic()

        def progress(number, report) -> None:
            state = "verified" if report.verified else f"{len(report.mismatched)} pairs DIFFER"
            self.stdout.write(
                f"[{number}/{len(days)}] {report.day}: {report.copied:,} events and "
                f"{report.cancellations:,} cancellations copied; {report.pairs:,} "
                f"(meter, customer) totals {state} ({time.monotonic() - started:.0f} s)"
            )

        reports = copy_days(transport, schema, days, progress)
        next_id = advance_claim_ids()
        copied = sum(report.copied for report in reports)
        differ = [report for report in reports if not report.verified]
        if differ:
            for report in differ:
                self.stderr.write(f"{report.day}: (meter id, customer id) {report.mismatched[:10]}")
            raise CommandError(
                f"{len(differ)} days still differ: run the command again (events may be arriving "
                "for them); do not switch METER_EVENT_STORE yet."
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"{copied:,} events copied; all {len(days)} days verified equal on both sides. "
                f"New events will be numbered after {next_id}."
            )
        )
