"""The data-quality history table and the dashboard asset, on a real instance and a real warehouse."""

from __future__ import annotations

import dagster as dg

from assets.observability.quality import check_history, data_quality_dashboard
from resources import PostgresResource


@dg.asset(
    key=["bronze", "orders"], check_specs=[dg.AssetCheckSpec("rows_positive", asset=["bronze", "orders"])]
)
def orders() -> dg.MaterializeResult:
    failed = dg.AssetCheckResult(
        check_name="rows_positive", passed=False, severity=dg.AssetCheckSeverity.ERROR
    )
    return dg.MaterializeResult(check_results=[failed])


@dg.asset(
    key=["gold", "customers"], check_specs=[dg.AssetCheckSpec("keys_unique", asset=["gold", "customers"])]
)
def customers() -> dg.MaterializeResult:
    return dg.MaterializeResult(check_results=[dg.AssetCheckResult(check_name="keys_unique", passed=True)])


def test_check_outcomes_are_recorded_once_and_the_dashboard_summarizes_them(warehouse: PostgresResource):
    instance = dg.DagsterInstance.ephemeral()
    dg.materialize([orders, customers], instance=instance)
    with warehouse.connect(autocommit=True) as conn:
        # The module's warehouse is shared: start from no history, whichever test ran before.
        conn.execute("DROP SCHEMA IF EXISTS gold CASCADE; DROP SCHEMA IF EXISTS bronze CASCADE")
        conn.execute("CREATE SCHEMA gold")
        conn.execute(
            """CREATE TABLE gold.post_media_quality AS
               SELECT * FROM (VALUES (date '2026-11-01', 'x', 0.05::float8), (date '2026-11-02', 'x', 0.125),
                                     (date '2026-11-02', 'tiktok', 0.0)) AS t (post_date, network, mismatch_rate)"""
        )
    resources = {"postgres": warehouse}

    first = dg.materialize([check_history, data_quality_dashboard], instance=instance, resources=resources)
    again = dg.materialize([check_history], instance=instance, resources=resources)

    with warehouse.connect() as conn:
        rows = conn.execute(
            "SELECT asset_key, layer, check_name, passed, severity FROM gold.check_history ORDER BY asset_key"
        ).fetchall()
    assert rows == [
        ("bronze/orders", "bronze", "rows_positive", False, "ERROR"),
        ("gold/customers", "gold", "keys_unique", True, "ERROR"),
    ]
    (history,) = again.asset_materializations_for_node(check_history.op.name)
    assert history.metadata["new_outcomes"].value == 0
    (dashboard,) = first.asset_materializations_for_node(data_quality_dashboard.op.name)
    meta = {name: value.value for name, value in dashboard.metadata.items()}
    assert (meta["checks"], meta["failing_checks"], meta["pass_rate"]) == (2, 1, 0.5)
    assert (
        "| bronze | 1 | 0 | 0.0% |" in meta["dashboard"] and "| gold | 1 | 1 | 100.0% |" in meta["dashboard"]
    )
    # It leads with what is failing now: the check, its asset and partition, since when.
    assert meta["dashboard"].startswith(
        "## Failing now\n\n| check | asset | partition | severity | failing since |"
    )
    failing_row = meta["dashboard"].split("\n")[4]
    assert failing_row.startswith("| rows_positive | `bronze/orders` |  | ERROR | ")
    assert "data:image/png;base64," in meta["dashboard"]
    # The measured media_count mismatch rate, a row per network and a column per day.
    assert (
        "| network | 11-01 | 11-02 |\n|---|---|---|\n| tiktok |  | 0.0% |\n| x | 5.0% | 12.5% |\n"
        in meta["dashboard"]
    )


@dg.asset(
    key=["silver", "events"],
    partitions_def=dg.StaticPartitionsDefinition(["a", "b"]),
    config_schema={"passed": bool},
    check_specs=[dg.AssetCheckSpec("in_order", asset=["silver", "events"])],
)
def events(context) -> dg.MaterializeResult:
    verdict = dg.AssetCheckResult(check_name="in_order", passed=context.op_config["passed"])
    return dg.MaterializeResult(check_results=[verdict])


