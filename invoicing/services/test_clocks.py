"""Test clocks: simulate time for the customers attached to a clock."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Min

from billing_site import clock
from billing_site.errors import BillingError
from billing_site.events.recording import record_event, snapshot
from billing_site.limits import check_time
from credits.models import CreditGrant
from invoicing.errors import ErrorCode as InvoicingErrorCode
from invoicing.models import Invoice, Subscription, TestClock
from invoicing.services.billing_run import billing_run
from invoicing.services.notices import invoice_notices_send, next_notice_due

MAX_ADVANCE = dt.timedelta(days=2 * 366)


@transaction.atomic
def test_clock_create(*, frozen_time: dt.datetime, name: str = "") -> TestClock:
    check_time(frozen_time, param="frozen_time")
    test_clock = TestClock.objects.create(
        name=(name or "").strip()[:300], frozen_time=frozen_time, created_at=clock.now()
    )
    record_event("test_helpers.test_clock.created", test_clock)
    return test_clock


@transaction.atomic
def test_clock_start_advance(*, test_clock: TestClock, frozen_time: dt.datetime) -> TestClock:
    """Check and mark the clock `advancing`; `test_clock_advance` then does the work."""
    test_clock = TestClock.objects.select_for_update().get(pk=test_clock.pk)
    if test_clock.deleted_at is not None:
        raise BillingError(f"Test clock {test_clock.public_id} has been deleted.")
    now = clock.now()
    if test_clock.status == TestClock.Status.ADVANCING and not test_clock.advance_is_stale(now):
        raise BillingError(
            f"Test clock {test_clock.public_id} is already advancing; wait until it is ready.",
            code=InvoicingErrorCode.TEST_CLOCK_ADVANCING,
        )
    check_time(frozen_time, param="frozen_time")
    if frozen_time <= test_clock.frozen_time:
        raise BillingError(
            "A test clock only moves forward: frozen_time must be after the clock's current "
            f"time ({test_clock.frozen_time:%Y-%m-%d %H:%M:%S} UTC).",
            param="frozen_time",
        )
    if frozen_time - test_clock.frozen_time > MAX_ADVANCE:
        raise BillingError(
            "A test clock can move at most two years at a time.", param="frozen_time"
        )
    # A stale advance (its worker died) is taken over: every step it runs is idempotent, and
    # the steps it finished moved `frozen_time` forward, so this one resumes where it stopped.
    test_clock.status = TestClock.Status.ADVANCING
    test_clock.advance_started_at = now
    test_clock.save(update_fields=["status", "advance_started_at"])
    record_event("test_helpers.test_clock.advancing", test_clock)
    return test_clock


def _next_due(test_clock: TestClock, target: dt.datetime) -> dt.datetime | None:
    period_end = Subscription.objects.filter(
        customer__test_clock=test_clock, status=Subscription.Status.ACTIVE
    ).aggregate(moment=Min("current_period_end"))["moment"]
    finalize = Invoice.objects.filter(
        customer__test_clock=test_clock, status=Invoice.Status.DRAFT, finalize_after__isnull=False
    ).aggregate(moment=Min("finalize_after"))["moment"]
    expiry = CreditGrant.objects.filter(
        customer__test_clock=test_clock,
        expires_at__isnull=False,
        expired_at__isnull=True,
        voided_at__isnull=True,
    ).aggregate(moment=Min("expires_at"))["moment"]
    # Notices (invoice.upcoming, invoice.overdue) are steps too, so a long jump still sends them.
    notice = next_notice_due(test_clock=test_clock, after=test_clock.frozen_time)
    due = [
        moment
        for moment in (period_end, finalize, expiry, notice)
        if moment is not None and moment <= target
    ]
    return min(due) if due else None


def test_clock_advance(*, test_clock: TestClock, frozen_time: dt.datetime) -> TestClock:
    """Run, in time order, every billing step that falls due up to `frozen_time`."""
    try:
        while (moment := _next_due(test_clock, frozen_time)) is not None:
            TestClock.objects.filter(pk=test_clock.pk).update(frozen_time=moment)
            test_clock.frozen_time = moment
            summary = billing_run(at=moment, test_clock=test_clock)
            if summary.failures:
                raise RuntimeError("; ".join(summary.failures))
            invoice_notices_send(at=moment, test_clock=test_clock)
    except Exception:
        with transaction.atomic():
            TestClock.objects.filter(pk=test_clock.pk).update(
                status=TestClock.Status.INTERNAL_FAILURE
            )
            record_event("test_helpers.test_clock.internal_failure", test_clock)
        raise
    with transaction.atomic():
        TestClock.objects.filter(pk=test_clock.pk).update(
            frozen_time=frozen_time, status=TestClock.Status.READY
        )
        record_event("test_helpers.test_clock.ready", test_clock)
    test_clock.refresh_from_db()
    return test_clock


@transaction.atomic
def test_clock_delete(*, test_clock: TestClock) -> None:
    before = snapshot(test_clock)
    test_clock.deleted_at = clock.now()
    test_clock.save(update_fields=["deleted_at"])
    record_event("test_helpers.test_clock.deleted", data_object=before)
