"""Loading ledgered files of one source partition into its bronze table, in the caller's transaction.

Per file (inside a savepoint): stream records → binary COPY of lineage + extracted columns + the raw JSON;
records that cannot be used go to `bronze.quarantine` with the reason. A file that cannot be read at all
becomes one quarantine entry and an `errored` load. Then byte-identical records within the partition are
moved to quarantine (`duplicate_record`), and the ledger rows get their counts — all in the same
transaction as the data, so a killed load leaves nothing visible.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from operator import itemgetter
from pathlib import Path

import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import set_json_dumps

from assets.bronze import ledger
from assets.bronze.readers import (
    FileError,
    Record,
    csv_records,
    detect_encoding,
    json_document_records,
    jsonl_records,
)
from assets.bronze.sources import Field, Source
from assets.bronze.tables import LINEAGE_COLUMNS, QUARANTINE, table

# The raw bytes kept in quarantine for a file that could not be read at all (the file itself goes to error/).
MAX_FILE_QUARANTINE_BYTES = 16 << 20
# MongoDB stores at most 100 levels of nesting and a source's document copy (assets.bronze.documents) holds the
# record one level down: a record of a mirrored source nested deeper than this (well inside both) is quarantined
# here, so that every bronze row has its document.
MAX_MIRROR_DEPTH = 64
# Records whose raw JSON is cast to jsonb per query when finding the ones Postgres refuses.
REFUSAL_BATCH_RECORDS = 1000
REFUSAL_BATCH_BYTES = 16 << 20


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


@dataclass
class FileOutcome:
    load: ledger.Load
    read: int = 0
    loaded: int = 0
    quarantined: Counter = field(default_factory=Counter)
    error: str | None = None
    details: dict = field(default_factory=dict)
    fields_seen: set[str] = field(default_factory=set)

    @property
    def status(self) -> str:
        return "errored" if self.error else "archived"


def load_partition(
    conn: psycopg.Connection,
    source: Source,
    partition_key: str | None,
    loads: list[ledger.Load],
    *,
    landing_root: Path,
    settled_path: Callable[[FileOutcome], str] | None = None,
) -> list[FileOutcome]:
    """Replace the rows of `loads` (and of the loads they supersede) with a fresh load of their files."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext(%s), hashtext(coalesce(%s, '')))", (source.name, partition_key)
    )
    # Raw JSON arrives as bytes already serialized; hand them to jsonb untouched.
    set_json_dumps(raw_json_dumps, context=conn)
    load_ids = [load.load_id for load in loads]
    replaced = load_ids + [load.supersedes for load in loads if load.supersedes]
    conn.execute(sql.SQL("DELETE FROM {} WHERE load_id = ANY(%s)").format(table(source)), (replaced,))
    conn.execute(sql.SQL("DELETE FROM {} WHERE load_id = ANY(%s)").format(QUARANTINE), (replaced,))

    # A partitioned source reloads its whole partition here, so an in-memory screen sees every record of
    # it; an unpartitioned one is compared with all earlier loads in Postgres.
    screen = DuplicateScreen() if source.partitioning != "none" else None
    outcomes = []
    for load in loads:
        path = locate(landing_root, load)
        outcome = FileOutcome(load)
        try:
            try:
                with conn.transaction():
                    _copy_file(conn, source, partition_key, load, path, outcome, screen)
            except psycopg.errors.DataError:
                # Postgres refused a value the readers let through (e.g. a JSON number beyond what jsonb's
                # numeric holds) and COPY names no record: find the refused records, then load the file again
                # with them quarantined. One record must not cost its file, nor its file the partition. (The
                # screen saw this file's hashes once already: they only become candidates for the exact check.)
                refused = _refused_records(conn, source, load, path)
                outcome = FileOutcome(load)
                with conn.transaction():
                    _copy_file(conn, source, partition_key, load, path, outcome, screen, refused)
        except FileError as exc:
            outcome = FileOutcome(load, read=1, error=str(exc))
            outcome.quarantined[exc.reason] = 1
            raw = path.open("rb").read(MAX_FILE_QUARANTINE_BYTES) if path.exists() else b""
            _write_quarantine(
                conn, source, partition_key, load, [Record(0, raw, reason=exc.reason, detail=exc.detail)]
            )
        outcomes.append(outcome)

    candidates = screen.finish() if screen else None
    set_aside = _quarantine_duplicates(conn, source, partition_key, load_ids, candidates)
    duplicates = Counter(load_id for load_id, _ in set_aside)
    for outcome in outcomes:
        removed = duplicates.get(outcome.load.load_id, 0)
        if removed:
            outcome.loaded -= removed
            outcome.quarantined["duplicate_record"] += removed
        ledger.mark_done(
            conn,
            outcome.load.load_id,
            status=outcome.status,
            read=outcome.read,
            loaded=outcome.loaded,
            quarantined=dict(outcome.quarantined),
            stored_path=settled_path(outcome) if settled_path else outcome.load.stored_path,
            error=outcome.error,
            details=outcome.details,
        )
    ledger.mark_superseded(conn, [load.supersedes for load in loads if load.supersedes])
    return outcomes


