"""The sensors that raise alerts (a failed run, a failed check, an asset whose freshness degrades) and the notice
that a run refreshed gold. Every alert names its severity: ERROR for a failed run, a failed ERROR check (an empty
partition where history has rows, say) and freshness at FAIL; WARN for a failed WARN check (a partition's volume
out of its range, say) and freshness at WARN. An ERROR check alerts on every failure; a WARN check when it starts
failing (its previous evaluation of the same partition passed, or there was none), not again while it stays
failed. Where alerts go, and how a storm is held back, is the `alerts` resource's business (resources.alerts)."""

import functools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import dagster as dg
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.event_api import PartitionKeyFilter
from dagster._core.events import DagsterEventType
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from assets.observability.quality import HISTORY, run_partition
from resources import AlertWebhookResource
from resources.alerts import Storm

ERROR, WARN = dg.AssetCheckSeverity.ERROR.value, dg.AssetCheckSeverity.WARN.value
ICONS = {ERROR: ":red_circle:", WARN: ":warning:"}
DONE = {AssetCheckExecutionRecordStatus.SUCCEEDED, AssetCheckExecutionRecordStatus.FAILED}
STORM_KEY = "strata/alert_storm"
# How many of a check's latest evaluations (all partitions) a WARN failure is compared with.
HISTORY_LOOKBACK = 200


class Alert(NamedTuple):
    text: str
    severity: str
    key: dg.AssetKey


@dg.run_failure_sensor(
    name="run_failure_alert",
    description="Alerts (ERROR) when any run of this code location fails.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
)
def run_failure_alert(context: dg.RunFailureSensorContext, alerts: AlertWebhookResource) -> None:
    run = context.dagster_run
    reason = context.failure_event.message or "no message"
    # A run whose worker died can be reported failed twice, by the code server that launched it and by run
    # monitoring, at the same moment: one alert per run, on its first failure event.
    first = next(iter(context.instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)), None)
    if first is not None and first.dagster_event != context.failure_event:
        context.log.info(f"run {run.run_id} reported failed again ({reason}): alerted on its first failure")
        return
    owners = _owners(context.repository_def, run.asset_selection or ())
    text = f"{ICONS[ERROR]} {ERROR}: run `{run.run_id}` of `{run.job_name}` failed: {reason}"
    with _storm(context.instance) as storm:
        alerts.send(context.log, text, ERROR, owners, storm, time.time())


@dg.sensor(
    name="quality_alert_sensor",
    description="Alerts on failed asset checks (ERROR ones every time, WARN ones when they start failing) and on "
    "assets whose freshness degrades, at most `max_per_window` per receiver and window, then one summary.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
)
def quality_alert_sensor(
    context: dg.SensorEvaluationContext, alerts: AlertWebhookResource
) -> dg.SkipReason | None:
    after = int(context.cursor) if context.cursor else None
    records = []
    for event_type in (DagsterEventType.ASSET_CHECK_EVALUATION, DagsterEventType.FRESHNESS_STATE_CHANGE):
        records += context.instance.get_event_records(
            dg.EventRecordsFilter(event_type=event_type, after_cursor=after), limit=1000, ascending=True
        )
    records.sort(key=lambda record: record.storage_id)
    partition_of_run = functools.cache(functools.partial(run_partition, context.instance))
    raised = [alert for record in records if (alert := _alert(context.instance, record, partition_of_run))]
    with _storm(context.instance) as storm:
        # Every tick, new alerts or not: a storm that is over ends with its summary.
        now = time.time()
        alerts.summarize_held(context.log, storm, now)
        for alert in raised:
            owners = _owners(context.repository_def, [alert.key])
            alerts.send(context.log, alert.text, alert.severity, owners, storm, now)
    if records:
        context.update_cursor(str(records[-1].storage_id))
    return None if raised else dg.SkipReason("no failed checks to alert on, no freshness degradation")


@contextmanager
def _storm(instance: dg.DagsterInstance) -> Iterator[Storm]:
    """The storm state of every receiver, shared by the alerting sensors in the instance's cursor storage: a
    receiver's limit counts every alert it gets, a failed run's as a failed check's."""
    stored = instance.daemon_cursor_storage.get_cursor_values({STORM_KEY}).get(STORM_KEY)
    storm = Storm.from_json(json.loads(stored) if stored else {})
    yield storm
    instance.daemon_cursor_storage.set_cursor_values({STORM_KEY: json.dumps(storm.to_json())})


