"""The sensors that raise alerts (a failed run, a failed ERROR-severity check, an asset whose freshness
degrades) and the notice that a run refreshed gold. Where they go is the `alerts` resource's business
(resources.alerts)."""

import dagster as dg
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.events import DagsterEventType

from assets.observability.quality import HISTORY
from resources import AlertWebhookResource

MAX_ALERTS_PER_TICK = 20


@dg.run_failure_sensor(
    name="run_failure_alert",
    description="Alerts when any run of this code location fails.",
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
    alerts.send(context.log, f":red_circle: Run `{run.run_id}` of `{run.job_name}` failed: {reason}", owners)


@dg.sensor(
    name="quality_alert_sensor",
    description="Alerts on failed ERROR-severity asset checks and on assets whose freshness degrades.",
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
    raised = [alert for record in records if (alert := _alert_text(record))]
    for text, key in raised[:MAX_ALERTS_PER_TICK]:
        alerts.send(context.log, text, _owners(context.repository_def, [key]))
    if len(raised) > MAX_ALERTS_PER_TICK:
        alerts.send(context.log, f"... and {len(raised) - MAX_ALERTS_PER_TICK} more quality alerts")
    if records:
        context.update_cursor(str(records[-1].storage_id))
    return None if raised else dg.SkipReason("no failed ERROR checks or freshness degradation")


def _alert_text(record: dg.EventLogRecord) -> tuple[str, dg.AssetKey] | None:
    """The alert an event raises, and the asset it is about (whose owners it goes to)."""
    event = record.event_log_entry.dagster_event
    data = event.event_specific_data
    if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
        if data.passed or data.severity != dg.AssetCheckSeverity.ERROR:
            return None
        text = (
            f":warning: Check `{data.check_name}` on `{data.asset_key.to_user_string()}` failed "
            f"(ERROR) in run `{record.run_id}`"
        )
        return text, data.asset_key
    if data.new_state in (FreshnessState.WARN, FreshnessState.FAIL):
        text = f":hourglass: `{data.key.to_user_string()}` freshness {data.previous_state.value} → {data.new_state.value}"
        return text, data.key
    return None


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
