import logging

from django.apps import AppConfig
from django.db.models.signals import post_migrate

logger = logging.getLogger(__name__)


def _ensure_partitions(sender, using, **kwargs) -> None:
    """Create the month partitions after `migrate`. A partition that can't be created must not
    fail `migrate` (it would block every deploy): it is logged, and the daily maintenance task
    tries again and reports it."""
    from django.db import connections

    from metering.partitions import ensure_meter_event_partitions

    try:
        report = ensure_meter_event_partitions(connection=connections[using])
    except Exception:
        logger.exception("Meter event partition maintenance failed after migrate")
        return
    for failure in report.failures:
        logger.error("Meter event partition maintenance after migrate: %s", failure)


class MeteringConfig(AppConfig):
    name = "metering"

    def ready(self) -> None:
        post_migrate.connect(_ensure_partitions, sender=self)
        # Events carry objects as the API serializes them (billing_site/events/objects.py).
        from billing_site.events.objects import register_object_serializer
        from metering.api import serialize_meter
        from metering.models import Meter

        register_object_serializer(Meter, serialize_meter)
        # A price's meter is a plain id in Stripe's shape; other objects may still name one.
        from billing_site.api.expand import register_expandable

        register_expandable(
            "billing.meter",
            resource="meters",
            load=Meter.objects.all,
            serialize=serialize_meter,
        )
