"""One factory turns each configured landing source into its bronze asset (with checks and metadata);
`bronze_assets` adds the MongoDB collections' (`assets.bronze.mongo_extract`)."""

import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from psycopg import sql

from assets.bronze import checks, ledger
from assets.bronze.contracts import CONTRACTS, KnownSchema
from assets.bronze.discover import discover
from assets.bronze.mongo_extract import MONGO_SOURCES, build_mongo_asset
from assets.bronze.partition_load import FileOutcome, load_partition
from assets.bronze.sources import SOURCES, Source
from assets.bronze.tables import SCHEMA, column_schema, ensure_tables, table
from assets.conventions import MAY_STAY_EMPTY, OWNER, freshness_policy, retry_policy
from assets.partitions import Key
from resources import LandingZoneResource, PostgresResource

PREVIEW_ROWS = 5


class BronzeLoadConfig(dg.Config):
    """A run loads what is pending: new files, and files whose load did not finish. `reload_all` reloads every
    current file of the source (of the run's partitions, for a partitioned source)."""

    reload_all: bool = False
    # This run judges records by this contract instead of the source's (`evolve` accepts what a frozen source
    # refused: with `reload_all`, the refused files load and their fields join the known schema).
    contract: str | None = None


def build_bronze_asset(source: Source) -> dg.AssetsDefinition:
    @dg.asset(
        key=source.asset_key,
        group_name=source.domain,
        kinds={"postgres"},
        owners=[OWNER],
        description=source.description,
        partitions_def=source.partitions_def,
        # A backlog of many partitions loads in one run over their range, each partition in its own transaction.
        backfill_policy=dg.BackfillPolicy.single_run() if source.partitions_def else None,
        deps=[dg.AssetKey.from_user_string(source.pulled_by)] if source.pulled_by else None,
        tags={MAY_STAY_EMPTY: "true"} if source.pulled_by else None,
        check_specs=checks.check_specs(source),
        retry_policy=retry_policy(2),
        freshness_policy=freshness_policy(*source.freshness_hours) if source.freshness_hours else None,
        metadata={
            "dagster/table_name": f"{SCHEMA}.{source.name}",
            "dagster/column_schema": column_schema(source),
            "landing_patterns": dg.MetadataValue.json(list(source.patterns)),
            "natural_key": dg.MetadataValue.json(list(source.natural_key)),
            "schema_contract": source.contract,
        },
    )
    def bronze_asset(
        context: dg.AssetExecutionContext,
        config: BronzeLoadConfig,
        postgres: PostgresResource,
        landing: LandingZoneResource,
    ):
        return materialize(context, source, config, postgres, landing)

    return bronze_asset


@dataclass
class PartitionLoad:
    """What one partition's load did, and its checks."""

    partition_key: str | None
    metadata: dict
    checks: list[dg.AssetCheckResult]


def materialize(
    context: dg.AssetExecutionContext,
    source: Source,
    config: BronzeLoadConfig,
    postgres: PostgresResource,
    landing: LandingZoneResource,
):
    """Load each partition of the run (one, a range, or the unpartitioned source) in its own transaction. A
    partition that fails does not stop the others: they are materialized and checked, and the run then fails
    naming it (its loads stay retryable, so a re-run loads only what is left)."""
    if config.contract is not None and config.contract not in CONTRACTS:
        raise dg.Failure(
            description=f"contract {config.contract!r} is not one of {', '.join(CONTRACTS)}",
        )
    partition_keys = list(context.partition_keys) if source.partitions_def else [None]
    done: list[PartitionLoad] = []
    failed: dict[str, str] = {}
    with postgres.connect(autocommit=True) as conn:
        ledger.ensure_schema(conn)
        ensure_tables(conn, source)
        for partition_key in partition_keys:
            try:
                done.append(_load_one(context, conn, source, config, partition_key, landing))
            except Exception as exc:
                if len(partition_keys) == 1:
                    raise
                failed[str(partition_key)] = f"{type(exc).__name__}: {exc}"
                context.log.error(
                    f"{source.name} {partition_key}: load failed — {failed[str(partition_key)]}"
                )
    if len(partition_keys) == 1 and not failed:
        [one] = done
        return dg.MaterializeResult(metadata=one.metadata, check_results=one.checks)
    return _ranged_result(context, source, done, failed)


