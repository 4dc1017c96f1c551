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
