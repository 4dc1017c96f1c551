"""Alerts reach a webhook: a failing ERROR check and a failing run each produce one Slack-style POST to a
local HTTP server; without a webhook they are only logged. A run that refreshed gold posts one notice."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack

import dagster as dg
import pytest

from assets.observability.alerts import gold_refresh_notice, quality_alert_sensor, run_failure_alert
from resources import AlertWebhookResource
from tests.conftest import webhook_receiver

ALERTS = {"alerts": AlertWebhookResource()}


@pytest.fixture
def webhook(monkeypatch) -> Iterator[list[tuple[str, bytes]]]:
    """The alerts' webhook, pointed at a local receiver: the (path, body) of each POST received."""
    with webhook_receiver() as (port, received):
        monkeypatch.setenv(ALERTS["alerts"].url_env, f"http://127.0.0.1:{port}/hook")
        yield received


def status_context(
    sensor_name: str, instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult, event: dg.DagsterEvent
) -> dg.RunStatusSensorContext:
    """What a run-status sensor is handed for `event` of the run that made `result`."""
    return dg.build_run_status_sensor_context(
        resources=ALERTS,
        sensor_name=sensor_name,
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=event,
    )


@dg.asset(check_specs=[dg.AssetCheckSpec("rows_positive", asset="orders")])
def orders() -> dg.MaterializeResult:
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name="rows_positive", passed=False, severity=dg.AssetCheckSeverity.ERROR
            )
        ]
    )


@dg.asset
def broken() -> None:
    raise RuntimeError("upstream API returned 503")


# Marts report their table's row count as every dbt gold model does (assets.transform.assets.with_table_metadata).
@dg.asset(key=["gold", "daily_sales"], config_schema={"rows": int})
def daily_sales(context) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"dagster/row_count": context.op_config["rows"]})


@dg.asset(key=["gold", "weekly_sales"], config_schema={"rows": int})
def weekly_sales(context) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"dagster/row_count": context.op_config["rows"]})


@dg.asset(key=["silver", "sales"])
def silver_sales() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"dagster/row_count": 3})


def test_a_run_that_refreshes_gold_posts_one_notice_with_each_marts_rows_and_their_change(webhook):
    instance = dg.DagsterInstance.ephemeral()

    def run_and_notice(assets, rows: dict[str, int] | None = None) -> str:
        config = {"ops": {f"gold__{name}": {"config": {"rows": n}} for name, n in (rows or {}).items()}}
        result = dg.materialize(assets, instance=instance, run_config=config)
        success = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_SUCCESS)
        gold_refresh_notice(status_context("gold_refresh_notice", instance, result, success))
        return result.run_id

    first = run_and_notice([daily_sales, weekly_sales], {"daily_sales": 120, "weekly_sales": 18})
    second = run_and_notice([daily_sales], {"daily_sales": 135})
    run_and_notice([silver_sales])  # no gold: no notice

    assert [json.loads(body)["text"] for _, body in webhook] == [
        f":white_check_mark: Run `{first}` refreshed gold: `gold/daily_sales` 120 rows (+120), "
        "`gold/weekly_sales` 18 rows (+18)",
        f":white_check_mark: Run `{second}` refreshed gold: `gold/daily_sales` 135 rows (+15)",
    ]


def failing_check_of(name: str, owner: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, owners=[owner], check_specs=[dg.AssetCheckSpec("rows_positive", asset=name)])
    def owned() -> dg.MaterializeResult:
        failed = dg.AssetCheckResult(
            check_name="rows_positive", passed=False, severity=dg.AssetCheckSeverity.ERROR
        )
        return dg.MaterializeResult(check_results=[failed])

    return owned


