"""The writer of `bronze.quarantine`: every record bronze sets aside, whether from a landed file (a whole
unreadable file, a rejected record) or from a Mongo extraction, is written here with its source, lineage, reason
and raw bytes. (Duplicates never leave Postgres: `assets.bronze.duplicates` moves them from the bronze table in
one statement, with the same columns.)"""

from __future__ import annotations

import pickle
import tempfile
from collections import Counter
from collections.abc import Collection, Iterator
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


class QuarantineSpool:
    """The records a file's load sets aside, held until its COPY into bronze ends (the connection is busy until
    then, and they must commit with the rows): pickled into a temporary file that stays in memory up to
    `MAX_IN_MEMORY` bytes and moves to disk beyond, so a file with many bad records costs disk, not memory."""

    MAX_IN_MEMORY = 4 << 20

    def __init__(self) -> None:
        self._file = tempfile.SpooledTemporaryFile(max_size=self.MAX_IN_MEMORY)
        self._count = 0
        # Whole records set aside, by reason (a value a discard_value contract took out is not one).
        self.reasons: Counter = Counter()

    def add(self, record: Quarantined) -> None:
        pickle.dump(tuple(record), self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self._count += 1
        if record.value_path is None:
            self.reasons[record.reason] += 1

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Quarantined]:
        self._file.seek(0)
        unpickler = pickle.Unpickler(self._file)
        for _ in range(self._count):
            yield Quarantined(*unpickler.load())

    def close(self) -> None:
        self._file.close()


def write_quarantine(
    conn: psycopg.Connection, source: str, partition_key: str | None, records: Collection[Quarantined]
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
