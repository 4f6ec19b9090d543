"""Create or update the ClickHouse event store's tables: `manage.py clickhouse_migrate`.

Idempotent (run it on every deploy, like `migrate`). With `--print`, only shows the DDL for the
configured database and cluster, without connecting.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand

from metering.store.clickhouse.schema import migrate
from metering.store.clickhouse.store import configured_schema, connect


class Command(BaseCommand):
    help = "Create or update the ClickHouse event store's tables (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--print", action="store_true", help="Print the DDL without connecting."
        )

    def handle(self, *args, **options) -> None:
        if options["print"]:
            for statement in configured_schema().statements():
                self.stdout.write(f"{statement};\n")
            return
        transport, schema = connect()
        for statement in migrate(transport, schema):
            self.stdout.write(statement.splitlines()[0])
        where = f"cluster {schema.cluster}" if schema.cluster else "one server"
        self.stdout.write(
            self.style.SUCCESS(f"ClickHouse tables ready in {schema.database} ({where}).")
        )
