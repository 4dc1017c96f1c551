"""Data quality over time: every asset-check outcome copied from Dagster's event log into `gold.check_history`,
and a dashboard asset whose materialization page reads at a glance — what is failing now, pass rates by layer and
per day, rows the row rules dropped and warned about, quarantine by source and reason, freshness now and over
time, rows loaded over time, and the media_count mismatch rate per network and day — so the asset page in the UI
is the dashboard. pandas does the frame work (pivots, the freshness timeline) and plots through matplotlib."""

import base64
import functools
import io
from datetime import UTC, datetime
from typing import NamedTuple

import dagster as dg
from dagster._core.events import DagsterEventType
from psycopg import sql
from psycopg.types.json import Jsonb

from assets.automation.conditions import scheduled
from assets.conventions import OWNER
from resources import PostgresResource
from resources.postgres import serialized_ddl

HISTORY = ["gold", "check_history"]
PAGE = 5000
# Days of the media_count mismatch rate the dashboard shows.
MISMATCH_DAYS = 7
# Days of rows loaded per source the volume plot shows, and the freshness changes its plot reads (newest first).
VOLUME_DAYS = 30
FRESHNESS_EVENTS = 5000
# The schema of the tables of failed rows (the models' row rules, and dbt's stored test failures), and what a row
# rule does with a row that breaks it, short of failing the run.
FAILURES_SCHEMA = "dq_failures"
RULE_ACTIONS = ("drop", "warn")

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
    # pandas costs seconds to import: the asset's run pays it, not the code location.
    import pandas

    with postgres.connect() as conn:
        # The latest outcome of every check, per partition for the partitioned ones.
        latest = pandas.DataFrame(
            conn.execute(
                """SELECT DISTINCT ON (asset_key, check_name, partition_key) layer, passed
                   FROM gold.check_history ORDER BY asset_key, check_name, partition_key, storage_id DESC"""
            ).fetchall(),
            columns=["layer", "passed"],
        )
        failing = conn.execute(_FAILING_SINCE).fetchall()
        daily = pandas.DataFrame(
            conn.execute(
                """SELECT date_trunc('day', evaluated_at)::date, layer, avg(passed::int)::float8 * 100
                   FROM gold.check_history GROUP BY 1, 2 ORDER BY 1, 2"""
            ).fetchall(),
            columns=["day", "layer", "passing"],
        )
        rules = _rows_per_rule(conn, pandas)
        quarantine = _quarantine_by_source_and_reason(conn, pandas)
        volume = _volume_over_time(conn, pandas)
        mismatch = _media_count_mismatch(conn)
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
    by_layer = latest.groupby("layer")["passed"].agg(["count", "sum", "mean"])
    for layer, row in by_layer.iterrows():
        markdown += f"| {layer} | {int(row['count'])} | {int(row['sum'])} | {row['mean']:.1%} |\n"
    if not daily.empty:
        per_day = daily.pivot(index="day", columns="layer", values="passing")
        markdown += f"\n## Pass rate per day\n\n![pass rate per day]({_plot(per_day, 'checks passing (%)', (0, 105))})\n"
    markdown += rules.markdown
    markdown += quarantine
    markdown += "\n## Freshness\n\n| asset | state |\n|---|---|\n"
    markdown += (
        "".join(f"| {key} | {state} |\n" for key, state in sorted(states.items()))
        or "| (not evaluated yet) | |\n"
    )
    degraded = _degraded_over_time(context.instance, pandas)
    if degraded is not None:
        markdown += (
            "\n## Freshness over time: assets at WARN and FAIL\n\n"
            f"![freshness over time]({_plot(degraded, 'assets', step=True)})\n"
        )
    if volume is not None:
        markdown += (
            f"\n## Volume over time: rows loaded per source and day (last {VOLUME_DAYS} days with loads)\n\n"
            f"![volume over time]({_plot(volume, 'rows loaded')})\n"
        )
    markdown += mismatch

    passed = int(latest["passed"].sum())
    return dg.MaterializeResult(
        metadata={
            "dashboard": dg.MetadataValue.md(markdown),
            "checks": len(latest),
            "pass_rate": dg.MetadataValue.float(round(passed / len(latest), 4) if len(latest) else 1.0),
            "failing_checks": len(failing),
            "rows_dropped": rules.dropped,
            "rows_warned": rules.warned,
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


def _quarantine_by_source_and_reason(conn, pandas) -> str:
    """Records bronze set aside, per source and reason (a pandas pivot), once bronze exists."""
    if conn.execute("SELECT to_regclass('bronze.quarantine')").fetchone()[0] is None:
        return ""
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


class RulesSummary(NamedTuple):
    markdown: str
    dropped: int
    warned: int


def _rows_per_rule(conn, pandas) -> RulesSummary:
    """Rows the models' row rules dropped and warned about, per model and rule: every table of `dq_failures`
    with `rule` and `action` columns is one model's (the tables dbt tests store their failing rows in have
    neither)."""
    tables = conn.execute(
        """SELECT table_name FROM information_schema.columns
           WHERE table_schema = %s AND column_name IN ('rule', 'action')
           GROUP BY table_name HAVING count(*) = 2 ORDER BY table_name""",
        (FAILURES_SCHEMA,),
    ).fetchall()
    if not tables:
        return RulesSummary("", 0, 0)
    counts = sql.SQL(" UNION ALL ").join(
        sql.SQL("SELECT {model}, rule, action, count(*) FROM {table} GROUP BY rule, action").format(
            model=sql.Literal(name), table=sql.Identifier(FAILURES_SCHEMA, name)
        )
        for (name,) in tables
    )
    frame = pandas.DataFrame(conn.execute(counts).fetchall(), columns=["model", "rule", "action", "rows"])
    markdown = "\n## Rows dropped and warned per rule\n\n"
    if frame.empty:
        return RulesSummary(markdown + "no row broke a rule\n", 0, 0)
    table = frame.pivot_table(
        index=["model", "rule"], columns="action", values="rows", aggfunc="sum", fill_value=0
    ).reindex(columns=list(RULE_ACTIONS), fill_value=0)
    markdown += "| model | rule | dropped | warned |\n|---|---|---|---|\n"
    markdown += "".join(
        f"| {model} | {rule} | {row['drop']:,} | {row['warn']:,} |\n"
        for (model, rule), row in table.iterrows()
    )
    return RulesSummary(markdown, int(table["drop"].sum()), int(table["warn"].sum()))


def _volume_over_time(conn, pandas):
    """Rows loaded per source and day, from the ledger's current loads: the day of the partition, or of the load
    for an unpartitioned source (None before bronze has loaded anything)."""
    if conn.execute("SELECT to_regclass('ledger.loads')").fetchone()[0] is None:
        return None
    frame = pandas.DataFrame(
        conn.execute(
            """SELECT coalesce(left(partition_key, 10)::date, finished_at::date), source, sum(records_loaded)::bigint
               FROM ledger.loads WHERE status = 'archived' GROUP BY 1, 2"""
        ).fetchall(),
        columns=["day", "source", "rows"],
    )
    if frame.empty:
        return None
    per_day = frame.pivot_table(index="day", columns="source", values="rows", aggfunc="sum", fill_value=0)
    return per_day.sort_index().tail(VOLUME_DAYS)


def _degraded_over_time(instance: dg.DagsterInstance, pandas):
    """How many assets were at WARN and at FAIL after each freshness change the freshness daemon recorded (None
    before it recorded any)."""
    records = instance.get_event_records(
        dg.EventRecordsFilter(event_type=DagsterEventType.FRESHNESS_STATE_CHANGE), limit=FRESHNESS_EVENTS
    )
    if not records:
        return None
    changes = pandas.DataFrame(
        [
            (
                datetime.fromtimestamp(r.timestamp, UTC),
                r.event_log_entry.dagster_event.event_specific_data.key.to_user_string(),
                r.event_log_entry.dagster_event.event_specific_data.new_state.value,
            )
            for r in records
        ],
        columns=["at", "asset", "state"],
    )
    # Each asset's state, carried forward from its last change; then the assets in each state at every change.
    states = (
        changes.pivot_table(index="at", columns="asset", values="state", aggfunc="last").sort_index().ffill()
    )
    return pandas.DataFrame({state: (states == state).sum(axis=1) for state in ("WARN", "FAIL")})


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


def _plot(frame, ylabel: str, ylim: tuple[float, float] | None = None, *, step: bool = False) -> str:
    """A line per column of `frame` over its index, as a PNG data URI the asset page shows inline."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    axes = frame.plot(
        figsize=(7, 3), marker=None if step else "o", drawstyle="steps-post" if step else "default"
    )
    axes.set_xlabel("")
    axes.set_ylabel(ylabel)
    if ylim:
        axes.set_ylim(*ylim)
    axes.legend(loc="upper left", fontsize="small", ncol=2)
    figure = axes.get_figure()
    figure.autofmt_xdate()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    pyplot.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
