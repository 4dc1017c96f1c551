"""The duplicate screen of a partition load: of the byte-identical records of a partition, only the first (by
load, record number) stays in bronze; the others move to quarantine as `duplicate_record`. For a source with
snapshot folders, records repeat each other only within a landing folder (`duplicate_scope`).

While the files are copied, `DuplicateScreen` (a Bloom filter over the record hashes) marks the records that
may repeat; `quarantine_duplicates` then checks exactly, in Postgres, only those candidates.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from assets.bronze.sources import Source
from assets.bronze.tables import QUARANTINE, table

DUPLICATE_RECORD = "duplicate_record"


def duplicate_scope(source: Source, alias: str | None = None) -> list[sql.Composable]:
    """What, besides the record hash, two records must share to repeat each other: the partition's columns, and
    for a source with snapshot folders the folder the file landed in."""
    column = (lambda name: sql.Identifier(alias, name)) if alias else sql.Identifier
    scope: list[sql.Composable] = [column(name) for name, _ in source.partition_columns]
    if source.has_snapshot_folders:
        scope.append(sql.SQL("regexp_replace({}, '/[^/]*$', '')").format(column("source_file")))
    return scope


class DuplicateScreen:
    """A fixed-size Bloom filter over the record hashes of one partition load. A hash it has (probably) seen
    before makes the record a duplicate candidate; the exact check in Postgres then looks only at candidates.
    Memory is 16 MiB whatever the partition's size; hashes are screened in numpy batches."""

    BITS = 1 << 27
    BATCH = 8192

    def __init__(self) -> None:
        import numpy

        self._np = numpy
        self._words = numpy.zeros(self.BITS // 64, dtype=numpy.uint64)
        self._pending: list[bytes] = []
        self.candidates: set[bytes] = set()

    def add(self, digest: bytes) -> None:
        self._pending.append(digest)
        if len(self._pending) >= self.BATCH:
            self._screen()

    def finish(self) -> set[bytes]:
        self._screen()
        return self.candidates

    def _screen(self) -> None:
        np, batch = self._np, self._pending
        if not batch:
            return
        self._pending = []
        data = b"".join(batch)
        # Three bit positions per hash from its first 12 bytes (md5 is uniform enough for that).
        positions = np.frombuffer(data, dtype="<u4").reshape(-1, 4)[:, :3].astype(np.uint64) & np.uint64(
            self.BITS - 1
        )
        words, bits = positions >> np.uint64(6), np.uint64(1) << (positions & np.uint64(63))
        seen = np.all((self._words[words] & bits) != 0, axis=1)
        _, first = np.unique(np.frombuffer(data, dtype="V16"), return_index=True)
        repeated = np.ones(len(batch), dtype=bool)
        repeated[first] = False
        for column in range(3):
            np.bitwise_or.at(self._words, words[:, column], bits[:, column])
        self.candidates.update(batch[i] for i in np.flatnonzero(seen | repeated))


def quarantine_duplicates(
    conn: psycopg.Connection,
    source: Source,
    partition_key: str | None,
    load_ids: list[int],
    candidates: set[bytes] | None,
) -> dict[int, int]:
    """Move the byte-identical repeats among the records of `load_ids` to quarantine; returns how many per load.
    `candidates` (hashes from the screen) limits the check to records that may repeat; None checks every record of
    the loads against the whole partition. One statement finds, deletes and quarantines them: their raw JSON never
    travels through Python, so memory stays flat however many repeat."""
    if candidates is not None and not candidates:
        return {}
    same_partition = sql.SQL("").join(
        sql.SQL(" AND {} = {}").format(old, new)
        for old, new in zip(duplicate_scope(source, "o"), duplicate_scope(source, "n"), strict=True)
    )
    # Every part of the statement sees the rows as they were before it: the first of each set of repeats has no
    # earlier twin, so it stays whatever the others do. raw::text is what write_quarantine keeps of a jsonb
    # value (jsonb holds neither invalid UTF-8 nor NUL).
    move = sql.SQL(
        """
        WITH repeats AS (
            SELECT n.load_id, n.record_number FROM {table} n
            WHERE n.load_id = ANY(%(loads)s){only_candidates} AND EXISTS (
                SELECT 1 FROM {table} o
                WHERE o.record_hash = n.record_hash{same_partition}
                  AND (o.load_id, o.record_number) < (n.load_id, n.record_number))
        ), moved AS (
            DELETE FROM {table} t USING repeats r
            WHERE t.load_id = r.load_id AND t.record_number = r.record_number
            RETURNING t.load_id, t.source_file, t.record_number, t.raw::text AS raw_text, t.record_hash
        ), quarantined AS (
            INSERT INTO {quarantine}
                (source, load_id, source_file, record_number, partition_key, reason, detail, raw_text, raw_bytes)
            SELECT %(source)s, load_id, source_file, record_number, %(partition_key)s, %(reason)s,
                   'same bytes as an earlier record of the partition (md5 ' || encode(record_hash, 'hex') || ')',
                   raw_text, convert_to(raw_text, 'UTF8')
            FROM moved
        )
        SELECT load_id, count(*) FROM moved GROUP BY load_id
        """
    ).format(
        table=table(source),
        quarantine=QUARANTINE,
        same_partition=same_partition,
        only_candidates=sql.SQL(" AND n.record_hash = ANY(%(candidates)s)") if candidates else sql.SQL(""),
    )
    params = {
        "loads": load_ids,
        "candidates": list(candidates or ()),
        "source": source.name,
        "partition_key": partition_key,
        "reason": DUPLICATE_RECORD,
    }
    return dict(conn.execute(move, params).fetchall())
