"""Finding the records of a file whose raw JSON Postgres refuses as jsonb.

The readers let through JSON that jsonb cannot hold (e.g. a number beyond what its numeric holds), and a COPY
that meets one fails without naming the record: the file's records are cast to jsonb in batches, and a batch
that fails is halved until each refused record stands alone.
"""

from __future__ import annotations

from pathlib import Path

import psycopg

from assets.bronze.readers import Record
from assets.bronze.records import read_records
from assets.bronze.sources import Source

# Records whose raw JSON is cast to jsonb per query.
BATCH_RECORDS = 1000
BATCH_BYTES = 16 << 20


def refused_records(conn: psycopg.Connection, source: Source, path: Path) -> dict[int, str]:
    """The record numbers of the file at `path` that jsonb refuses, each with Postgres's message."""
    refused: dict[int, str] = {}
    batch: list[Record] = []
    size = 0
    for record in read_records(source, path, {}):
        if record.obj is None:
            continue
        batch.append(record)
        size += len(record.raw)
        if len(batch) >= BATCH_RECORDS or size >= BATCH_BYTES:
            _find_refused(conn, batch, refused)
            batch, size = [], 0
    _find_refused(conn, batch, refused)
    return refused


def _find_refused(conn: psycopg.Connection, batch: list[Record], refused: dict[int, str]) -> None:
    if not batch:
        return
    try:
        with conn.transaction():
            conn.execute(
                "SELECT count(raw::jsonb) FROM unnest(%s::text[]) AS r(raw)",
                ([r.raw.decode() for r in batch],),
            )
        return
    except psycopg.errors.DataError as exc:
        if len(batch) == 1:
            refused[batch[0].number] = exc.diag.message_primary or str(exc)
            return
    middle = len(batch) // 2
    _find_refused(conn, batch[:middle], refused)
    _find_refused(conn, batch[middle:], refused)
