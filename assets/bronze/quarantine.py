"""The one writer of `bronze.quarantine`: every record bronze sets aside, whether from a landed file (a whole
unreadable file, a rejected record, a duplicate) or from a Mongo extraction, is written here with its source,
lineage, reason and raw bytes."""

from __future__ import annotations

from typing import NamedTuple

import psycopg
from psycopg import sql

from assets.bronze.tables import QUARANTINE

_COLUMNS = (
    "source",
    "load_id",
    "source_file",
    "record_number",
    "partition_key",
    "reason",
    "detail",
    "raw_text",
    "raw_bytes",
    "value_path",
)


class Quarantined(NamedTuple):
    """One set-aside record; `record_number` is None when the whole file is set aside. With `value_path`, one
    value set aside from a record that loaded (a `discard_value` contract): `raw` is that value."""

    load_id: int
    source_file: str
    record_number: int | None
    reason: str
    detail: str | None
    raw: bytes
    value_path: str | None = None


def write_quarantine(
    conn: psycopg.Connection, source: str, partition_key: str | None, records: list[Quarantined]
) -> int:
    """COPY `records` of `source` into the quarantine table; returns how many were written."""
    if not records:
        return 0
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        QUARANTINE, sql.SQL(", ").join(map(sql.Identifier, _COLUMNS))
    )
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for record in records:
            # raw_text is for reading in SQL: text columns hold neither invalid UTF-8 nor NUL; raw_bytes keeps
            # the exact bytes.
            text = record.raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
            copy.write_row(
                (
                    source,
                    record.load_id,
                    record.source_file,
                    record.record_number,
                    partition_key,
                    record.reason,
                    record.detail,
                    text,
                    record.raw,
                    record.value_path,
                )
            )
    return len(records)
