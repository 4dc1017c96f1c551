"""DDL of the bronze schema: one table per source (lineage + partition + extracted columns + raw JSONB) and
one quarantine table for every source."""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg
import psycopg
from psycopg import sql

from assets.bronze.sources import Source
from resources.postgres import serialized_ddl

# Every DDL statement on the bronze schema, whichever source's: they share the schema's catalog entries.
BRONZE_DDL_LOCK = "strata.bronze.ddl"

SCHEMA = "bronze"
LINEAGE_COLUMNS = ("load_id", "source_file", "record_number")
QUARANTINE = sql.Identifier(SCHEMA, "quarantine")

_QUARANTINE_DDL = """
CREATE TABLE IF NOT EXISTS bronze.quarantine (
    quarantine_id bigserial PRIMARY KEY,
    source text NOT NULL,
    load_id bigint NOT NULL,
    source_file text NOT NULL,
    record_number bigint,
    partition_key text,
    reason text NOT NULL,
    detail text,
    raw_text text,
    raw_bytes bytea,
    quarantined_at timestamptz NOT NULL DEFAULT now()
);
-- The path of a value a discard_value contract took out of a loaded record; NULL for a record (or file) set aside.
-- Altered only when missing: ALTER TABLE locks the table every source's loads write to, even when it changes nothing.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM information_schema.columns
        WHERE table_schema = 'bronze' AND table_name = 'quarantine' AND column_name = 'value_path'
    ) THEN
        ALTER TABLE bronze.quarantine ADD COLUMN value_path text;
    END IF;
END $$;
CREATE INDEX IF NOT EXISTS quarantine_load_idx ON bronze.quarantine (load_id);
CREATE INDEX IF NOT EXISTS quarantine_source_reason_idx ON bronze.quarantine (source, reason);
"""


def table(source: Source) -> sql.Identifier:
    return sql.Identifier(SCHEMA, source.name)


_PARTITION_COLUMN_DESCRIPTIONS = {
    "partition_date": "The partition's day, from the landed file's path (or, for a stream, the record's event time).",
    "partition_network": "The partition's network, from the landed file's path.",
}


def column_schema(source: Source) -> dg.TableSchema:
    """The source's bronze table as the asset's page shows it: every column, typed and described."""
    columns = [
        dg.TableColumn("load_id", "bigint", "The load in ledger.loads this row came from."),
        dg.TableColumn("source_file", "text", "The landed file's path under the landing root."),
        dg.TableColumn("record_number", "bigint", "The record's position in its file, from 1."),
        *(
            dg.TableColumn(name, pg_type, _PARTITION_COLUMN_DESCRIPTIONS[name])
            for name, pg_type in source.partition_columns
        ),
        dg.TableColumn(
            "ingested_at", "timestamptz", "When bronze loaded the row (dbt's source freshness reads it)."
        ),
        dg.TableColumn("record_hash", "bytea", "md5 of the raw record: what the duplicate screen compares."),
        *(
            dg.TableColumn(
                field.column,
                field.pg_type,
                f"`{field.column}` read from the record"
                + (f" (or {', '.join(f'`{alias}`' for alias in field.aliases)})" if field.aliases else "")
                + f"; NULL where it does not convert to {field.pg_type} (raw keeps the value).",
            )
            for field in source.fields
        ),
        dg.TableColumn("raw", "jsonb", "The whole record as the sender wrote it."),
    ]
    return dg.TableSchema(columns=columns)


def ensure_quarantine(conn: psycopg.Connection) -> None:
    with serialized_ddl(conn, BRONZE_DDL_LOCK):
        conn.execute("CREATE SCHEMA IF NOT EXISTS bronze")
        conn.execute(_QUARANTINE_DDL)


def ensure_never_loaded(conn: psycopg.Connection, sources: Iterable[Source]) -> None:
    """Create the tables of sources that have never loaded anything: a source that has sent no file yet (an API
    with no endpoint configured, a feed not started) is an empty table to silver, never a missing relation."""
    by_name = {source.name: source for source in sources}
    missing = conn.execute(
        "SELECT name FROM unnest(%s::text[]) AS name WHERE to_regclass(format('%%I.%%I', %s::text, name)) IS NULL",
        (list(by_name), SCHEMA),
    ).fetchall()
    for (name,) in missing:
        ensure_tables(conn, by_name[name])


def ensure_tables(conn: psycopg.Connection, source: Source) -> None:
    """Create the source's table if needed and add columns for newly configured fields (never drops)."""
    partition_columns = [
        sql.SQL("{} {} NOT NULL").format(sql.Identifier(name), sql.SQL(pg_type))
        for name, pg_type in source.partition_columns
    ]
    create = sql.SQL(
        """CREATE TABLE IF NOT EXISTS {table} (
            load_id bigint NOT NULL,
            source_file text NOT NULL,
            record_number bigint NOT NULL,
            {partition_columns}
            ingested_at timestamptz NOT NULL DEFAULT now(),
            record_hash bytea NOT NULL,
            raw jsonb NOT NULL
        )"""
    ).format(
        table=table(source),
        partition_columns=sql.SQL("").join(c + sql.SQL(",\n") for c in partition_columns),
    )
    hash_index_columns = [sql.Identifier(name) for name, _ in source.partition_columns] + [
        sql.Identifier("record_hash")
    ]
    ensure_quarantine(conn)
    with serialized_ddl(conn, BRONZE_DDL_LOCK):
        conn.execute(create)
        for f in source.fields:
            conn.execute(
                sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {} {}").format(
                    table(source), sql.Identifier(f.column), sql.SQL(f.pg_type)
                )
            )
        # Silver reads its winning records back from bronze by (load_id, record_number): point lookups, however
        # the planner joins — a nested loop over an index of load_id alone scans a whole file per record.
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} (load_id, record_number)").format(
                sql.Identifier(f"{source.name}_load_record_idx"), table(source)
            )
        )
        conn.execute(
            sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier("bronze", f"{source.name}_load_idx"))
        )
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(
                sql.Identifier(f"{source.name}_record_hash_idx"),
                table(source),
                sql.SQL(", ").join(hash_index_columns),
            )
        )
