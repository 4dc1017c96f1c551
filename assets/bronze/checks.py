"""The checks every bronze materialization returns, computed from the database after the load commits."""

from __future__ import annotations

import dagster as dg
import psycopg
from psycopg import sql

from assets.bronze.contracts import NEW_FIELD, ROOT, SCHEMA_FROZEN, TYPE_CHANGE, child_path
from assets.bronze.duplicates import duplicate_scope
from assets.bronze.partition_load import FileOutcome
from assets.bronze.sources import Source
from assets.bronze.tables import QUARANTINE, table
from assets.volume import CHECK_NAME as VOLUME
from assets.volume import DESCRIPTION as VOLUME_DESCRIPTION
from assets.volume import partition_volume

ACCOUNTED = "accounted"
NO_DUPLICATE_RECORDS = "no_duplicate_records"
SCHEMA_DRIFT = "schema_drift"
QUARANTINE_RATE = "quarantine_rate"
NO_EMPTY_FILES = "no_empty_files"


def check_specs(source: Source) -> list[dg.AssetCheckSpec]:
    """Checked per partition: a run over a range records each partition's outcome (an evaluation with its
    partition), and one summary naming the partitions that failed."""
    key = source.asset_key
    return [
        dg.AssetCheckSpec(
            ACCOUNTED,
            asset=key,
            blocking=True,
            description="Per load: records read = loaded + quarantined.",
        ),
        dg.AssetCheckSpec(
            NO_DUPLICATE_RECORDS,
            asset=key,
            blocking=True,
            description="No two rows of a partition share a record hash (byte-identical records).",
        ),
        dg.AssetCheckSpec(
            SCHEMA_DRIFT,
            asset=key,
            description="The records' schema against the source's history: top-level fields new or missing, "
            "nested fields new, fields whose JSON type changed (null is no type); with what the source's contract "
            "did about it.",
        ),
        dg.AssetCheckSpec(
            QUARANTINE_RATE,
            asset=key,
            description=f"Share of records quarantined stays under {source.quarantine_warn_rate:.0%}.",
        ),
        *(
            [dg.AssetCheckSpec(VOLUME, asset=key, description=VOLUME_DESCRIPTION)]
            if source.partition_columns
            else []
        ),
        dg.AssetCheckSpec(
            NO_EMPTY_FILES,
            asset=key,
            description="Every file loaded held records: an empty export or API response is a problem at the "
            "sender, not a success (WARN, naming the files).",
        ),
    ]


def accounted(conn: psycopg.Connection, source: Source, load_ids: list[int]) -> dg.AssetCheckResult:
    rows = conn.execute(
        sql.SQL(
            """SELECT l.load_id, l.path, coalesce(l.records_read, 0),
                      (SELECT count(*) FROM {table} b WHERE b.load_id = l.load_id),
                      (SELECT count(*) FROM {quarantine} q WHERE q.load_id = l.load_id AND q.value_path IS NULL)
               FROM ledger.loads l WHERE l.load_id = ANY(%s) ORDER BY l.load_id"""
        ).format(table=table(source), quarantine=QUARANTINE),
        (load_ids,),
    ).fetchall()
    off = [
        {"load_id": load_id, "path": path, "read": read, "loaded": loaded, "quarantined": quarantined}
        for load_id, path, read, loaded, quarantined in rows
        if read != loaded + quarantined
    ]
    return dg.AssetCheckResult(
        check_name=ACCOUNTED,
        passed=not off,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "loads": len(rows),
            "records_read": sum(r[2] for r in rows),
            "loaded": sum(r[3] for r in rows),
            "quarantined": sum(r[4] for r in rows),
            "unaccounted_loads": dg.MetadataValue.json(off),
        },
    )


def no_duplicate_records(
    conn: psycopg.Connection, source: Source, partition_values: tuple[object, ...]
) -> dg.AssetCheckResult:
    where = sql.SQL(" AND ").join(
        [sql.SQL("{} = %s").format(sql.Identifier(name)) for name, _ in source.partition_columns]
        or [sql.SQL("true")]
    )
    duplicated = conn.execute(
        sql.SQL("SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} GROUP BY {} HAVING count(*) > 1) d").format(
            table(source),
            where,
            sql.SQL(", ").join([sql.Identifier("record_hash"), *duplicate_scope(source)]),
        ),
        partition_values,
    ).fetchone()[0]
    return dg.AssetCheckResult(
        check_name=NO_DUPLICATE_RECORDS,
        passed=duplicated == 0,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"duplicated_hashes": duplicated},
    )