def test_a_check_failing_now_is_listed_per_partition_since_its_first_failure_after_its_last_pass(
    warehouse: PostgresResource,
):
    instance = dg.DagsterInstance.ephemeral()
    resources = {"postgres": warehouse}
    with warehouse.connect(autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS gold CASCADE; DROP SCHEMA IF EXISTS bronze CASCADE")

    def evaluate(partition: str, passed: bool) -> None:
        config = {"ops": {"silver__events": {"config": {"passed": passed}}}}
        dg.materialize([events], partition_key=partition, instance=instance, run_config=config)
        dg.materialize([check_history], instance=instance, resources=resources)

    evaluate("a", False)
    evaluate("a", True)
    evaluate("a", False)  # failing since here
    evaluate("a", False)
    evaluate("b", True)
    with warehouse.connect(autocommit=True) as conn:
        conn.execute(
            """CREATE SCHEMA bronze;
               CREATE TABLE bronze.quarantine (source text, reason text);
               INSERT INTO bronze.quarantine VALUES ('tweets', 'malformed_json'), ('tweets', 'malformed_json'),
                   ('social_posts', 'duplicate_record')"""
        )
        since = conn.execute(
            """SELECT evaluated_at FROM gold.check_history WHERE check_name = 'in_order' AND partition_key = 'a'
               ORDER BY storage_id OFFSET 2 LIMIT 1"""
        ).fetchone()[0]

    result = dg.materialize([data_quality_dashboard], instance=instance, resources=resources)

    (dashboard,) = result.asset_materializations_for_node(data_quality_dashboard.op.name)
    page = dashboard.metadata["dashboard"].value
    failing = [line for line in page.split("\n") if line.startswith("| in_order")]
    assert failing == [f"| in_order | `silver/events` | a | ERROR | {since:%Y-%m-%d %H:%M} UTC |  |  |"]
    assert dashboard.metadata["failing_checks"].value == 1
    # Quarantine, a row per source and a column per reason.
    assert "| social_posts |                  1 |                0 |" in page
    assert "| tweets       |                  0 |                2 |" in page


def test_the_dashboard_shows_rows_dropped_per_rule_and_plots_freshness_and_volume_over_time(
    warehouse: PostgresResource,
):
    import pandas
    from dagster._core.definitions.freshness import FreshnessState, FreshnessStateChange

    from assets.bronze import ledger
    from assets.observability.quality import _degraded_over_time, _volume_over_time

    instance = dg.DagsterInstance.ephemeral()
    resources = {"postgres": warehouse}
    with warehouse.connect(autocommit=True) as conn:
        conn.execute(
            """DROP SCHEMA IF EXISTS gold CASCADE; DROP SCHEMA IF EXISTS bronze CASCADE;
               DROP SCHEMA IF EXISTS dq_failures CASCADE; DROP SCHEMA IF EXISTS ledger CASCADE"""
        )
        # Two models' row-rule tables, and a table of a dbt test's failing rows (no rule, no action).
        conn.execute(
            """CREATE SCHEMA dq_failures;
               CREATE TABLE dq_failures.accounts (model text, rule text, action text, load_id bigint,
                   partition_date date, partition_network text, "row" jsonb, recorded_at timestamptz);
               CREATE TABLE dq_failures.posts (LIKE dq_failures.accounts);
               CREATE TABLE dq_failures.accepted_values_accounts_network (value_field text, n_records bigint);
               INSERT INTO dq_failures.accounts (model, rule, action, "row", recorded_at)
                   SELECT 'accounts', rule, action, '{}', now()
                   FROM (VALUES ('network_is_known', 'drop'), ('network_is_known', 'drop'),
                                ('network_is_known', 'drop'), ('followers_not_negative', 'warn'),
                                ('followers_not_negative', 'warn')) AS r (rule, action);
               INSERT INTO dq_failures.posts (model, rule, action, "row", recorded_at)
                   VALUES ('posts', 'account_is_known', 'warn', '{}', now());
               INSERT INTO dq_failures.accepted_values_accounts_network VALUES ('free text', 23)"""
        )
        conn.execute(
            """CREATE SCHEMA bronze; CREATE TABLE bronze.quarantine (source text, reason text);
               INSERT INTO bronze.quarantine VALUES ('tweets', 'malformed_json')"""
        )
        ledger.ensure_schema(conn)
        conn.execute(
            """INSERT INTO ledger.loads (source, path, stored_path, partition_key, size_bytes, sha256, status,
                                         records_loaded, finished_at)
               VALUES ('tweets', 'a', 'a', '2026-11-01', 1, 'h1', 'archived', 100, now()),
                      ('tweets', 'b', 'b', '2026-11-02', 1, 'h2', 'archived', 120, now()),
                      ('tweets', 'c', 'c', '2026-11-02', 1, 'h3', 'superseded', 999, now()),
                      ('social_posts', 'd', 'd', '2026-11-01|x', 1, 'h4', 'archived', 50, now()),
                      ('social_posts', 'e', 'e', '2026-11-01|tiktok', 1, 'h5', 'archived', 30, now())"""
        )
    changes = [
        (["gold", "a"], FreshnessState.PASS, FreshnessState.WARN),
        (["gold", "b"], FreshnessState.PASS, FreshnessState.FAIL),
        (["gold", "a"], FreshnessState.WARN, FreshnessState.PASS),
    ]
    for key, before, after in changes:
        instance.report_runless_asset_event(
            FreshnessStateChange(
                key=dg.AssetKey(key), previous_state=before, new_state=after, state_change_timestamp=0.0
            )
        )
    dg.materialize([check_history], instance=instance, resources=resources)

    result = dg.materialize([data_quality_dashboard], instance=instance, resources=resources)

    (dashboard,) = result.asset_materializations_for_node(data_quality_dashboard.op.name)
    page = dashboard.metadata["dashboard"].value
    assert [line for line in page.split("\n") if line.startswith("## ")] == [
        "## Failing now",
        "## Checks: latest outcome per check and partition",
        "## Rows dropped and warned per rule",
        "## Quarantine by source and reason",
        "## Freshness",
        "## Freshness over time: assets at WARN and FAIL",
        "## Volume over time: rows loaded per source and day (last 30 days with loads)",
    ]
    assert (
        "| model | rule | dropped | warned |\n|---|---|---|---|\n"
        "| accounts | followers_not_negative | 0 | 2 |\n"
        "| accounts | network_is_known | 3 | 0 |\n"
        "| posts | account_is_known | 0 | 1 |\n"
    ) in page
    assert (dashboard.metadata["rows_dropped"].value, dashboard.metadata["rows_warned"].value) == (3, 3)
    assert page.count("](data:image/png;base64,") == 2
    # What the plots draw: the assets at WARN and FAIL after each change, the rows loaded per source and day.
    assert _degraded_over_time(instance, pandas).to_dict("list") == {"WARN": [1, 1, 0], "FAIL": [0, 1, 1]}
    with warehouse.connect() as conn:
        volume = _volume_over_time(conn, pandas)
    assert {str(day): row for day, row in volume.to_dict("index").items()} == {
        "2026-11-01": {"social_posts": 80, "tweets": 100},
        "2026-11-02": {"social_posts": 0, "tweets": 120},
    }
