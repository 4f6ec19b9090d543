"""`/v1/test_helpers/test_clocks`: simulated time for testing billing."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from billing_site.api.base import ApiView, Listing, get_by_public_id
from billing_site.api.params import Params
from billing_site.clock import to_unix
from invoicing import services, tasks
from invoicing.api.serializers import serialize_test_clock
from invoicing.models import TestClock


def live_test_clocks() -> QuerySet[TestClock]:
    return TestClock.objects.filter(deleted_at__isnull=True)


class TestClockCollection(ApiView):
    resource = "test_clocks"
    listing = Listing(
        "/v1/test_helpers/test_clocks", "test_helpers.test_clock", serialize_test_clock
    )

    def get(self, request, params: Params) -> dict[str, Any]:
        return self.listing.page(live_test_clocks(), params)

    def post(self, request, params: Params) -> dict[str, Any]:
        test_clock = services.test_clock_create(
            frozen_time=params.timestamp("frozen_time", required=True),
            name=params.string("name", max_length=300) or "",
        )
        return serialize_test_clock(test_clock)


class TestClockDetail(ApiView):
    resource = "test_clocks"

    def get(self, request, params: Params, public_id: str) -> dict[str, Any]:
        test_clock = get_by_public_id(TestClock.objects.all(), public_id, "test_helpers.test_clock")
        return serialize_test_clock(test_clock)

    def delete(self, request, params: Params, public_id: str) -> dict[str, Any]:
        test_clock = get_by_public_id(live_test_clocks(), public_id, "test_helpers.test_clock")
        services.test_clock_delete(test_clock=test_clock)
        return serialize_test_clock(test_clock)


class TestClockAdvance(ApiView):
    resource = "test_clocks"
    http_method_names = ["post"]

    def post(self, request, params: Params, public_id: str) -> dict[str, Any]:
        test_clock = get_by_public_id(live_test_clocks(), public_id, "test_helpers.test_clock")
        frozen_time = params.timestamp("frozen_time", required=True)
        test_clock = services.test_clock_start_advance(
            test_clock=test_clock, frozen_time=frozen_time
        )
        frozen = to_unix(frozen_time)
        body = serialize_test_clock(test_clock)
        # The advance runs in a worker: it may close many periods, more than a request should.
        transaction.on_commit(
            lambda: tasks.test_clock_advance_task.delay(test_clock.pk, frozen)  # type: ignore[attr-defined]
        )
        return body
