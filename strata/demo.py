"""`strata demo`: the pipeline headless. Land the sample drop if the landing zone is empty, materialize every
asset once (every partition that has data), run every check, print a summary, and fail if a blocking
check failed. Runs are recorded in the same Dagster instance that `strata up` serves."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import dagster as dg

from strata import services
from strata.config import Settings
from strata.sample_drop import land_sample_drop, landing_is_empty


@dataclass
class DemoReport:
    runs: int = 0
    failed_runs: list[str] = field(default_factory=list)
    checks: Counter = field(default_factory=Counter)
    blocking_failures: list[str] = field(default_factory=list)

    def record(self, label: str, result: dg.ExecuteInProcessResult, blocking: set[dg.AssetCheckKey]) -> None:
        self.runs += 1
        if not result.success:
            self.failed_runs.append(label)
        for evaluation in result.get_asset_check_evaluations():
            outcome = "passed" if evaluation.passed else "failed"
            self.checks[(evaluation.severity.value, outcome)] += 1
            if not evaluation.passed and evaluation.asset_check_key in blocking:
                self.blocking_failures.append(f"{label}: {evaluation.check_name}")

    @property
    def ok(self) -> bool:
        return not self.failed_runs and not self.blocking_failures


def run_demo(settings: Settings) -> int:
    env = services.up(settings)
    os.environ.update(env)
    if landing_is_empty(settings):
        land_sample_drop(settings)
        print(f"landed the sample drop in {settings.landing_dir}")

    from assets.bronze import ledger
    from assets.bronze.discover import partitions_with_data
    from assets.bronze.factory import bronze_assets
    from strata.definitions import defs

    instance = dg.DagsterInstance.get()
    resources = defs.resources
    assets_defs = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition)]
    blocking = {spec.key for a in assets_defs for spec in a.check_specs if spec.blocking}
    report = DemoReport()
    with dg.build_resources({"postgres": resources["postgres"], "landing": resources["landing"]}) as live:
        with live.postgres.connect(autocommit=True) as conn:
            ledger.ensure_schema(conn)
            plan = [(asset, partitions_with_data(conn, asset, live.landing)) for asset in bronze_assets]
    for asset, partition_keys in plan:
        for partition_key in partition_keys:
            label = asset.key.to_user_string() + (f"[{partition_key}]" if partition_key else "")
            result = dg.materialize(
                [asset],
                resources=resources,
                partition_key=partition_key,
                instance=instance,
                raise_on_error=False,
            )
            report.record(label, result, blocking)

    with dg.build_resources({"postgres": resources["postgres"]}) as live:
        _print_summary(report, live.postgres)
    return 0 if report.ok else 1


def _print_summary(report: DemoReport, postgres) -> None:
    from psycopg import sql

    print("\n== rows per layer ==")
    with postgres.connect() as conn:
        tables = conn.execute(
            """SELECT table_schema, table_name FROM information_schema.tables
               WHERE table_schema IN ('bronze', 'silver', 'gold') AND table_type = 'BASE TABLE'
               ORDER BY 1, 2"""
        ).fetchall()
        for schema, name in tables:
            (count,) = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
            ).fetchone()
            print(f"  {schema}.{name:<32} {count:>10,}")
    print("\n== checks ==")
    for (severity, outcome), count in sorted(report.checks.items()):
        print(f"  {severity:<5} {outcome:<6} {count}")
    print(f"\n{report.runs} runs, {len(report.failed_runs)} failed")
    for label in report.failed_runs:
        print(f"  run failed: {label}")
    for failure in report.blocking_failures:
        print(f"  blocking check failed: {failure}")
    print("demo: OK" if report.ok else "demo: FAILED")
