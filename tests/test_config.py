"""The `STRATA_` settings are read in one place (strata.config.Settings): defaults, parsed values, a bad value
refused with the variable named, and the code location built from them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import date

import pytest

from strata.config import Settings


def test_unset_variables_give_the_documented_defaults():
    settings = Settings.from_env({})

    assert (settings.postgres_port, settings.dagster_port, settings.mongo_database) == (55432, 3000, "strata")
    assert settings.partitions_start == date(2026, 11, 1)
    assert (settings.freshness_warn_hours, settings.freshness_fail_hours, settings.retry_delay_scale) == (
        4,
        24,
        1,
    )
    assert settings.postgres_url is settings.mongo_url is settings.qdrant_url is settings.pii_salt is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "STRATA_PARTITIONS_START",
            "01/11/2026",
            "STRATA_PARTITIONS_START='01/11/2026' is not a date (YYYY-MM-DD)",
        ),
        (
            "STRATA_FRESHNESS_WARN_HOURS",
            "soon",
            "STRATA_FRESHNESS_WARN_HOURS='soon' is not a number of hours",
        ),
        ("STRATA_RETRY_DELAY_SCALE", "fast", "STRATA_RETRY_DELAY_SCALE='fast' is not a number"),
        ("STRATA_DAGSTER_PORT", "http", "STRATA_DAGSTER_PORT='http' is not a port number"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name, value, message):
    with pytest.raises(ValueError) as refused:
        Settings.from_env({name: value})

    assert str(refused.value) == message


def test_the_code_location_takes_partitions_freshness_and_retries_from_the_settings():
    probe = textwrap.dedent(
        """
        import json
        import dagster as dg
        from strata.definitions import defs

        def hours(window):
            return window.days * 24 + window.seconds / 3600

        graph = defs.resolve_asset_graph()
        gold = graph.get(dg.AssetKey(["gold", "account_daily_engagement"]))
        index = defs.get_assets_def(dg.AssetKey(["vector", "content_index"]))
        windows = {
            node.key.to_user_string(): [
                hours(node.freshness_policy.warn_window), hours(node.freshness_policy.fail_window)
            ]
            for node in graph.asset_nodes
        }
        print(json.dumps({
            "partitions_start": gold.partitions_def.get_first_partition_key().split("|")[0],
            "windows": sorted({(k, tuple(w)) for k, w in windows.items()}),
            "index_retry_delay": index.op.retry_policy.delay,
            "tweets_api_cron": defs.get_schedule_def("x_recent_search_schedule").cron_schedule,
        }))
        """
    )
    env = {
        "STRATA_PARTITIONS_START": "2026-10-15",
        "STRATA_FRESHNESS_WARN_HOURS": "2",
        "STRATA_FRESHNESS_FAIL_HOURS": "6",
        "STRATA_RETRY_DELAY_SCALE": "0.5",
        "STRATA_TWEETS_API_CRON": "*/5 * * * *",
    }
    out = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout

    found = json.loads(out.splitlines()[-1])
    windows = {key: tuple(window) for key, window in found.pop("windows")}
    assert found == {
        "partitions_start": "2026-10-15",
        "index_retry_delay": 2.5,  # content_index's first delay: 5 s
        "tweets_api_cron": "*/5 * * * *",
    }
    # Every asset of every layer has a freshness policy: the configured default, or its own for the data that
    # comes once a day (a source's entry, a dbt model's meta.dagster.freshness).
    daily = {
        "bronze/social_accounts",
        "bronze/dmap_ad_spend",
        "silver/account_snapshots",
        "silver/accounts",
        "silver/ad_spend",
    }
    assert {key: window for key, window in windows.items() if window != (2, 6)} == dict.fromkeys(
        daily, (26, 50)
    )
    assert {key.split("/")[0] for key in windows} == {
        "landing",
        "bronze",
        "documents",
        "silver",
        "gold",
        "vector",
    }
