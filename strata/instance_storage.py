"""Dagster's Postgres storages (runs, event log, schedules), holding their connections open.

Outside the webserver, dagster-postgres opens a connection for every statement (SQLAlchemy's NullPool), so that
many DagsterInstances in one process never pile connections up. A Strata process has one instance, and the churn
is what costs: a `strata up` landing files opens dozens of connections a second (`pg_stat_database.sessions`
shows them) — the daemon's loops and every event a run writes — each a backend forked, authenticated and
warmed, on the same cores as the runs. Each storage here keeps the pool the webserver gets: one connection held, more
while threads contend; a connection is checked before use, so a restarted server is simply reconnected.

platform/dagster.yaml names these classes; their configuration is dagster-postgres' own.
"""

from typing import Any

from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from dagster_postgres.utils import create_pg_engine, get_token_provider_from_config, pg_url_from_config

# Connections a storage keeps: one, plus this many more while threads of the process contend.
MAX_OVERFLOW = 10
# A connection older than this is replaced (the server may have dropped an idle one).
RECYCLE_SECONDS = 3600


class _HoldsConnections:
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._hold_connections()

    def _hold_connections(self) -> None:
        engine_kwargs: dict[str, Any] = {
            "isolation_level": "AUTOCOMMIT",
            "pool_size": 1,
            "max_overflow": MAX_OVERFLOW,
            "pool_recycle": RECYCLE_SECONDS,
            "pool_pre_ping": True,
        }
        options = self._engine.url.query.get("options")
        if options:
            engine_kwargs["connect_args"] = {"options": options}
        self._engine.dispose()
        self._engine = create_pg_engine(self.postgres_url, self._token_provider, **engine_kwargs)

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )


class PooledRunStorage(_HoldsConnections, PostgresRunStorage):
    """dagster-postgres' storage of the same name, holding its connections."""


class PooledEventLogStorage(_HoldsConnections, PostgresEventLogStorage):
    """dagster-postgres' storage of the same name, holding its connections."""


class PooledScheduleStorage(_HoldsConnections, PostgresScheduleStorage):
    """dagster-postgres' storage of the same name, holding its connections."""
