from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _ensure_partitions(sender, using, **kwargs) -> None:
    from django.db import connections

    from metering.partitions import ensure_meter_event_partitions

    ensure_meter_event_partitions(connection=connections[using])


class MeteringConfig(AppConfig):
    name = "metering"

    def ready(self) -> None:
        post_migrate.connect(_ensure_partitions, sender=self)