def test_alerts_go_to_the_webhooks_of_their_assets_owners_and_the_rest_to_the_default(monkeypatch):
    posts = failing_check_of("posts_by_day", "team:social")
    views = failing_check_of("views_by_day", "team:video")
    plays = failing_check_of("plays_by_day", "team:audio")  # no route: the default webhook
    with ExitStack() as stack:
        (social_port, social), (video_port, video), (default_port, default) = (
            stack.enter_context(webhook_receiver()) for _ in range(3)
        )
        monkeypatch.setenv(
            AlertWebhookResource().routes_env,
            f"team:social=http://127.0.0.1:{social_port}/hook team:video=http://127.0.0.1:{video_port}/hook",
        )
        monkeypatch.setenv(AlertWebhookResource().url_env, f"http://127.0.0.1:{default_port}/hook")
        instance = dg.DagsterInstance.ephemeral()
        dg.materialize([posts, views, plays], instance=instance)

        quality_alert_sensor(
            dg.build_sensor_context(
                resources=ALERTS, instance=instance, definitions=dg.Definitions(assets=[posts, views, plays])
            )
        )

    def checked(received: list[tuple[str, bytes]]) -> list[str]:
        return [json.loads(body)["text"].split("`")[3] for _, body in received]

    assert (checked(social), checked(video), checked(default)) == (
        ["posts_by_day"],
        ["views_by_day"],
        ["plays_by_day"],
    )


def test_a_failed_error_check_posts_one_alert_and_is_not_repeated(webhook):
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize([orders], instance=instance)

    context = dg.build_sensor_context(resources=ALERTS, instance=instance)
    quality_alert_sensor(context)
    again = dg.build_sensor_context(resources=ALERTS, instance=instance, cursor=context.cursor)
    quality_alert_sensor(again)

    alerts = [json.loads(body) for _, body in webhook]
    run_id = instance.get_runs()[0].run_id
    assert [alert["text"] for alert in alerts] == [
        f":red_circle: ERROR: check `rows_positive` on `orders` failed in run `{run_id}`"
    ]
    assert alerts[0]["blocks"][0]["text"]["text"] == alerts[0]["text"]


def test_a_failed_run_posts_an_alert_with_the_error(webhook):
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([broken], instance=instance, raise_on_error=False)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)

    context = status_context("run_failure_alert", instance, result, failure).for_run_failure()
    run_failure_alert(context)

    alerts = [json.loads(body) for _, body in webhook]
    assert [alert["text"] for alert in alerts] == [
        f":red_circle: ERROR: run `{result.run_id}` of `{result.dagster_run.job_name}` failed: "
        f"{failure.message}"
    ]


def test_a_run_reported_failed_twice_posts_one_alert_on_its_first_failure(webhook):
    """A killed worker's run is reported failed by both its code server and run monitoring."""
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([broken], instance=instance, raise_on_error=False)
    instance.report_run_failed(result.dagster_run, "Detected run worker status FAILED")
    failures = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert len(failures) == 2

    for failure in failures:
        run_failure_alert(
            status_context("run_failure_alert", instance, result, failure.dagster_event).for_run_failure()
        )

    alerts = [json.loads(body)["text"] for _, body in webhook]
    assert alerts == [
        f":red_circle: ERROR: run `{result.run_id}` of `{result.dagster_run.job_name}` failed: "
        f"{failures[0].dagster_event.message}"
    ]


def test_without_a_webhook_alerts_are_only_logged(monkeypatch, capfd):
    monkeypatch.delenv(ALERTS["alerts"].url_env, raising=False)
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize([orders], instance=instance)
    capfd.readouterr()

    # A receiver listens, but nothing names it: nothing may reach it.
    with webhook_receiver() as (_, received):
        quality_alert_sensor(dg.build_sensor_context(resources=ALERTS, instance=instance))

    logged = [line for line in capfd.readouterr().err.splitlines() if " - ALERT " in line]
    assert received == []
    assert (
        len(logged) == 1 and "ALERT :red_circle: ERROR: check `rows_positive` on `orders` failed" in logged[0]
    )


def test_freshness_falling_to_warn_posts_one_alert_and_recovering_posts_none(webhook):
    """The freshness daemon records a state change as a runless asset event; the sensor turns a degradation
    into an alert, once."""
    from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

    instance = dg.DagsterInstance.ephemeral()
    key = dg.AssetKey(["gold", "account_daily_engagement"])
    instance.report_runless_asset_event(
        FreshnessStateChange(
            key=key,
            new_state=FreshnessState.WARN,
            previous_state=FreshnessState.PASS,
            state_change_timestamp=time.time(),
        )
    )
    context = dg.build_sensor_context(resources=ALERTS, instance=instance)
    quality_alert_sensor(context)
    instance.report_runless_asset_event(
        FreshnessStateChange(
            key=key,
            new_state=FreshnessState.PASS,
            previous_state=FreshnessState.WARN,
            state_change_timestamp=time.time(),
        )
    )
    quality_alert_sensor(dg.build_sensor_context(resources=ALERTS, instance=instance, cursor=context.cursor))

    alerts = [json.loads(body)["text"] for _, body in webhook]
    assert alerts == [":hourglass: WARN: `gold/account_daily_engagement` freshness PASS → WARN"]