def _ranged_result(context, source: Source, done: list[PartitionLoad], failed: dict[str, str]):
    """A run over a range: every partition keeps its own metadata and check evaluations."""
    for load in done:
        for check in load.checks:
            context.log_event(
                dg.AssetCheckEvaluation(
                    asset_key=source.asset_key,
                    check_name=check.check_name,
                    passed=check.passed,
                    severity=check.severity,
                    metadata=check.metadata,
                    partition=load.partition_key,
                )
            )
    per_partition = {
        str(load.partition_key): {
            "files": load.metadata["files"],
            "records_read": load.metadata["records_read"],
            "rows_loaded": load.metadata["rows_loaded"],
            "quarantined": sum(load.metadata["quarantined_by_reason"].data.values()),
            "failed_checks": [c.check_name for c in load.checks if not c.passed],
        }
        for load in done
    }
    summary = {
        "partitions": len(done) + len(failed),
        "partitions_failed": dg.MetadataValue.json(failed),
        "per_partition": dg.MetadataValue.json(per_partition),
        "records_read": sum(p["records_read"] for p in per_partition.values()),
        "rows_loaded": sum(p["rows_loaded"] for p in per_partition.values()),
    }
    if failed:
        # The partitions that loaded are materialized one by one; the run fails for the others.
        for load in done:
            context.log_event(
                dg.AssetMaterialization(
                    source.asset_key, partition=load.partition_key, metadata={**load.metadata, **summary}
                )
            )
        raise dg.Failure(
            description=f"{source.name}: {len(failed)} of {len(done) + len(failed)} partitions failed to load: "
            + "; ".join(f"{key}: {error}" for key, error in failed.items()),
            metadata=summary,
        )
    for load in done:
        context.add_asset_metadata(load.metadata, partition_key=load.partition_key)
    by_check: dict[str, list[tuple[str, dg.AssetCheckResult]]] = {}
    for load in done:
        for check in load.checks:
            by_check.setdefault(check.check_name, []).append((str(load.partition_key), check))
    results = [
        dg.AssetCheckResult(
            check_name=name,
            passed=all(check.passed for _, check in outcomes),
            severity=outcomes[0][1].severity,
            metadata={
                "partitions": len(outcomes),
                "failed_partitions": dg.MetadataValue.json([key for key, c in outcomes if not c.passed]),
                "per_partition": dg.MetadataValue.json({key: _plain(c.metadata) for key, c in outcomes}),
            },
        )
        for name, outcomes in by_check.items()
    ]
    return dg.MaterializeResult(metadata=summary, check_results=results)


def _plain(metadata: dict) -> dict:
    return {name: getattr(value, "value", value) for name, value in metadata.items()}


def _load_one(
    context: dg.AssetExecutionContext,
    conn,
    source: Source,
    config: BronzeLoadConfig,
    partition_key: str | None,
    landing: LandingZoneResource,
) -> PartitionLoad:
    started = time.monotonic()
    # A run started by hand registers what landed since the sensor last looked.
    discover(conn, source, landing, only_partition=partition_key)
    current = ledger.live_loads(conn, source.name, partition_key) if source.partitions_def else []
    if config.reload_all:
        loads = current if source.partitions_def else ledger.all_live_loads(conn, source.name)
    elif source.partitions_def:
        # A partition loads whole (its duplicate screen sees every record of it), and only if it has work.
        loads = current if any(ledger.is_pending(load) for load in current) else []
    else:
        loads = ledger.pending_loads(conn, source.name)
    load_ids = [load.load_id for load in loads]
    scope = drift_scope(source, partition_key)
    recorded = ledger.known_schema(conn, scope) if load_ids else []
    # Drift is judged against what the scope knew before these loads; the contract against all it knows, so that
    # a partition loaded again accepts what its first load was accepted with. Nothing known yet: this load
    # establishes the schema.
    known_before = [(f, path, kind) for f, path, kind, first in recorded if first < min(load_ids)]
    known = KnownSchema.of([(p, k) for _, p, k, _ in recorded], source.configured_names) if recorded else None
    if not loads:
        context.log.info(f"{source.name} {partition_key or ''}: nothing new to load")
    ledger.mark_ingesting(conn, load_ids, context.run_id)
    try:
        with conn.transaction():
            outcomes = load_partition(
                conn,
                source,
                partition_key,
                loads,
                landing_root=Path(landing.root_path),
                settled_path=lambda o: landing.settled_path(o.load.path, errored=bool(o.error)),
                contract=config.contract or source.contract,
                known=known,
            )
            ledger.record_schema(
                conn,
                scope,
                {
                    o.load.load_id: {(p.field, p.path, p.json_type) for p in o.shapes.accepted}
                    for o in outcomes
                    if not o.error
                },
            )
    except Exception as exc:
        ledger.mark_failed(conn, load_ids, f"{type(exc).__name__}: {exc}")
        raise
    _settle_files(context, landing, outcomes)
    for outcome in outcomes:
        if outcome.error:
            context.log.warning(f"{source.name}: {outcome.load.path}: errored — {outcome.error}")
    partition_values = source.partition_values(partition_key)
    # Accounting covers every current load of the partition, reloaded now or not.
    accounted_ids = sorted({*load_ids, *(load.load_id for load in current)})
    results = [
        checks.accounted(conn, source, accounted_ids),
        checks.no_duplicate_records(conn, source, partition_values),
        checks.schema_drift(known_before, outcomes, config.contract or source.contract),
        checks.quarantine_rate(source, outcomes),
        checks.no_empty_files(outcomes),
    ]
    if source.partition_columns:
        results.append(checks.volume_in_recent_range(conn, source, partition_values))
    metadata = _metadata(conn, source, partition_values, outcomes, time.monotonic() - started)
    return PartitionLoad(partition_key, metadata, results)


