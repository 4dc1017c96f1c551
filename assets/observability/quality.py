"""Data quality over time: every asset-check outcome copied from Dagster's event log into `gold.check_history`,
and a dashboard asset whose materialization page shows pass rates by layer, failing checks, freshness
state, a plot and the measured rates (the media_count mismatch per network and day) — so the asset page in the
UI is the dashboard."""

import base64
import functools
import io
from datetime import UTC, datetime

import dagster as dg
from dagster._core.events import DagsterEventType
from psycopg.types.json import Jsonb

from assets.automation.conditions import scheduled
from assets.conventions import OWNER
from resources import PostgresResource
from resources.postgres import serialized_ddl

HISTORY = ["gold", "check_history"]
PAGE = 5000
# Days of the media_count mismatch rate the dashboard shows.
MISMATCH_DAYS = 7

_DDL = """
CREATE SCHEMA IF NOT EXISTS gold;
CREATE TABLE IF NOT EXISTS gold.check_history (
    storage_id bigint PRIMARY KEY,
    asset_key text NOT NULL,
    layer text NOT NULL,
    check_name text NOT NULL,
    passed boolean NOT NULL,
    severity text NOT NULL,
    run_id text NOT NULL,
    evaluated_at timestamptz NOT NULL,
    metadata jsonb NOT NULL
);
ALTER TABLE gold.check_history ADD COLUMN IF NOT EXISTS partition_key text;
CREATE INDEX IF NOT EXISTS check_history_check_idx ON gold.check_history (asset_key, check_name, storage_id DESC);
"""


@dg.asset(
    key=HISTORY,
    group_name="observability",
    kinds={"postgres"},
    owners=[OWNER],
    description="Every asset-check outcome (asset, check, passed, severity, run, time), appended from Dagster's "
    "event log since the last copied event.",
    automation_condition=scheduled("*/5 * * * *"),
)
def check_history(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    with postgres.connect(autocommit=True) as conn:
        with serialized_ddl(conn, "strata.gold.check_history"):
            conn.execute(_DDL)
        (after,) = conn.execute("SELECT max(storage_id) FROM gold.check_history").fetchone()

        partition_of_run = functools.cache(functools.partial(run_partition, context.instance))
        added = 0
        while True:
            records = context.instance.get_event_records(
                dg.EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after),
                limit=PAGE,
                ascending=True,
            )
            if not records:
                break
            rows = [_row(record, partition_of_run) for record in records]
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    """INSERT INTO gold.check_history (storage_id, asset_key, layer, check_name, passed, severity,
                                                       run_id, evaluated_at, metadata, partition_key)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT (storage_id) DO NOTHING""",
                    rows,
                )
            added += len(rows)
            after = records[-1].storage_id
        (total,) = conn.execute("SELECT count(*) FROM gold.check_history").fetchone()
    return dg.MaterializeResult(metadata={"new_outcomes": added, "dagster/row_count": total})


