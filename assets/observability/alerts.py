"""Alerts: a failed run, a failed ERROR-severity check, or an asset whose freshness degrades.

Every alert is logged; when STRATA_ALERT_WEBHOOK_URL is set it is also posted there as a Slack-compatible
JSON message (`text` plus a `blocks` section). The URL is read when an alert is sent and never logged.
"""

import os

import dagster as dg
import httpx
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.events import DagsterEventType

WEBHOOK_ENV = "STRATA_ALERT_WEBHOOK_URL"
MAX_ALERTS_PER_TICK = 20


def send_alert(log, text: str) -> bool:
    """Log the alert and post it to the webhook if one is configured. Returns whether it was posted."""
    log.warning(f"ALERT {text}")
    url = os.environ.get(WEBHOOK_ENV)
    if not url:
        return False
    message = {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    try:
        httpx.post(url, json=message, timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        log.error(f"alert webhook failed: {type(exc).__name__}")
        return False
    return True


@dg.run_failure_sensor(
    name="run_failure_alert",
    description="Alerts when any run of this code location fails.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
)
def run_failure_alert(context: dg.RunFailureSensorContext) -> None:
    run = context.dagster_run
    reason = context.failure_event.message or "no message"
    # A run whose worker died can be reported failed twice, by the code server that launched it and by run
    # monitoring, at the same moment: one alert per run, on its first failure event.
    first = next(iter(context.instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)), None)
    if first is not None and first.dagster_event != context.failure_event:
        context.log.info(f"run {run.run_id} reported failed again ({reason}): alerted on its first failure")
        return
    send_alert(context.log, f":red_circle: Run `{run.run_id}` of `{run.job_name}` failed: {reason}")


@dg.sensor(
    name="quality_alert_sensor",
    description="Alerts on failed ERROR-severity asset checks and on assets whose freshness degrades.",
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
)
def quality_alert_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason | None:
    after = int(context.cursor) if context.cursor else None
    records = []
    for event_type in (DagsterEventType.ASSET_CHECK_EVALUATION, DagsterEventType.FRESHNESS_STATE_CHANGE):
        records += context.instance.get_event_records(
            dg.EventRecordsFilter(event_type=event_type, after_cursor=after), limit=1000, ascending=True
        )
    records.sort(key=lambda record: record.storage_id)
    alerts = [text for record in records if (text := _alert_text(record))]
    for text in alerts[:MAX_ALERTS_PER_TICK]:
        send_alert(context.log, text)
    if len(alerts) > MAX_ALERTS_PER_TICK:
        send_alert(context.log, f"... and {len(alerts) - MAX_ALERTS_PER_TICK} more quality alerts")
    if records:
        context.update_cursor(str(records[-1].storage_id))
    return None if alerts else dg.SkipReason("no failed ERROR checks or freshness degradation")


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