def _alert(instance: dg.DagsterInstance, record: dg.EventLogRecord, partition_of_run) -> Alert | None:
    """The alert an event raises, if any."""
    event = record.event_log_entry.dagster_event
    data = event.event_specific_data
    if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
        severity = data.severity.value
        partition = data.partition or partition_of_run(record.run_id)
        if data.passed or (
            severity == WARN and not _starts_failing(instance, record, data, partition, partition_of_run)
        ):
            return None
        where = f" partition `{partition}`" if partition else ""
        text = (
            f"{ICONS[severity]} {severity}: check `{data.check_name}` on `{data.asset_key.to_user_string()}`"
            f"{where} failed in run `{record.run_id}`{_detail(data.metadata)}"
        )
        return Alert(text, severity, data.asset_key)
    if data.new_state in (FreshnessState.WARN, FreshnessState.FAIL):
        severity = WARN if data.new_state == FreshnessState.WARN else ERROR
        text = (
            f":hourglass: {severity}: `{data.key.to_user_string()}` freshness "
            f"{data.previous_state.value} → {data.new_state.value}"
        )
        return Alert(text, severity, data.key)
    return None


def _starts_failing(
    instance: dg.DagsterInstance,
    record: dg.EventLogRecord,
    evaluation,
    partition: str | None,
    partition_of_run,
) -> bool:
    """Whether the evaluation before this one of the same check and partition passed (or there was none). A check
    evaluated inside its asset's step names no partition (its run's is the one): its previous evaluation of the
    partition is looked for among the check's last HISTORY_LOOKBACK."""
    history = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(evaluation.asset_key, evaluation.check_name),
        limit=HISTORY_LOOKBACK,
        status=DONE,
        partition_filter=PartitionKeyFilter(key=evaluation.partition) if evaluation.partition else None,
    )
    for earlier in history:
        if earlier.event is None or earlier.event.timestamp >= record.timestamp:
            continue
        if (earlier.partition or partition_of_run(earlier.run_id)) == partition:
            return earlier.status == AssetCheckExecutionRecordStatus.SUCCEEDED
    return True


def _detail(metadata: dict) -> str:
    """What a failed check measured, where its metadata says: a partition's rows against its expected range, or
    the failing rows a dbt test counted."""
    if "expected_low" in metadata:
        low, high = metadata["expected_low"].value, metadata["expected_high"].value
        return f": {metadata['rows'].value:,} rows, expected {low:,g}–{high:,g}"
    if "dagster_dbt/failed_row_count" in metadata:
        table = metadata.get("dq_failures_table")
        kept = f", kept in `{table.value}`" if table else ""
        return f": {metadata['dagster_dbt/failed_row_count'].value:,} failing rows{kept}"
    return ""


def _owners(repository_def: dg.RepositoryDefinition | None, keys) -> list[str]:
    """The owners of the assets an alert is about (none known: the default route)."""
    if repository_def is None:
        return []
    graph = repository_def.asset_graph
    return sorted({owner for key in keys if graph.has(key) for owner in graph.get(key).owners})


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="gold_refresh_notice",
    description="Posts one notice per successful run that refreshed gold marts, with each mart's rows and their "
    "change since its previous materialization.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
)
def gold_refresh_notice(context: dg.RunStatusSensorContext, alerts: AlertWebhookResource) -> None:
    run = context.dagster_run
    instance = context.instance
    counted: dict[dg.AssetKey, tuple[int, int]] = {}  # mart → (first storage id in the run, rows after it)
    for record in instance.get_records_for_run(
        run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records:
        materialization = record.event_log_entry.asset_materialization
        key, rows = materialization.asset_key, materialization.metadata.get("dagster/row_count")
        if key.path[0] != "gold" or key == dg.AssetKey(HISTORY) or rows is None:
            continue
        first = counted.get(key, (record.storage_id, 0))[0]
        counted[key] = (first, rows.value)
    if not counted:
        return
    marts = []
    for key, (first, rows) in sorted(counted.items(), key=lambda item: item[0].to_user_string()):
        before = _rows_before(instance, key, first)
        marts.append(f"`{key.to_user_string()}` {rows:,} rows ({rows - before:+,})")
    alerts.notify(
        context.log,
        f":white_check_mark: Run `{run.run_id}` refreshed gold: " + ", ".join(marts),
        _owners(context.repository_def, counted),
    )


def _rows_before(instance: dg.DagsterInstance, key: dg.AssetKey, before_storage_id: int) -> int:
    """The mart's row count at its last materialization before `before_storage_id` (0 if it had none)."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, before_storage_id=before_storage_id), limit=1, ascending=False
    ).records
    if not records:
        return 0
    rows = records[0].event_log_entry.asset_materialization.metadata.get("dagster/row_count")
    return rows.value if rows is not None else 0