def run_partition(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The partition of a single-partition run: the one its in-asset check evaluations are about (they name none)."""
    run = instance.get_run_by_id(run_id)
    return run.tags.get("dagster/partition") if run else None


def _row(record: dg.EventLogRecord, partition_of_run) -> tuple:
    evaluation = record.event_log_entry.dagster_event.event_specific_data
    key = evaluation.asset_key.to_user_string()
    metadata = {name: str(value.value) for name, value in evaluation.metadata.items()}
    return (
        record.storage_id,
        key,
        evaluation.asset_key.path[0],
        evaluation.check_name,
        evaluation.passed,
        evaluation.severity.value,
        record.run_id,
        datetime.fromtimestamp(record.timestamp, UTC),
        Jsonb(metadata),
        # A check returned with a partition's materialization names no partition: its run's is the one.
        evaluation.partition or partition_of_run(record.run_id),
    )


@dg.asset(
    key=["gold", "data_quality_dashboard"],
    deps=[HISTORY],
    group_name="observability",
    kinds={"postgres"},
    owners=[OWNER],
    description="The data-quality dashboard: open this asset's latest materialization.",
    # With the history it reads, in the same run.
    automation_condition=scheduled("*/5 * * * *"),
)
def data_quality_dashboard(
    context: dg.AssetExecutionContext, postgres: PostgresResource
) -> dg.MaterializeResult:
    with postgres.connect() as conn:
        # The latest outcome of every check, per partition for the partitioned ones.
        latest = conn.execute(
            """SELECT DISTINCT ON (asset_key, check_name, partition_key)
                      layer, asset_key, check_name, partition_key, passed, severity, storage_id, metadata
               FROM gold.check_history ORDER BY asset_key, check_name, partition_key, storage_id DESC"""
        ).fetchall()
        failing = conn.execute(_FAILING_SINCE).fetchall()
        daily = conn.execute(
            """SELECT date_trunc('day', evaluated_at)::date AS day, layer, avg(passed::int)::float8
               FROM gold.check_history GROUP BY 1, 2 ORDER BY 1, 2"""
        ).fetchall()
        quarantine = _quarantine_by_source_and_reason(conn)
        mismatch = _media_count_mismatch(conn)
    by_layer: dict[str, list[bool]] = {}
    for layer, *_rest, passed, _severity, _id, _metadata in latest:
        by_layer.setdefault(layer, []).append(passed)
    keys = list(context.instance.get_asset_keys())
    freshness = context.instance.get_freshness_state_records(keys)
    states = {key.to_user_string(): record.freshness_state.value for key, record in freshness.items()}

    markdown = "## Failing now\n\n"
    if failing:
        markdown += (
            "| check | asset | partition | severity | failing since | failed rows | rows kept in |\n"
            "|---|---|---|---|---|---|---|\n"
        )
        markdown += "".join(
            f"| {check} | `{asset}` | {partition or ''} | {severity} | {since:%Y-%m-%d %H:%M} UTC | {rows or ''} "
            f"| {f'`{kept}`' if kept else ''} |\n"
            for asset, check, partition, severity, since, rows, kept in failing
        )
    else:
        markdown += "nothing\n"
    markdown += "\n## Checks: latest outcome per check and partition\n\n"
    markdown += "| layer | checks | passing | pass rate |\n|---|---|---|---|\n"
    for layer, outcomes in sorted(by_layer.items()):
        markdown += f"| {layer} | {len(outcomes)} | {sum(outcomes)} | {sum(outcomes) / len(outcomes):.1%} |\n"
    markdown += quarantine
    markdown += "\n## Freshness\n\n| asset | state |\n|---|---|\n"
    markdown += (
        "".join(f"| {key} | {state} |\n" for key, state in sorted(states.items()))
        or "| (not evaluated yet) | |\n"
    )
    if daily:
        markdown += f"\n## Pass rate per day\n\n![pass rate per day](data:image/png;base64,{_plot(daily)})\n"
    markdown += mismatch

    passed = sum(row[4] for row in latest)
    return dg.MaterializeResult(
        metadata={
            "dashboard": dg.MetadataValue.md(markdown),
            "checks": len(latest),
            "pass_rate": dg.MetadataValue.float(round(passed / len(latest), 4) if latest else 1.0),
            "failing_checks": len(failing),
            "degraded_assets": sum(1 for state in states.values() if state in ("WARN", "FAIL")),
        }
    )


# Every (check, asset, partition) whose latest outcome failed, since the first failure after its last pass, with
# the failing rows a dbt test counted.
_FAILING_SINCE = """
WITH latest AS (
    SELECT DISTINCT ON (asset_key, check_name, partition_key)
           asset_key, check_name, partition_key, passed, severity, storage_id, metadata
    FROM gold.check_history ORDER BY asset_key, check_name, partition_key, storage_id DESC
)
SELECT latest.asset_key, latest.check_name, latest.partition_key, latest.severity,
       (SELECT min(h.evaluated_at) FROM gold.check_history h
        WHERE h.asset_key = latest.asset_key AND h.check_name = latest.check_name
          AND h.partition_key IS NOT DISTINCT FROM latest.partition_key
          AND h.storage_id > coalesce((
              SELECT max(p.storage_id) FROM gold.check_history p
              WHERE p.asset_key = latest.asset_key AND p.check_name = latest.check_name
                AND p.partition_key IS NOT DISTINCT FROM latest.partition_key AND p.passed), 0)),
       latest.metadata ->> 'dagster_dbt/failed_row_count', latest.metadata ->> 'dq_failures_table'
FROM latest WHERE NOT latest.passed
ORDER BY latest.severity, latest.asset_key, latest.check_name, latest.partition_key
"""


def _quarantine_by_source_and_reason(conn) -> str:
    """Records bronze set aside, per source and reason (a pandas pivot), once bronze exists."""
    if conn.execute("SELECT to_regclass('bronze.quarantine')").fetchone()[0] is None:
        return ""
    import pandas

    counts = pandas.DataFrame(
        conn.execute("SELECT source, reason, count(*) FROM bronze.quarantine GROUP BY 1, 2").fetchall(),
        columns=["source", "reason", "records"],
    )
    if counts.empty:
        return "\n## Quarantine by source and reason\n\nnothing set aside\n"
    table = counts.pivot_table(
        index="source", columns="reason", values="records", fill_value=0, aggfunc="sum"
    )
    return "\n## Quarantine by source and reason\n\n" + table.to_markdown() + "\n"


def _media_count_mismatch(conn) -> str:
    """The media_count mismatch rate per network over the last days with posts (gold.post_media_quality), once
    that mart exists: a table, a column per day."""
    if conn.execute("SELECT to_regclass('gold.post_media_quality')").fetchone()[0] is None:
        return ""
    rows = conn.execute(
        """SELECT post_date, network, mismatch_rate FROM gold.post_media_quality
           WHERE post_date > (SELECT max(post_date) FROM gold.post_media_quality) - %s ORDER BY 1, 2""",
        (MISMATCH_DAYS,),
    ).fetchall()
    if not rows:
        return ""
    days = sorted({day for day, _, _ in rows})
    rates = {(day, network): rate for day, network, rate in rows}
    markdown = "\n## media_count mismatch rate per network (WARN above 10 %)\n\n"
    markdown += "| network | " + " | ".join(f"{day:%m-%d}" for day in days) + " |\n"
    markdown += "|---|" + "---|" * len(days) + "\n"
    for network in sorted({network for _, network, _ in rows}):
        cells = [f"{rates[(day, network)]:.1%}" if (day, network) in rates else "" for day in days]
        markdown += f"| {network} | " + " | ".join(cells) + " |\n"
    return markdown


def _plot(daily: list[tuple]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 3))
    for layer in sorted({layer for _, layer, _ in daily}):
        points = [(day, rate) for day, name, rate in daily if name == layer]
        axes.plot([d for d, _ in points], [r * 100 for _, r in points], marker="o", label=layer)
    axes.set_ylabel("checks passing (%)")
    axes.set_ylim(0, 105)
    axes.legend(loc="lower left")
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    pyplot.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()