@dg.asset(
    key=["silver", "tweets"],
    owners=["team:listening"],
    partitions_def=dg.StaticPartitionsDefinition(["2026-11-28", "2026-11-29"]),
    config_schema={"rows": int},
    check_specs=[dg.AssetCheckSpec("volume_in_recent_range", asset=["silver", "tweets"])],
)
def tweets(context) -> dg.MaterializeResult:
    """A partition's volume judged against a range of 60–140 rows: WARN outside it, ERROR when empty."""
    rows = context.op_config["rows"]
    verdict = dg.AssetCheckResult(
        check_name="volume_in_recent_range",
        passed=60 <= rows <= 140,
        severity=dg.AssetCheckSeverity.ERROR if rows == 0 else dg.AssetCheckSeverity.WARN,
        metadata={"rows": rows, "expected_low": 60.0, "expected_high": 140.0, "history_median": 100.0},
    )
    return dg.MaterializeResult(check_results=[verdict])


def test_a_warn_check_alerts_when_it_starts_failing_and_an_error_one_every_time(webhook):
    instance = dg.DagsterInstance.ephemeral()
    cursor = None

    def load(partition: str, rows: int) -> list[str]:
        """Materialize a partition and run a sensor tick: the alerts posted, with `{run}` for the run's id."""
        nonlocal cursor
        config = {"ops": {"silver__tweets": {"config": {"rows": rows}}}}
        run = dg.materialize([tweets], partition_key=partition, instance=instance, run_config=config).run_id
        before = len(webhook)
        context = dg.build_sensor_context(resources=ALERTS, instance=instance, cursor=cursor)
        quality_alert_sensor(context)
        cursor = context.cursor
        return [json.loads(body)["text"].replace(run, "{run}") for _, body in webhook[before:]]

    def alert(severity: str, partition: str, rows: int) -> str:
        icon = {"WARN": ":warning:", "ERROR": ":red_circle:"}[severity]
        return (
            f"{icon} {severity}: check `volume_in_recent_range` on `silver/tweets` partition `{partition}` failed "
            f"in run `{{run}}`: {rows} rows, expected 60–140"
        )

    assert load("2026-11-29", 10) == [alert("WARN", "2026-11-29", 10)]
    assert load("2026-11-29", 12) == []  # still failing: no new warning
    assert load("2026-11-28", 11) == [alert("WARN", "2026-11-28", 11)]  # another partition starts failing
    assert load("2026-11-29", 100) == []  # passes again
    assert load("2026-11-29", 9) == [alert("WARN", "2026-11-29", 9)]
    assert load("2026-11-29", 0) == [alert("ERROR", "2026-11-29", 0)]
    assert load("2026-11-29", 0) == [alert("ERROR", "2026-11-29", 0)]  # an ERROR alerts every time


