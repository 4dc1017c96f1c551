"""Finding landed files and registering them in the ledger — shared by the landing sensor and by a
bronze materialization started by hand (which registers what it finds before loading)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from assets.bronze import ledger
from assets.bronze.dumps import event_days, split_dump
from assets.bronze.sources import SOURCES, Source
from assets.partitions import in_range
from resources.landing import LandingPathError, LandingZoneResource

HASH_CHUNK = 4 << 20
# A sender may drop `<file>.done` once `<file>` is complete: it is then stable at once.
DONE_MARKER = ".done"


@dataclass
class Discovery:
    registered: list[ledger.Load] = field(default_factory=list)
    # Files seen but not registered this time (still changing, or over the budget), with their signature.
    waiting: dict[str, tuple[int, int]] = field(default_factory=dict)
    rejected: list[str] = field(default_factory=list)
    bytes_hashed: int = 0
    budget_exhausted: bool = False


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def discover(
    conn: psycopg.Connection,
    source: Source,
    landing: LandingZoneResource,
    *,
    is_stable: Callable[[str, tuple[int, int]], bool] = lambda relative, signature: True,
    only_partition: str | None = None,
    max_files: int | None = None,
    max_bytes: int | None = None,
) -> Discovery:
    """Register the stable, not yet ledgered files of `source`; bounded by `max_files` / `max_bytes` of hashing
    so a backlog never makes one sensor tick run long (the rest is found on the next tick)."""
    result = Discovery()
    candidates: list[ledger.LandedFile] = []
    dumps: list[ledger.LandedFile] = []
    # A run of one partition looks only at that partition's folders and ledger rows: its cost must not grow
    # with the source's history.
    folders = source.partition_folders(only_partition)
    known = ledger.known_paths(conn, source.name, folders)
    for folder in folders:
        for path in landing.iter_files(folder):
            relative = landing.relative(path)
            if relative.endswith(DONE_MARKER):
                continue
            stat = path.lstat()
            signature = (stat.st_size, stat.st_mtime_ns)
            mtime = datetime.fromtimestamp(stat.st_mtime, UTC)
            previous = known.get(relative)
            if previous and previous.size_bytes == stat.st_size and previous.mtime == mtime:
                # Already ledgered with these bytes: nothing to register (maybe a move to finish).
                _settle_leftover(landing, previous, relative)
                continue
            refusal = _refusal(landing, relative)
            if refusal:
                # Left where it is (moving it could follow the link); the ledger records the refusal once.
                ledger.record_error(
                    conn,
                    source=source.name,
                    path=relative,
                    partition_key=None,
                    size_bytes=stat.st_size,
                    mtime=mtime,
                    error=refusal,
                )
                result.rejected.append(relative)
                continue
            values = source.match(relative)
            # A stream's dump holds records of any day: it has no partition and is split once registered.
            is_dump = values is None and source.dumps is not None and source.dumps.matches(relative)
            if values is None and not is_dump:
                if not previous:
                    reason = "path does not match the landing contract: " + " or ".join(source.patterns)
                    _reject(conn, landing, source, relative, None, stat.st_size, mtime, reason, result)
                continue
            partition_key = None if is_dump else source.partition_key(values)
            if not is_dump and only_partition is not None and partition_key != only_partition:
                continue
            if (
                not is_dump
                and "date" in values
                and not in_range(values["date"], today=datetime.now(UTC).date())
            ):
                _reject(
                    conn,
                    landing,
                    source,
                    relative,
                    partition_key,
                    stat.st_size,
                    mtime,
                    "date outside the partitions",
                    result,
                )
                continue
            over_budget = (max_files is not None and len(candidates) + len(dumps) >= max_files) or (
                max_bytes is not None and result.bytes_hashed >= max_bytes
            )
            if over_budget or not is_stable(relative, signature):
                result.budget_exhausted |= over_budget
                result.waiting[relative] = signature
                continue
            result.bytes_hashed += stat.st_size
            landed = ledger.LandedFile(relative, partition_key, stat.st_size, mtime, sha256_of(path))
            (dumps if is_dump else candidates).append(landed)
    _settle_registered(conn, landing, ledger.register(conn, source.name, candidates), result)
    for landed in dumps:
        split = split_dump(conn, source, landing, landed)
        _settle_registered(conn, landing, [(split.dump, split.new), *split.parts], result)
    return result


def _settle_registered(
    conn: psycopg.Connection,
    landing: LandingZoneResource,
    registered: list[tuple[ledger.Load, bool]],
    result: Discovery,
) -> None:
    """A new load is ready to load, or a duplicate to archive at once; a known one may have a move to finish."""
    for load, new in registered:
        if new and load.status == "duplicate":
            settled = landing.settled_path(load.path, errored=False)
            landing.move(load.path, settled)
            ledger.set_stored_path(conn, load.load_id, settled)
        elif new and load.status == "ready":
            result.registered.append(load)
        else:
            _settle_leftover(landing, load, load.path)


def _refusal(landing: LandingZoneResource, relative: str) -> str | None:
    """Why a landed entry must not be read at all (it stays where it is; the ledger records it)."""
    try:
        resolved = landing.resolve(relative)
    except LandingPathError as exc:
        return f"refused: {exc}"
    if not resolved.is_file():
        return "refused: not a regular file (symlinked directories are not followed)"
    return None


def _reject(conn, landing, source, relative, partition_key, size, mtime, reason, result) -> None:
    ledger.record_error(
        conn,
        source=source.name,
        path=relative,
        partition_key=partition_key,
        size_bytes=size,
        mtime=mtime,
        error=reason,
    )
    landing.move(relative, landing.settled_path(relative, errored=True))
    result.rejected.append(relative)


def _settle_leftover(landing: LandingZoneResource, load: ledger.Load, relative: str) -> None:
    """A finished load whose file is still in the landing folder (landed again with the same bytes, or the
    process stopped between commit and move): finish the move; the ledger already has it."""
    if load.status in ("archived", "errored", "duplicate", "superseded") and load.stored_path != relative:
        landing.move(relative, load.stored_path)


def data_partitions(conn: psycopg.Connection, landing: LandingZoneResource | None = None) -> dict:
    """For every partitioned source, the partitions that have loaded files (and, given the landing zone, files
    landed but not registered yet), by asset key."""
    found = {}
    for source in SOURCES:
        if source.partitioning == "none":
            continue
        keys = {
            str(load.partition_key) for load in ledger.all_live_loads(conn, source.name) if load.partition_key
        }
        for folder in source.folders if landing is not None else ():
            for path in landing.iter_files(folder):
                relative = landing.relative(path)
                values = source.match(relative)
                if values and in_range(values["date"], today=datetime.now(UTC).date()):
                    keys.add(str(source.partition_key(values)))
                elif source.dumps and source.dumps.matches(relative):
                    keys.update(str(source.partition_key({"date": day})) for day in event_days(source, path))
        found[source.asset_key] = keys
    return found
