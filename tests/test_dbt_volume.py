"""The volume check of a partitioned dbt model, on real partitions: bronze tweets landed and loaded, silver/tweets
built by its real dbt asset, and the check evaluated per partition in the same run."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from random import Random

import dagster as dg
import pytest
from dagster._core.event_api import PartitionKeyFilter

from assets.bronze.factory import bronze_assets
from strata.generate.tweets import status
from tests.conftest import PII_SALT

TWEETS = next(a for a in bronze_assets if a.key.path[-1] == "tweets")
SILVER = dg.AssetKey(["silver", "tweets"])
CHECK = dg.AssetCheckKey(SILVER, "volume_in_recent_range")
# 2026-11-01 is a Sunday: four Sundays of history, then a fifth with a tenth of their rows. Three Saturdays of
# history, then a Saturday nothing lands for.
SUNDAYS = {"2026-11-01": 100, "2026-11-08": 110, "2026-11-15": 95, "2026-11-22": 105}
SATURDAYS = {"2026-11-07": 60, "2026-11-14": 64, "2026-11-21": 62}


@pytest.fixture
def resources(bronze_resources: dict, transform) -> dict:
    with bronze_resources["postgres"].connect(autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS silver CASCADE")
    return {
        "postgres": bronze_resources["postgres"],
        "landing": bronze_resources["landing"],
        "dbt": transform.dbt_resource(PII_SALT),
    }


def land(resources: dict, day: str, count: int) -> None:
    """A search response of `count` tweets posted on `day`."""
    midnight = datetime.combine(date.fromisoformat(day), datetime.min.time(), UTC)
    rng = Random(day)
    first = int(midnight.timestamp()) * 1000
    statuses = [status(rng, first + n, midnight) for n in range(count)]
    path = resources["landing"].root_path / f"x/tweets/date={day}/search-0001.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"statuses": statuses}))


def build(
    transform, resources: dict, instance: dg.DagsterInstance, first: str, last: str | None = None
) -> dg.ExecuteInProcessResult:
    """Bronze tweets, then silver/tweets with its checks, over the partitions first..last (one run each)."""
    daily = next(a for a in transform.dbt_assets if a.op.name == "dbt_daily")
    volume = next(c for c in transform.defs.asset_checks if SILVER in {k.asset_key for k in c.check_keys})
    partitions = (
        {"tags": {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}}
        if last
        else {"partition_key": first}
    )
    assert dg.materialize([TWEETS], resources=resources, instance=instance, **partitions).success
    return dg.materialize(
        [daily, volume],
        selection=dg.AssetSelection.assets(SILVER),
        resources=resources,
        instance=instance,
        **partitions,
    )


def volume(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str, dict]]:
    """The volume evaluations of silver/tweets by partition."""
    return {
        e.partition: (e.passed, e.severity.value, {k: v.value for k, v in e.metadata.items()})
        for e in result.get_asset_check_evaluations()
        if e.asset_key == SILVER and e.check_name == "volume_in_recent_range"
    }


def test_a_dbt_partition_far_below_its_weekdays_history_warns_and_an_empty_one_is_an_error(
    transform, resources
):
    instance = dg.DagsterInstance.ephemeral()
    for day, count in {**SUNDAYS, **SATURDAYS}.items():
        land(resources, day, count)
    history = build(transform, resources, instance, "2026-11-01", "2026-11-22")
    land(resources, "2026-11-29", 10)

    low = build(transform, resources, instance, "2026-11-29")
    empty = build(transform, resources, instance, "2026-11-28")  # nothing landed for it

    # One evaluation per partition of the range, each judged on what it had before it; the instance (the model's
    # Checks tab) holds each partition's latest.
    assert history.success and len(volume(history)) == 22
    latest = {
        day: instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [CHECK], partition_filter=PartitionKeyFilter(key=day)
        )[CHECK].status.value
        for day in ("2026-11-01", "2026-11-22", "2026-11-28", "2026-11-29")
    }
    assert latest == {
        "2026-11-01": "SUCCEEDED",
        "2026-11-22": "SUCCEEDED",
        "2026-11-28": "FAILED",
        "2026-11-29": "FAILED",
    }
    assert volume(history)["2026-11-22"] == (
        True,
        "WARN",
        {
            "rows": 105,
            "history_partitions": 3,
            "history_median": 100.0,
            "expected_low": 60.0,
            "expected_high": 140.0,
        },
    )
    assert volume(history)["2026-11-02"] == (
        True,
        "WARN",
        {
            "rows": 0,
            "history_partitions": 0,
            "note": "fewer than 3 earlier partitions of this weekday: nothing to judge by",
        },
    )
    # median 102.5; spread max(1.4826 × MAD 5, 10 % of the median) = 10.25; range 102.5 ± 4 × 10.25
    assert low.success
    assert volume(low) == {
        "2026-11-29": (
            False,
            "WARN",
            {
                "rows": 10,
                "history_partitions": 4,
                "history_median": 102.5,
                "expected_low": 61.5,
                "expected_high": 143.5,
            },
        )
    }
    # median 62; spread max(1.4826 × MAD 2, 6.2) = 6.2; range 62 ± 24.8
    assert empty.success
    assert volume(empty) == {
        "2026-11-28": (
            False,
            "ERROR",
            {
                "rows": 0,
                "history_partitions": 3,
                "history_median": 62.0,
                "expected_low": 37.2,
                "expected_high": 86.8,
            },
        )
    }
