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
        conn.execute("CREATE SCHEMA IF NOT EXISTS gold")
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
    assert "`bronze/orders` **rows_positive** (ERROR" in meta["dashboard"]
    assert "data:image/png;base64," in meta["dashboard"]
    # The measured media_count mismatch rate, a row per network and a column per day.
    assert (
        "| network | 11-01 | 11-02 |\n|---|---|---|\n| tiktok |  | 0.0% |\n| x | 5.0% | 12.5% |\n"
        in meta["dashboard"]
    )
