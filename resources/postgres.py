"""The warehouse Postgres, through psycopg 3."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

import dagster as dg
import psycopg
from psycopg import sql


@contextmanager
def serialized_ddl(conn: psycopg.Connection, lock: str) -> Iterator[psycopg.Connection]:
    """A transaction holding the advisory lock named `lock`, for idempotent DDL: concurrent runs racing on
    CREATE … IF NOT EXISTS fail on Postgres's catalog, so those sharing a lock run their DDL one at a time."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (lock,))
        yield conn


class PostgresResource(dg.ConfigurableResource):
    """Warehouse connections. `url` may hold a password: it comes from the environment and is never logged."""

    url: str
    application_name: str = "strata"

    @contextmanager
    def connect(self, *, autocommit: bool = False) -> Iterator[psycopg.Connection]:
        with psycopg.connect(self.url, autocommit=autocommit, application_name=self.application_name) as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        """A connection inside one transaction: committed when the block ends, rolled back if it raises."""
        with self.connect() as conn, conn.transaction():
            yield conn

    @staticmethod
    def copy_rows(
        conn: psycopg.Connection,
        table: sql.Composable,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]],
        *,
        types: Sequence[str] | None = None,
    ) -> int:
        """Stream `rows` into `table` with COPY; returns the row count.

        With `types` (Postgres type names, one per column) the binary format is used: the server skips text
        parsing, which is what lets a Python loader keep up with `psql \\copy`.
        """
        statement = sql.SQL("COPY {} ({}) FROM STDIN{}").format(
            table,
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(" (FORMAT BINARY)") if types else sql.SQL(""),
        )
        count = 0
        with conn.cursor() as cur, cur.copy(statement) as copy:
            if types:
                copy.set_types(list(types))
            for row in rows:
                copy.write_row(row)
                count += 1
        return count