def raw_json_dumps(obj) -> bytes:
    """jsonb dumper for COPY: raw JSON arrives as bytes already serialized and passes through untouched."""
    return obj if isinstance(obj, bytes) else orjson.dumps(obj)


def locate(landing_root: Path, load: ledger.Load) -> Path:
    """Where the bytes are now: archived, or still where they landed."""
    stored = landing_root / load.stored_path
    return stored if stored.exists() else landing_root / load.path


def read_records(source: Source, path: Path, outcome: FileOutcome) -> Iterator[Record]:
    """The file's records as its format reads them (repairs and encoding noted in `outcome.details`)."""
    if source.format == "jsonl":
        return jsonl_records(path)
    if source.format == "json":
        records, repairs = json_document_records(path, source.record_path)
        if repairs:
            outcome.details["repairs"] = repairs
        return records
    encoding = detect_encoding(path)
    outcome.details["encoding"] = encoding
    return csv_records(path, encoding)


def _copy_file(
    conn: psycopg.Connection,
    source: Source,
    partition_key: str | None,
    load: ledger.Load,
    path: Path,
    outcome: FileOutcome,
    screen: DuplicateScreen | None,
    refused: dict[int, str] | None = None,
) -> None:
    extract = _extractor(source.fields)
    required = [i for i, f in enumerate(source.fields) if f.column in source.natural_key]
    key_values = itemgetter(*required) if len(required) > 1 else lambda values: (values[required[0]],)
    partition_values = source.partition_values(partition_key)
    columns = [*LINEAGE_COLUMNS, *(name for name, _ in source.partition_columns), "record_hash"]
    columns += [f.column for f in source.fields] + ["raw"]
    types = ["int8", "text", "int8", *(t for _, t in source.partition_columns), "bytea"]
    types += [f.pg_type for f in source.fields] + ["jsonb"]
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        table(source), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    rejected: list[Record] = []
    mirrored = source.mirror_to_mongo
    fields_seen = outcome.fields_seen
    load_id, file_name = load.load_id, load.path
    read = loaded = 0
    md5 = hashlib.md5
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(types)
        write_row = copy.write_row
        for record in read_records(source, path, outcome):
            read += 1
            obj = record.obj
            if obj is None:
                rejected.append(record)
                continue
            if refused and record.number in refused:
                detail = f"jsonb refuses it: {refused[record.number]}"
                rejected.append(record._replace(reason="unsupported_json", detail=detail))
                continue
            values = extract(obj)
            if not all(key_values(values)):
                missing = [source.fields[i].column for i in required if not values[i]]
                rejected.append(
                    record._replace(reason="missing_key", detail=f"no value for {', '.join(missing)}")
                )
                continue
            raw = record.raw
            if mirrored and _too_deep(raw, obj):
                detail = f"nested deeper than {MAX_MIRROR_DEPTH} levels: the MongoDB copy cannot hold it"
                rejected.append(record._replace(reason="too_deep", detail=detail))
                continue
            fields_seen.update(obj)
            digest = md5(raw).digest()
            if screen:
                screen.add(digest)
            write_row((load_id, file_name, record.number, *partition_values, digest, *values, raw))
            loaded += 1
    outcome.read, outcome.loaded = read, loaded
    outcome.quarantined.update(r.reason for r in rejected)
    _write_quarantine(conn, source, partition_key, load, rejected)


def _refused_records(
    conn: psycopg.Connection, source: Source, load: ledger.Load, path: Path
) -> dict[int, str]:
    """The records of a file whose raw JSON Postgres refuses as jsonb, with its message: batches are cast to
    jsonb and a failing batch is halved until the refused records stand alone."""
    refused: dict[int, str] = {}
    batch: list[Record] = []
    size = 0
    for record in read_records(source, path, FileOutcome(load)):
        if record.obj is None:
            continue
        batch.append(record)
        size += len(record.raw)
        if len(batch) >= REFUSAL_BATCH_RECORDS or size >= REFUSAL_BATCH_BYTES:
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


