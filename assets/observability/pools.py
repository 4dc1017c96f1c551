"""Who holds a pool. Pools are taken per run (platform/dagster.yaml): a run that needs a full pool waits in the
queue, and `pool_watch` writes into that run's own log which run holds the pool, and since when."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg

HOLDING = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def pool_limit(instance: dg.DagsterInstance, pool: str) -> int | None:
    """The pool's limit: as set on the instance, else the instance's default (None: unlimited)."""
    for limit in instance.event_log_storage.get_pool_limits():
        if limit.name == pool:
            return limit.limit
    return instance.global_op_concurrency_default_limit


def pools_of(run: dg.DagsterRun) -> set[str]:
    return set(run.run_op_concurrency.all_pools or []) if run.run_op_concurrency else set()


def holders(
    instance: dg.DagsterInstance, pools: set[str], *, exclude: set[str] = frozenset()
) -> dict[str, list[dg.RunRecord]]:
    """For each of `pools` that is full, the in-progress runs that take it (runs in `exclude` not counted)."""
    records = [
        record
        for record in instance.get_run_records(filters=dg.RunsFilter(statuses=HOLDING))
        if record.dagster_run.run_id not in exclude
    ]
    full = {}
    for pool in sorted(pools):
        taking = [record for record in records if pool in pools_of(record.dagster_run)]
        limit = pool_limit(instance, pool)
        if taking and limit is not None and len(taking) >= limit:
            full[pool] = taking
    return full


def describe(pool: str, records: list[dg.RunRecord]) -> str:
    def one(record: dg.RunRecord) -> str:
        run = record.dagster_run
        assets = ", ".join(sorted(key.to_user_string() for key in run.asset_selection or []))
        since = record.start_time or record.create_timestamp.timestamp()
        return (
            f"run {run.run_id} ({assets or run.job_name}; {run.status.value} since "
            f"{datetime.fromtimestamp(since, UTC):%Y-%m-%d %H:%M:%S} UTC)"
        )

    return f"pool `{pool}` is held by " + ", ".join(one(record) for record in records)


@dg.sensor(
    name="pool_watch",
    description="Writes into the log of every run queued for a full pool which run holds that pool, and since "
    "when (again whenever the holder changes).",
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def pool_watch(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    told: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
    now_told: dict[str, str] = {}
    queued = context.instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
    for run in queued:
        full = holders(context.instance, pools_of(run))
        if not full:
            continue
        message = "Waiting in the queue: " + "; ".join(describe(p, r) for p, r in full.items())
        now_told[run.run_id] = message
        if told.get(run.run_id) != message:
            context.instance.report_engine_event(message, run)
    context.update_cursor(json.dumps(now_told, sort_keys=True))
    return dg.SkipReason(f"{len(now_told)} queued runs wait for a pool")