def test_a_storm_is_held_back_per_receiver_across_ticks_and_ends_with_one_summary(monkeypatch):
    """Two owners' receivers, at most 2 alerts each per window: the storm on one does not hold back the other's
    alerts, a failed run counts in it like a failed check, and what was held back is summed up once, when the
    window has room again."""
    window = 6.0
    social = [failing_check_of(f"posts_{n}", "team:social") for n in range(5)]
    video = failing_check_of("views", "team:video")

    @dg.asset(owners=["team:social"])
    def social_export() -> None:
        raise RuntimeError("upstream API returned 503")

    limited = {"alerts": AlertWebhookResource(max_per_window=2, window_seconds=window)}
    with ExitStack() as stack:
        (social_port, social_received), (video_port, video_received) = (
            stack.enter_context(webhook_receiver()) for _ in range(2)
        )
        monkeypatch.setenv(
            AlertWebhookResource().routes_env,
            f"team:social=http://127.0.0.1:{social_port}/hook team:video=http://127.0.0.1:{video_port}/hook",
        )
        instance = dg.DagsterInstance.ephemeral()
        definitions = dg.Definitions(assets=[*social, video, social_export])
        cursor = None

        def tick(assets: list[dg.AssetsDefinition]) -> float:
            """Materialize `assets` in one run, then run a sensor tick; returns when the tick started."""
            nonlocal cursor
            if assets:
                dg.materialize(assets, instance=instance)
            started = time.time()
            context = dg.build_sensor_context(
                resources=limited, instance=instance, definitions=definitions, cursor=cursor
            )
            quality_alert_sensor(context)
            cursor = context.cursor
            return started

        first = tick([*social[:3], video])  # social: 2 posted, 1 held; video: 1 posted
        tick([*social[3:], video])  # social: 2 more held; video: its second in the window
        # A run that names its assets, as a sensor's or the UI's does: the run's owners are theirs.
        failed = definitions.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=[social_export.key], instance=instance, raise_on_error=False
        )
        failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
        run_failure_alert(  # social: one more held
            dg.build_run_status_sensor_context(
                sensor_name="run_failure_alert",
                dagster_event=failure,
                dagster_instance=instance,
                dagster_run=failed.dagster_run,
                resources=limited,
                repository_def=definitions.get_repository_def(),
            ).for_run_failure()
        )
        assert time.time() < first + window, "the machine was too slow for the window"
        time.sleep(first + window - time.time() + 0.1)
        tick([])  # social's window has room again: the summary
        tick([])  # and only once

    def texts(received: list[tuple[str, bytes]]) -> list[str]:
        return [json.loads(body)["text"] for _, body in received]

    social_texts = texts(social_received)
    assert [text.split("`")[3] for text in social_texts[:2]] == ["posts_0", "posts_1"]
    assert len(social_texts) == 3
    assert social_texts[2].startswith(":mute: Alerts held back since ")
    assert social_texts[2].endswith(
        " UTC: ERROR 4 (over 2 per 6 s to this receiver); each one is in the sensor's log"
    )
    assert [text.split("`")[3] for text in texts(video_received)] == ["views", "views"]


DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01", end_date="2026-11-04")


@dg.asset(key=["gold", "clicks"], partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
def clicks() -> None:
    pass


@dg.multi_asset_check(
    specs=[dg.AssetCheckSpec("volume_in_recent_range", asset=["gold", "clicks"], partitions_def=DAYS)],
    can_subset=True,
)
def clicks_volume(context):
    """Evaluations naming their partitions, as a check beside dbt models records them: failing on the days the
    run's tag `failing` lists."""
    failing = context.op_execution_context.run.tags["failing"].split(",")
    for day in context.partition_keys:
        yield dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(["gold", "clicks"]),
            check_name="volume_in_recent_range",
            passed=day not in failing,
            severity=dg.AssetCheckSeverity.WARN,
            partition=day,
        )


def test_a_warn_check_evaluated_per_partition_in_a_ranged_run_alerts_once_per_partition_that_starts_failing(
    webhook,
):
    instance = dg.DagsterInstance.ephemeral()
    cursor = None
    whole_range = {
        "dagster/asset_partition_range_start": "2026-11-01",
        "dagster/asset_partition_range_end": "2026-11-03",
    }

    def run(failing: list[str]) -> list[str]:
        nonlocal cursor
        tags = {**whole_range, "failing": ",".join(failing)}
        dg.materialize([clicks, clicks_volume], instance=instance, tags=tags)
        before = len(webhook)
        context = dg.build_sensor_context(resources=ALERTS, instance=instance, cursor=cursor)
        quality_alert_sensor(context)
        cursor = context.cursor
        return [json.loads(body)["text"].split("`")[5] for _, body in webhook[before:]]

    assert run(["2026-11-02"]) == ["2026-11-02"]
    assert run(["2026-11-02", "2026-11-03"]) == ["2026-11-03"]
    assert run(["2026-11-01", "2026-11-02", "2026-11-03"]) == ["2026-11-01"]