def _write_quarantine(
    conn: psycopg.Connection,
    source: Source,
    partition_key: str | None,
    load: ledger.Load,
    records: list[Record],
) -> None:
    if not records:
        return
    columns = ["source", "load_id", "source_file", "record_number", "partition_key", "reason", "detail"]
    columns += ["raw_text", "raw_bytes"]
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        QUARANTINE, sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for record in records:
            text = record.raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
            copy.write_row(
                (
                    source.name,
                    load.load_id,
                    load.path,
                    record.number or None,
                    partition_key,
                    record.reason,
                    record.detail,
                    text,
                    record.raw,
                )
            )


def _quarantine_duplicates(
    conn: psycopg.Connection,
    source: Source,
    partition_key: str | None,
    load_ids: list[int],
    candidates: set[bytes] | None,
) -> list[tuple[int, int]]:
    """Byte-identical records within a partition: the first (by load, record number) stays in bronze, the
    others move to quarantine; returns their (load id, record number). `candidates` (hashes from the screen)
    limits the check to records that may repeat; None checks every record of the loads against the whole
    partition."""
    if candidates is not None and not candidates:
        return []
    same_partition = sql.SQL("").join(
        sql.SQL(" AND o.{0} = n.{0}").format(sql.Identifier(name)) for name, _ in source.partition_columns
    )
    query = sql.SQL(
        """
        WITH removed AS (
            DELETE FROM {table} n
            WHERE n.load_id = ANY(%(loads)s){only_candidates} AND EXISTS (
                SELECT 1 FROM {table} o
                WHERE o.record_hash = n.record_hash{same_partition}
                  AND (o.load_id, o.record_number) < (n.load_id, n.record_number))
            RETURNING n.load_id, n.source_file, n.record_number, n.raw, n.record_hash
        ), quarantined AS (
            INSERT INTO {quarantine}
                (source, load_id, source_file, record_number, partition_key, reason, detail, raw_text, raw_bytes)
            SELECT %(source)s, load_id, source_file, record_number, %(partition)s, 'duplicate_record',
                   'same bytes as an earlier record of the partition (md5 ' || encode(record_hash, 'hex') || ')',
                   raw::text, convert_to(raw::text, 'UTF8')
            FROM removed
            RETURNING load_id, record_number
        )
        SELECT load_id, record_number FROM quarantined
        """
    ).format(
        table=table(source),
        quarantine=QUARANTINE,
        same_partition=same_partition,
        only_candidates=sql.SQL(" AND n.record_hash = ANY(%(candidates)s)") if candidates else sql.SQL(""),
    )
    parameters = {"loads": load_ids, "source": source.name, "partition": partition_key}
    return conn.execute(query, {**parameters, "candidates": list(candidates or ())}).fetchall()


def _too_deep(raw: bytes, obj) -> bool:
    """Whether the record nests containers deeper than `MAX_MIRROR_DEPTH` (the record itself is level 1). Counting
    brackets in the bytes runs at C speed; only a record with that many is walked."""
    if raw.count(b"{") + raw.count(b"[") <= MAX_MIRROR_DEPTH:
        return False
    level, frontier = 1, [obj]
    while frontier:
        children = []
        for value in frontier:
            children.extend(
                v
                for v in (value.values() if isinstance(value, dict) else value)
                if isinstance(v, dict | list)
            )
        if not children:
            return False
        level += 1
        if level > MAX_MIRROR_DEPTH:
            return True
        frontier = children
    return False


def _extractor(fields: tuple[Field, ...]) -> Callable[[dict], tuple]:
    converters = [(_CONVERT[f.pg_type], f.names, {_norm(n) for n in f.names}) for f in fields]

    def extract(obj: dict) -> tuple:
        out = []
        for convert, names, normalized in converters:
            value = None
            for name in names:
                value = obj.get(name)
                if value is not None:
                    break
            else:
                # Key names drift in case and separators (likeCount / like_count / Like_Count).
                for key, candidate in obj.items():
                    if candidate is not None and _norm(key) in normalized:
                        value = candidate
                        break
            out.append(None if value is None else convert(value))
        return tuple(out)

    return extract


def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def _to_text(value) -> str | None:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def _to_int8(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return None
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return value
    return None


def _to_float8(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _to_bool(value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None


def _to_timestamptz(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y")  # the Twitter API's created_at
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _to_date(value) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


_CONVERT = {
    "text": _to_text,
    "int8": _to_int8,
    "float8": _to_float8,
    "bool": _to_bool,
    "timestamptz": _to_timestamptz,
    "date": _to_date,
}
