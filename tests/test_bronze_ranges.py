"""A run over a range of partitions loads each in its own transaction: one partition that fails does not stop
the others, the run names it, and a re-run loads only what is left."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from assets.bronze import ledger
from assets.bronze.discover import discover
from assets.bronze.factory import bronze_assets
from assets.bronze.sources import SOURCES_BY_NAME

TWEETS = next(a for a in bronze_assets if a.key.path[-1] == "tweets")
DAYS = ("2026-11-01", "2026-11-02", "2026-11-03")
RANGE = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[-1]}


def land(bronze_resources: dict, day: str) -> Path:
    path = bronze_resources["landing"].root_path / f"x/tweets/date={day}/page.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    statuses = [{"id_str": f"{day}-{n}", "created_at": f"{day}T10:00:00Z", "text": "hi"} for n in range(5)]
    path.write_text(json.dumps({"statuses": statuses}))
    return path


def rows_by_day(bronze_resources: dict) -> dict[str, int]:
    with bronze_resources["postgres"].connect() as conn:
        found = conn.execute("SELECT partition_date::text, count(*) FROM bronze.tweets GROUP BY 1").fetchall()
    return dict(found)


def test_a_range_with_a_failing_partition_loads_the_others_names_it_and_a_rerun_loads_only_what_is_left(
    bronze_resources,
):
    paths = {day: land(bronze_resources, day) for day in DAYS}
    with bronze_resources["postgres"].connect(autocommit=True) as conn:
        ledger.ensure_schema(conn)
        discover(conn, SOURCES_BY_NAME["tweets"], bronze_resources["landing"])
    # The middle day's file vanishes between its registration and its load.
    kept = paths[DAYS[1]].read_bytes()
    paths[DAYS[1]].unlink()

    instance = dg.DagsterInstance.ephemeral()
    failed = dg.materialize(
        [TWEETS], tags=RANGE, resources=bronze_resources, raise_on_error=False, instance=instance
    )

    error, failure = failed.failure_data_for_node("bronze__tweets").error, ""
    while error is not None:  # the last retry's failure, under "Exceeded max_retries"
        failure += error.message
        error = error.cause
    accounted = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(TWEETS.key, "accounted"), limit=100
    )
    assert not failed.success
    assert f"1 of 3 partitions failed to load: {DAYS[1]}: FileNotFoundError" in failure
    # The partitions that loaded are materialized and checked, each on its own; the failed one is neither (its
    # check stays planned, never evaluated).
    assert instance.get_materialized_partitions(TWEETS.key) == {DAYS[0], DAYS[2]}
    assert {(record.partition, record.status.value) for record in accounted} == {
        (DAYS[0], "SUCCEEDED"),
        (DAYS[1], "PLANNED"),
        (DAYS[2], "SUCCEEDED"),
    }
    assert rows_by_day(bronze_resources) == {DAYS[0]: 5, DAYS[2]: 5}

    paths[DAYS[1]].write_bytes(kept)
    rerun = dg.materialize([TWEETS], tags=RANGE, resources=bronze_resources)

    metadata = {
        e.partition: {k: v.value for k, v in e.event_specific_data.materialization.metadata.items()}
        for e in rerun.get_asset_materialization_events()
    }
    assert rerun.success
    assert {day: metadata[day]["files"] for day in DAYS} == {DAYS[0]: 0, DAYS[1]: 1, DAYS[2]: 0}
    assert rows_by_day(bronze_resources) == dict.fromkeys(DAYS, 5)
    summary = {
        c.check_name: c.metadata["failed_partitions"].value
        for c in rerun.get_asset_check_evaluations()
        if c.partition is None
    }
    assert summary == dict.fromkeys(
        (
            "accounted",
            "no_duplicate_records",
            "schema_drift",
            "quarantine_rate",
            "no_empty_files",
            "volume_in_recent_range",
        ),
        [],
    )
