"""Reconciliation finds every asset or partition older than its upstream, in a real Dagster instance, and plans
the next wave of refresh runs. The graph is small and generic on purpose (the sensor reads any graph):

    dim (unpartitioned) ─┬──────────────────────┐
    events[day] ─────────┼─ daily[day] ─┬─ summary (unpartitioned)
    pulled[day] ─────────┘              └─ rollup[day]

`pulled` may stay empty for good (a source pulled only where its endpoint is configured).
"""

import threading

import dagster as dg
import pytest

from assets.automation.conditions import refresh_condition
from assets.automation.reconcile import EventLog, find_stale, plan_refresh, reconciliation_sensor
from assets.conventions import MAY_STAY_EMPTY

DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-05")
DAILY_GATE = threading.Event()
DAILY_STARTED = threading.Event()


@dg.asset(partitions_def=DAYS)
def events() -> None: ...


@dg.asset
def dim() -> None: ...


@dg.asset(partitions_def=DAYS, tags={MAY_STAY_EMPTY: "true"})
def pulled() -> None: ...


@dg.asset(
    deps=[events, dim, pulled],
    partitions_def=DAYS,
    automation_condition=refresh_condition(partitioned=True),
    backfill_policy=dg.BackfillPolicy.single_run(),
    pool="daily_builds",
)
def daily() -> None:
    DAILY_STARTED.set()
    assert DAILY_GATE.wait(30)


@dg.asset(deps=[daily, dim], automation_condition=refresh_condition(partitioned=False))
def summary() -> None: ...


