"""Splitting a stream's dumps into daily parts by the event time of their records.

A stream consumer writes a dump every so many records or minutes, named by a UUID: its records may belong to
any day, and delivery is at least once. On arrival (discovery), in one transaction: the dump is registered in
the ledger; if its bytes are new, each record goes to the part of its event day (`<topic>/date=<day>/<dump
name>.jsonl`, written atomically), the parts are registered as the day's landed files, records with no usable
event time go to quarantine under the dump's load, and the dump is recorded as archived with its parts. A dump
re-sent with the same bytes is a `duplicate` and is not split again; a record repeated by a later dump lands in
the same day's partition twice, byte for byte (parts are written as canonical JSON), and the partition's
duplicate screen sets the repeat aside. A crash before the commit leaves at most part files that the retry
writes again with the same bytes.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg

from assets.bronze import ledger
from assets.bronze.quarantine import Quarantined, write_quarantine
from assets.bronze.readers import FileError, Record, json_document_records, jsonl_records
from assets.bronze.records import extractor
from assets.bronze.sources import Source
from assets.bronze.tables import ensure_quarantine
from assets.partitions import in_range
from resources.landing import LandingZoneResource

NO_EVENT_TIME = "no_event_time"
EVENT_DATE_OUT_OF_RANGE = "event_date_out_of_range"
# The raw bytes kept in quarantine for a dump that could not be read at all (the dump itself goes to error/).
MAX_DUMP_QUARANTINE_BYTES = 16 << 20


@dataclass
class Split:
    dump: ledger.Load
    new: bool
    # The registered parts: (load, whether the row is new), as ledger.register returns them.
    parts: list[tuple[ledger.Load, bool]] = field(default_factory=list)


def part_path(dump_path: str, day: str) -> str:
    folder, name = dump_path.rsplit("/", 1)
    return f"{folder}/date={day}/{name}.jsonl"


def split_dump(
    conn: psycopg.Connection, source: Source, landing: LandingZoneResource, dump: ledger.LandedFile
) -> Split:
    """Register `dump` and, if its bytes are new, split it into its days' parts (see the module docstring).
    The caller moves the dump to its stored path after this returns."""
    # Discovery may run before any load created bronze's tables; what the split sets aside needs quarantine.
    ensure_quarantine(conn)
    with conn.transaction():
        [(load, new)] = ledger.register(conn, source.name, [dump])
        if not new or load.status != "ready":
            return Split(load, new)
        path = landing.resolve(dump.path)
        try:
            days, aside, read = _by_event_day(source, load, _records(path))
        except FileError as exc:
            raw = path.open("rb").read(MAX_DUMP_QUARANTINE_BYTES)
            unread = Quarantined(load.load_id, load.path, None, exc.reason, exc.detail, raw)
            write_quarantine(conn, source.name, None, [unread])
            stored_path = landing.settled_path(load.path, errored=True)
            ledger.mark_done(
                conn,
                load.load_id,
                status="errored",
                read=1,
                loaded=0,
                quarantined={exc.reason: 1},
                stored_path=stored_path,
                error=str(exc),
            )
            return Split(replace(load, status="errored", stored_path=stored_path), new)
        parts = []
        for day, lines in sorted(days.items()):
            relative, data = part_path(load.path, day), b"".join(line + b"\n" for line in lines)
            written = landing.write(relative, data).stat()
            mtime = datetime.fromtimestamp(written.st_mtime, UTC)
            partition_key = source.partition_key({"date": day})
            parts.append(
                ledger.LandedFile(relative, partition_key, len(data), mtime, hashlib.sha256(data).hexdigest())
            )
        registered = ledger.register(conn, source.name, parts)
        write_quarantine(conn, source.name, None, aside)
        stored_path = landing.settled_path(load.path, errored=False)
        ledger.mark_done(
            conn,
            load.load_id,
            status="archived",
            read=read,
            loaded=sum(len(lines) for lines in days.values()),
            quarantined=Counter(record.reason for record in aside),
            stored_path=stored_path,
            details={"parts": {day: len(lines) for day, lines in sorted(days.items())}},
        )
        return Split(replace(load, status="archived", stored_path=stored_path), new, registered)


def _records(path: Path) -> Iterator[Record]:
    """A dump is JSON lines (`.jsonl`) or one JSON array of records, either maybe gzipped."""
    if path.name.removesuffix(".gz").endswith(".jsonl"):
        return jsonl_records(path)
    records, _ = json_document_records(path, "")
    return records


def event_days(source: Source, path: Path) -> set[str]:
    """The partitions a dump not split yet will fill: planning a build of what has landed sees them before the
    landing sensor has split it."""
    try:
        return {day for _, day, _ in _event_days(source, _records(path)) if day}
    except FileError:
        return set()


def _by_event_day(
    source: Source, load: ledger.Load, records: Iterator[Record]
) -> tuple[dict[str, list[bytes]], list[Quarantined], int]:
    """Each record's canonical JSON by its event day (UTC), the records set aside, and how many were read."""
    days: dict[str, list[bytes]] = defaultdict(list)
    aside: list[Quarantined] = []
    read = 0
    for record, day, (reason, detail) in _event_days(source, records):
        read += 1
        if day:
            try:
                days[day].append(orjson.dumps(record.obj))
                continue
            except orjson.JSONEncodeError as exc:  # parsed, but not writable as JSON again (a 65-bit integer)
                reason, detail = "unsupported_json", str(exc)
        aside.append(Quarantined(load.load_id, load.path, record.number, reason, detail, record.raw))
    return days, aside, read


def _event_days(
    source: Source, records: Iterator[Record]
) -> Iterator[tuple[Record, str | None, tuple[str | None, str | None]]]:
    """Each record with its event day (UTC), or with no day and why it is set aside."""
    event_time = extractor((source.dumps.event_time,))
    today = datetime.now(UTC).date()
    for record in records:
        if record.obj is None:
            yield record, None, (record.reason, record.detail)
            continue
        (moment,) = event_time(record.obj)
        if moment is None:
            detail = f"no {source.dumps.event_time.column} readable as a time: the record's day is unknown"
            yield record, None, (NO_EVENT_TIME, detail)
            continue
        day = moment.astimezone(UTC).date().isoformat()
        if not in_range(day, today=today):
            yield record, None, (EVENT_DATE_OUT_OF_RANGE, f"event day {day} has no partition")
            continue
        yield record, day, (None, None)