def schema_drift(
    known_before: list[tuple[str, str, str]], outcomes: list[FileOutcome], contract: str
) -> dg.AssetCheckResult:
    """`known_before`: the (field, path, JSON type) pairs the scope knew before these loads; the loads' records
    are compared with it, those a contract set aside or refused included: drift is what the sender did."""
    seen = set().union(*(o.shapes.seen for o in outcomes)) if outcomes else set()
    known_types: dict[str, set[str]] = {}
    for _, path, kind in known_before:
        known_types.setdefault(path, set()).add(kind)
    known_names = {name for name, _, _ in known_before}
    seen_names = {pair.field for pair in seen}
    new = sorted(seen_names - known_names) if known_before else []
    missing = sorted(known_names - seen_names) if seen else []
    seen_types: dict[str, set[str]] = {}
    for pair in seen:
        seen_types.setdefault(pair.path, set()).add(pair.json_type)
    nested = []
    if known_before:
        fresh = {
            pair.path
            for pair in seen
            if pair.path not in known_types
            and pair.field in known_names
            and pair.path != child_path(ROOT, pair.field)
        }
        # A new object's keys are new too: the object's own path says it.
        nested = sorted(
            p for p in fresh if not any(p.startswith(o) and p[len(o)] in ".[" for o in fresh if o != p)
        )
    type_changes = []
    for path, kinds in sorted(seen_types.items()):
        typed = known_types.get(path, set()) - {"null"}
        arrived = kinds - typed - {"null"}
        if typed and arrived:
            type_changes.append({"path": path, "known": sorted(typed), "seen": sorted(arrived)})
    refused = [o.load.path for o in outcomes if o.quarantined.get(SCHEMA_FROZEN)]
    return dg.AssetCheckResult(
        check_name=SCHEMA_DRIFT,
        passed=not new and not missing and not nested and not type_changes,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "new_fields": dg.MetadataValue.json(new),
            "missing_fields": dg.MetadataValue.json(missing),
            "new_nested_fields": dg.MetadataValue.json(nested),
            "type_changes": dg.MetadataValue.json(type_changes),
            "fields_seen": len(seen_names),
            "contract": contract,
            "rows_discarded": sum(
                o.quarantined.get(r, 0) for o in outcomes for r in (NEW_FIELD, TYPE_CHANGE)
            ),
            "values_discarded": sum(sum(o.values_discarded.values()) for o in outcomes),
            "files_refused": dg.MetadataValue.json(refused),
        },
    )


def quarantine_rate(source: Source, outcomes: list[FileOutcome]) -> dg.AssetCheckResult:
    read = sum(o.read for o in outcomes)
    quarantined = sum(sum(o.quarantined.values()) for o in outcomes)
    rate = quarantined / read if read else 0.0
    return dg.AssetCheckResult(
        check_name=QUARANTINE_RATE,
        passed=rate <= source.quarantine_warn_rate,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rate": dg.MetadataValue.float(round(rate, 6)), "quarantined": quarantined, "read": read},
    )


def no_empty_files(outcomes: list[FileOutcome]) -> dg.AssetCheckResult:
    empty = [o.load.path for o in outcomes if o.read == 0 and not o.error]
    return dg.AssetCheckResult(
        check_name=NO_EMPTY_FILES,
        passed=not empty,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"files_loaded": len(outcomes), "empty_files": dg.MetadataValue.json(empty)},
    )


def volume_in_recent_range(
    conn: psycopg.Connection, source: Source, partition_values: tuple[object, ...]
) -> dg.AssetCheckResult:
    """The partition's row count against the same weekday (and network) of the weeks before it."""
    return partition_volume(
        conn, table(source), [name for name, _ in source.partition_columns], partition_values
    )