def drift_scope(source: Source, partition_key: str | None) -> str:
    """Fields legitimately differ by network, so drift is judged against the same network's history."""
    if source.partitioning == "date_network" and partition_key:
        return f"{source.name}/{Key.parse(partition_key).network}"
    return source.name


def _settle_files(context, landing: LandingZoneResource, outcomes: list[FileOutcome]) -> None:
    """Move loaded files to archive/ or error/ — after the commit, so a crash in between only leaves a file the
    sensor recognises (same path and bytes as a finished load) and moves then."""
    for outcome in outcomes:
        target = landing.settled_path(outcome.load.path, errored=bool(outcome.error))
        current = (
            outcome.load.stored_path
            if landing.resolve(outcome.load.stored_path).exists()
            else outcome.load.path
        )
        if current != target and landing.resolve(current).exists():
            try:
                landing.move(current, target)
            except OSError as exc:
                context.log.warning(f"could not move {current} to {target}: {exc}")


def _metadata(conn, source: Source, partition_values, outcomes: list[FileOutcome], elapsed: float) -> dict:
    where = sql.SQL(" AND ").join(
        [sql.SQL("{} = %s").format(sql.Identifier(name)) for name, _ in source.partition_columns]
        or [sql.SQL("true")]
    )
    row_count = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {}").format(table(source), where), partition_values
    ).fetchone()[0]
    columns = [c.column for c in source.fields]
    preview = conn.execute(
        sql.SQL("SELECT {} FROM {} WHERE {} ORDER BY load_id, record_number LIMIT %s").format(
            sql.SQL(", ").join(map(sql.Identifier, ["source_file", "record_number", *columns])),
            table(source),
            where,
        ),
        (*partition_values, PREVIEW_ROWS),
    ).fetchall()
    schema = conn.execute(
        """SELECT column_name, data_type FROM information_schema.columns
           WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position""",
        (SCHEMA, source.name),
    ).fetchall()
    quarantined: dict[str, int] = {}
    for outcome in outcomes:
        for reason, count in outcome.quarantined.items():
            quarantined[reason] = quarantined.get(reason, 0) + count
    loaded = sum(o.loaded for o in outcomes)
    header = ["source_file", "record_number", *columns]
    markdown = "| " + " | ".join(header) + " |\n|" + "---|" * len(header) + "\n"
    markdown += "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in preview)
    return {
        "dagster/row_count": row_count,
        "rows_loaded": loaded,
        "records_read": sum(o.read for o in outcomes),
        "files": len(outcomes),
        "files_errored": sum(1 for o in outcomes if o.error),
        "bytes": sum(o.load.size_bytes for o in outcomes),
        "quarantined_by_reason": dg.MetadataValue.json(quarantined),
        "rows_per_second": dg.MetadataValue.float(round(loaded / elapsed, 1) if elapsed else 0.0),
        "preview": dg.MetadataValue.md(markdown),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=name, type=data_type) for name, data_type in schema]
        ),
    }


bronze_assets = [build_bronze_asset(source) for source in SOURCES] + [
    build_mongo_asset(source) for source in MONGO_SOURCES
]
