"""The sensors that raise alerts: a failed run, a failed ERROR-severity check, or an asset whose freshness
degrades. Where an alert goes is the `alerts` resource's business (resources.alerts)."""

import dagster as dg
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.events import DagsterEventType

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
    alerts.send(context.log, f":red_circle: Run `{run.run_id}` of `{run.job_name}` failed: {reason}")


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
    texts = [text for record in records if (text := _alert_text(record))]
    for text in texts[:MAX_ALERTS_PER_TICK]:
        alerts.send(context.log, text)
    if len(texts) > MAX_ALERTS_PER_TICK:
        alerts.send(context.log, f"... and {len(texts) - MAX_ALERTS_PER_TICK} more quality alerts")
    if records:
        context.update_cursor(str(records[-1].storage_id))
    return None if texts else dg.SkipReason("no failed ERROR checks or freshness degradation")


def _alert_text(record: dg.EventLogRecord) -> str | None:
    event = record.event_log_entry.dagster_event
    data = event.event_specific_data
    if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
        if data.passed or data.severity != dg.AssetCheckSeverity.ERROR:
            return None
        return (
            f":warning: Check `{data.check_name}` on `{data.asset_key.to_user_string()}` failed "
            f"(ERROR) in run `{record.run_id}`"
        )
    if data.new_state in (FreshnessState.WARN, FreshnessState.FAIL):
        return f":hourglass: `{data.key.to_user_string()}` freshness {data.previous_state.value} → {data.new_state.value}"
    return None
