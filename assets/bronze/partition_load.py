"""The load of one source partition's ledgered files into its bronze table, in the caller's transaction.

Per file (inside a savepoint): stream records → the source's schema contract (assets.bronze.contracts) →
binary COPY of lineage + extracted columns + the raw JSON; records that cannot be used go to `bronze.quarantine`
with the reason. A file that cannot be read at all, or that a frozen contract refuses, becomes one quarantine
entry and an `errored` load. Then byte-identical records within the partition are
moved to quarantine (`duplicate_record`), and the ledger rows get their counts — all in the same
transaction as the data, so a killed load leaves nothing visible.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path

import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import set_json_dumps

from assets.bronze import ledger
from assets.bronze.contracts import (
    NEW_FIELD,
    SCHEMA_FROZEN,
    TYPE_CHANGE,
    Breach,
    Contract,
    KnownSchema,
    Shapes,
    outermost,
    prune,
)
from assets.bronze.documents import MAX_MIRROR_DEPTH, too_deep
from assets.bronze.duplicates import DUPLICATE_RECORD, DuplicateScreen, quarantine_duplicates
from assets.bronze.jsonb_refusals import refused_records
from assets.bronze.quarantine import Quarantined, QuarantineSpool, write_quarantine
from assets.bronze.readers import FileError
from assets.bronze.records import extractor, locate, raw_json_dumps, read_records
from assets.bronze.sources import Source
from assets.bronze.tables import LINEAGE_COLUMNS, QUARANTINE, table

# The raw bytes kept in quarantine for a file that could not be read at all (the file itself goes to error/).
MAX_FILE_QUARANTINE_BYTES = 16 << 20


@dataclass
class FileOutcome:
    load: ledger.Load
    read: int = 0
    loaded: int = 0
    quarantined: Counter = field(default_factory=Counter)
    error: str | None = None
    details: dict = field(default_factory=dict)
    # The shapes of the file's records (assets.bronze.contracts), and the values a discard_value contract took out.
    shapes: Shapes = field(default_factory=Shapes)
    values_discarded: Counter = field(default_factory=Counter)

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
    contract: Contract = "evolve",
    known: KnownSchema | None = None,
) -> list[FileOutcome]:
    """Replace the rows of `loads` (and of the loads they supersede) with a fresh load of their files, each record
    judged by `contract` against the `known` schema (None: nothing to judge against yet)."""
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
    judged = known if contract != "evolve" else None
    outcomes = []
    for load in loads:
        path = locate(landing_root, load)
        outcome = FileOutcome(load, shapes=Shapes(judged))
        try:
            try:
                with conn.transaction():
                    _copy_file(conn, source, partition_key, load, path, outcome, screen, contract)
            except psycopg.errors.DataError:
                # Postgres refused a value the readers let through and COPY names no record: find the refused
                # records, then load the file again with them quarantined. One record must not cost its file,
                # nor its file the partition. (The screen saw this file's hashes once already: they only become
                # candidates for the exact check.)
                refused = refused_records(conn, source, path)
                outcome = FileOutcome(load, shapes=Shapes(judged))
                with conn.transaction():
                    _copy_file(conn, source, partition_key, load, path, outcome, screen, contract, refused)
        except FileError as exc:
            # What a refused file showed of its shapes stays for schema_drift; none of it is recorded as known.
            outcome = FileOutcome(load, read=1, error=str(exc), shapes=outcome.shapes)
            outcome.quarantined[exc.reason] = 1
            raw = path.open("rb").read(MAX_FILE_QUARANTINE_BYTES) if path.exists() else b""
            write_quarantine(
                conn,
                source.name,
                partition_key,
                [Quarantined(load.load_id, load.path, None, exc.reason, exc.detail, raw)],
            )
        outcomes.append(outcome)

    candidates = screen.finish() if screen else None
    duplicates = quarantine_duplicates(conn, source, partition_key, load_ids, candidates)
    for outcome in outcomes:
        removed = duplicates.get(outcome.load.load_id, 0)
        if removed:
            outcome.loaded -= removed
            outcome.quarantined[DUPLICATE_RECORD] += removed
        ledger.mark_done(
            conn,
            outcome.load.load_id,
            status=outcome.status,
            read=outcome.read,
            loaded=outcome.loaded,
            quarantined=dict(outcome.quarantined),
            stored_path=settled_path(outcome) if settled_path else outcome.load.stored_path,
            error=outcome.error,
            details={**outcome.details, "values_discarded": dict(outcome.values_discarded)}
            if outcome.values_discarded
            else outcome.details,
        )
    ledger.mark_superseded(conn, [load.supersedes for load in loads if load.supersedes])
    return outcomes


def _copy_file(
    conn: psycopg.Connection,
    source: Source,
    partition_key: str | None,
    load: ledger.Load,
    path: Path,
    outcome: FileOutcome,
    screen: DuplicateScreen | None,
    contract: Contract,
    refused: dict[int, str] | None = None,
) -> None:
    extract = extractor(source.fields)
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
    # A failed load drops it with this frame; its temporary file never had a name on disk.
    rejected = QuarantineSpool()
    mirrored = source.mirror_to_mongo
    breaches_of = outcome.shapes.breaches
    load_id, file_name = load.load_id, load.path
    read = loaded = 0
    md5 = hashlib.md5
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(types)
        write_row = copy.write_row
        for record in read_records(source, path, outcome.details):
            read += 1
            obj = record.obj
            number, raw = record.number, record.raw
            if obj is None:
                rejected.add(Quarantined(load_id, file_name, number, record.reason, record.detail, raw))
                continue
            if refused and number in refused:
                detail = f"jsonb refuses it: {refused[number]}"
                rejected.add(Quarantined(load_id, file_name, number, "unsupported_json", detail, raw))
                continue
            values = extract(obj)
            keys = key_values(values)
            # A key of 0 or false is a value: only an absent one (or an empty string) is missing.
            if None in keys or "" in keys:
                missing = [source.fields[i].column for i in required if values[i] is None or values[i] == ""]
                detail = f"no value for {', '.join(missing)}"
                rejected.add(Quarantined(load_id, file_name, number, "missing_key", detail, raw))
                continue
            if mirrored and too_deep(raw, obj):
                detail = f"nested deeper than {MAX_MIRROR_DEPTH} levels: the MongoDB copy cannot hold it"
                rejected.add(Quarantined(load_id, file_name, number, "too_deep", detail, raw))
                continue
            # The contract's cost on a conforming record is one call; a breach takes the slow path.
            breaches = breaches_of(obj)
            if breaches:
                breaches = outermost(breaches)
                if contract == "freeze":
                    raise FileError(SCHEMA_FROZEN, _frozen(file_name, number, breaches))
                detail = "; ".join(b.describe() for b in breaches)
                if contract == "discard_value":
                    obj, removed = prune(obj, breaches)
                    values = extract(obj)
                if contract == "discard_row" or None in key_values(values) or "" in key_values(values):
                    # A record whose key is the breaching value has nothing left to load.
                    rejected.add(Quarantined(load_id, file_name, number, _reason(breaches), detail, raw))
                    continue
                raw = orjson.dumps(obj)
                outcome.values_discarded.update(r.breach.reason for r in removed)
                for r in removed:
                    rejected.add(
                        Quarantined(
                            load_id,
                            file_name,
                            number,
                            r.breach.reason,
                            r.breach.describe(),
                            orjson.dumps(r.value),
                            r.breach.path,
                        )
                    )
            digest = md5(raw).digest()
            if screen:
                screen.add(digest)
            write_row((load_id, file_name, number, *partition_values, digest, *values, raw))
            loaded += 1
    outcome.read, outcome.loaded = read, loaded
    outcome.quarantined.update(rejected.reasons)
    write_quarantine(conn, source.name, partition_key, rejected)
    rejected.close()


def _reason(breaches: list[Breach]) -> str:
    """A record's quarantine reason: a new field if it has one, else a type change."""
    return NEW_FIELD if any(b.reason == NEW_FIELD for b in breaches) else TYPE_CHANGE


def _frozen(file_name: str, number: int, breaches: list[Breach]) -> str:
    return (
        f"{file_name}, record {number}: "
        + "; ".join(b.describe() for b in breaches)
        + (" (the source's contract is freeze: nothing of the file is loaded)")
    )