@dg.asset(
    deps=[daily],
    partitions_def=DAYS,
    automation_condition=refresh_condition(partitioned=True),
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def rollup() -> None: ...


DEFS = dg.Definitions(assets=[events, dim, pulled, daily, summary, rollup])
GRAPH = DEFS.resolve_asset_graph()
DAILY, SUMMARY, ROLLUP = dg.AssetKey("daily"), dg.AssetKey("summary"), dg.AssetKey("rollup")


@pytest.fixture
def instance():
    DAILY_GATE.set()
    with dg.instance_for_test() as instance:
        yield instance


def run(instance, assets, partition_key=None, tags=None) -> None:
    assert dg.materialize(assets, instance=instance, partition_key=partition_key, tags=tags or {}).success


def stale(instance) -> dict[str, set]:
    return {key.to_user_string(): s.partitions for key, s in find_stale(GRAPH, EventLog(instance)).items()}


def day_range(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def test_new_upstream_partitions_make_the_same_partitions_stale_all_the_way_down(instance):
    run(instance, [dim])
    run(instance, [events], "2026-01-01")
    run(instance, [events], "2026-01-03")

    assert stale(instance) == {
        "daily": {"2026-01-01", "2026-01-03"},
        "rollup": {"2026-01-01", "2026-01-03"},
        "summary": {None},
    }
    # The partitioned chain goes in one run over the range; the unpartitioned summary waits for it.
    [request] = plan_refresh(GRAPH, find_stale(GRAPH, EventLog(instance)), busy=set())
    assert request.asset_keys == (DAILY, ROLLUP)
    assert request.partition_range == ("2026-01-01", "2026-01-03")


def test_a_refreshed_partition_range_makes_the_unpartitioned_summary_stale_next(instance):
    run(instance, [dim])
    run(instance, [events], "2026-01-01")
    run(instance, [daily, rollup], tags=day_range("2026-01-01", "2026-01-02"))

    assert stale(instance) == {"summary": {None}}
    [request] = plan_refresh(GRAPH, find_stale(GRAPH, EventLog(instance)), busy=set())
    assert (request.asset_keys, request.partition_range) == ((SUMMARY,), None)


def test_a_chain_refreshed_in_one_run_is_current(instance):
    run(instance, [dim])
    run(instance, [events, daily, rollup], "2026-01-02")
    run(instance, [summary])

    assert stale(instance) == {}


def test_an_upstream_update_during_the_downstream_run_leaves_the_downstream_stale(instance):
    """The case eager automation misses: daily[d] started before events[d] changed, and finished after."""
    run(instance, [dim])
    run(instance, [events], "2026-01-02")
    DAILY_GATE.clear()
    DAILY_STARTED.clear()
    downstream = threading.Thread(target=run, args=(instance, [daily], "2026-01-02"))
    downstream.start()
    assert DAILY_STARTED.wait(30)
    run(instance, [events], "2026-01-02")
    DAILY_GATE.set()
    downstream.join()

    assert stale(instance) == {"daily": {"2026-01-02"}, "rollup": {"2026-01-02"}, "summary": {None}}
    [request] = plan_refresh(GRAPH, find_stale(GRAPH, EventLog(instance)), busy=set())
    assert (request.asset_keys, request.partition_range) == ((DAILY, ROLLUP), ("2026-01-02", "2026-01-02"))


def test_a_changed_unpartitioned_dimension_makes_every_materialized_partition_stale(instance):
    run(instance, [dim])
    for day in ("2026-01-01", "2026-01-02"):
        run(instance, [events, daily, rollup], day)
    run(instance, [summary])
    run(instance, [dim])

    both = {"2026-01-01", "2026-01-02"}
    assert stale(instance) == {"daily": both, "rollup": both, "summary": {None}}


def test_nothing_is_requested_while_it_or_its_upstream_is_in_a_run_in_progress(instance):
    run(instance, [dim])
    run(instance, [events], "2026-01-01")
    found = find_stale(GRAPH, EventLog(instance))

    assert plan_refresh(GRAPH, found, busy={DAILY}) == []
    assert plan_refresh(GRAPH, found, busy={dg.AssetKey("events")}) == []


def test_a_wave_waits_while_a_run_takes_its_pool_then_gathers_everything(instance):
    """The run holding the pool goes first either way: requesting behind it would only split the next wave."""
    run(instance, [dim])
    run(instance, [events], "2026-01-01")
    found = find_stale(GRAPH, EventLog(instance))

    assert plan_refresh(GRAPH, found, busy=set(), busy_pools=frozenset({"daily_builds"})) == []
    [request] = plan_refresh(GRAPH, found, busy=set(), busy_pools=frozenset({"another_pool"}))
    assert DAILY in request.asset_keys


def test_the_same_staleness_is_requested_once_and_a_newer_update_asks_again(instance):
    run(instance, [dim])
    run(instance, [events], "2026-01-01")
    first = plan_refresh(GRAPH, find_stale(GRAPH, EventLog(instance)), busy=set())
    again = plan_refresh(GRAPH, find_stale(GRAPH, EventLog(instance)), busy=set())
    run(instance, [events], "2026-01-01")
    after_update = plan_refresh(GRAPH, find_stale(GRAPH, EventLog(instance)), busy=set())

    assert [r.run_request().run_key for r in again] == [r.run_request().run_key for r in first]
    assert after_update[0].run_request().run_key != first[0].run_request().run_key


def test_the_sensor_requests_the_wave_with_its_partition_range(instance):
    run(instance, [dim])
    run(instance, [events], "2026-01-02")

    result = reconciliation_sensor(dg.build_sensor_context(instance=instance, definitions=DEFS))

    [request] = result.run_requests
    assert request.asset_selection == [DAILY, ROLLUP]
    assert request.tags == {"strata/trigger": "reconcile", **day_range("2026-01-02", "2026-01-02")}


def test_a_tick_after_nothing_happened_evaluates_nothing_and_a_new_materialization_evaluates_again(instance):
    run(instance, [dim])
    run(instance, [events], "2026-01-02")

    def tick(cursor):
        return reconciliation_sensor(
            dg.build_sensor_context(instance=instance, definitions=DEFS, cursor=cursor)
        )

    first = tick(None)
    quiet = tick(first.cursor)
    run(instance, [events], "2026-01-03")
    after_update = tick(first.cursor)

    assert [r.asset_selection for r in first.run_requests] == [[DAILY, ROLLUP]]
    assert isinstance(quiet, dg.SkipReason)
    [request] = after_update.run_requests
    assert request.tags == {"strata/trigger": "reconcile", **day_range("2026-01-02", "2026-01-03")}
    assert after_update.cursor != first.cursor


def requested(instance, cursor=None):
    result = dg.evaluate_automation_conditions(defs=DEFS, instance=instance, cursor=cursor)
    keys = {key.to_user_string() for key in GRAPH.get_all_asset_keys() if result.get_num_requested(key)}
    return keys, result.cursor


def test_an_unpartitioned_model_waits_for_data_in_every_upstream_then_refreshes_on_updates(instance):
    run(instance, [dim])
    waiting, cursor = requested(instance)
    run(instance, [events, daily, rollup], "2026-01-02")
    refreshed, cursor = requested(instance, cursor)

    # daily has one partition of four: eager() would wait for the missing days forever.
    assert waiting == set()
    assert refreshed == {"summary"}


def test_a_model_does_not_wait_for_an_upstream_that_may_stay_empty_and_follows_it_once_it_delivers(instance):
    run(instance, [dim])
    run(instance, [events], "2026-01-02")
    without_pulled = stale(instance)
    run(instance, [daily], "2026-01-02")
    run(instance, [pulled], "2026-01-03")

    assert without_pulled == {"daily": {"2026-01-02"}, "rollup": {"2026-01-02"}, "summary": {None}}
    assert stale(instance) == {
        "daily": {"2026-01-03"},
        "rollup": {"2026-01-02", "2026-01-03"},
        "summary": {None},
    }


def test_eager_refreshes_a_partition_without_waiting_for_an_upstream_that_may_stay_empty(instance):
    run(instance, [dim])
    _, cursor = requested(instance)
    run(instance, [events], "2026-01-04")

    refreshed, _ = requested(instance, cursor)

    # pulled has never had data: daily is requested all the same, and rollup with it in the same tick.
    assert refreshed == {"daily", "rollup"}
