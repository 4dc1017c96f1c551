"""Automation conditions by layer, defined once.

Partitioned models use `eager()`: a new or updated upstream partition refreshes the same partition. Neither
condition waits for the first data of an upstream tagged `strata/may_stay_empty` (a source pulled only where its
endpoint is configured).

Unpartitioned models that read partitioned ones cannot: `eager()` waits while any upstream partition is
missing, and a daily history always has days without data, so such a model would never run. They refresh when
any upstream updates, once every upstream has some data (a partitioned one: any partition) and none is in
progress, and never merely because they are missing (before the first load there is nothing to build from).

Extractions and the data-quality history run on a cron, and once at start (`scheduled`): `automation_sensor`
evaluates those. What is built from the sources — silver, gold and the index — is refreshed by the landing
sensor's chains and by reconciliation (assets.automation.reconcile), which applies the layer's condition in
batched runs and catches what eager evaluation misses; one evaluator per asset, so a refresh is never
requested twice.
"""

import dagster as dg
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph

from assets.conventions import EVERY_DAEMON_LOOP_SECONDS, MAY_STAY_EMPTY

# A source pulled only where its endpoint is configured may never have data: nothing waits for its first.
_MAY_STAY_EMPTY = dg.AssetSelection.tag(MAY_STAY_EMPTY, "true")

ON_UPSTREAM_UPDATES = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & dg.AutomationCondition.all_deps_match(
        ~dg.AutomationCondition.missing() | dg.AutomationCondition.will_be_requested()
    ).ignore(_MAY_STAY_EMPTY)
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("on upstream updates")

EAGER = (
    dg.AutomationCondition.eager().without(~dg.AutomationCondition.any_deps_missing())
    & ~dg.AutomationCondition.any_deps_missing().ignore(_MAY_STAY_EMPTY)
).with_label("eager")


def scheduled(cron: str) -> dg.AutomationCondition:
    """On the cron, and once as soon as the asset exists and has never been built: a fresh platform extracts
    at start instead of at the next tick of the schedule."""
    first_time = dg.AutomationCondition.missing().newly_true() & ~dg.AutomationCondition.in_progress()
    return (dg.AutomationCondition.on_cron(cron) | first_time.with_label("first time")).with_label(
        f"{_ON_CRON} {cron}{_OR_FIRST_TIME}"
    )


def on_schedule(cron: str) -> dg.AutomationCondition:
    """On the cron only (an asset with no upstream: every tick of the cron)."""
    return dg.AutomationCondition.on_cron(cron).with_label(f"{_ON_CRON} {cron}")


_ON_CRON = "on cron"
_OR_FIRST_TIME = " or first time"


def refreshed_by_cron_ticks(graph: BaseAssetGraph) -> set[dg.AssetKey]:
    """The assets a cron tick refreshes: those on a schedule and everything built from them."""
    on_cron = [
        key
        for key in graph.materializable_asset_keys
        if (condition := graph.get(key).automation_condition) is not None
        and (condition.get_label() or "").startswith(_ON_CRON)
    ]
    return dg.AssetSelection.assets(*on_cron).downstream().resolve(graph)


def only_on_cron_ticks(graph: BaseAssetGraph) -> set[dg.AssetKey]:
    """The assets nothing but a cron tick builds (`on_schedule`, not even a first time)."""
    return {
        key
        for key in graph.materializable_asset_keys
        if (condition := graph.get(key).automation_condition) is not None
        and (label := condition.get_label() or "").startswith(_ON_CRON)
        and not label.endswith(_OR_FIRST_TIME)
    }


def refresh_condition(*, partitioned: bool) -> dg.AutomationCondition:
    return EAGER if partitioned else ON_UPSTREAM_UPDATES


# Sources are extracted on schedules; the data-quality history and dashboard follow the check outcomes.
SCHEDULED = dg.AssetSelection.key_prefixes(["bronze"]) | dg.AssetSelection.groups("observability")

automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=SCHEDULED,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=EVERY_DAEMON_LOOP_SECONDS,
)
