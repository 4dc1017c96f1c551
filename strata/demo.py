"""`strata demo`: the pipeline headless. Land the sample drop if the landing zone is empty, materialize every
asset once (bronze per partition with data, dbt over the partition ranges, the vector index, the quality
assets), run every check, print a summary, and fail if a run failed or a blocking check failed.
Runs are recorded in the same Dagster instance that `strata up` serves."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field

import dagster as dg

from strata import services
from strata.config import Settings
from strata.run_session import RunSession
from strata.sample_drop import land_sample_drop, landing_is_empty

SAMPLE_QUERY = "funny cat videos"


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
                self.blocking_failures.append(
                    f"{label}: {evaluation.asset_key.to_user_string()} {evaluation.check_name}"
                )

    @property
    def ok(self) -> bool:
        return not self.failed_runs and not self.blocking_failures


@dataclass(frozen=True)
class Step:
    label: str
    assets: list
    selection: dg.AssetSelection | None = None
    partition_key: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


def run_demo(settings: Settings) -> int:
    os.environ.update(services.up(settings))
    if landing_is_empty(settings):
        land_sample_drop(settings)
        print(f"landed the sample drop in {settings.landing_dir}")

    from strata.definitions import defs

    instance = dg.DagsterInstance.get()
    resources = defs.resources
    report = DemoReport()
    blocking = {
        spec.key
        for a in defs.assets
        if isinstance(a, dg.AssetsDefinition)
        for spec in a.check_specs
        if spec.blocking
    } | {key for c in defs.asset_checks for key in c.check_keys if c.get_spec_for_check_key(key).blocking}
    started = time.monotonic()
    with RunSession(instance, say=lambda line: print(line, flush=True)) as session:
        session.recover()
        for step in plan(defs):
            print(f"… {step.label}", flush=True)
            session.wait_for_pools(_pools(step))
            result = session.execute(
                lambda step=step: dg.materialize(
                    step.assets,
                    selection=step.selection,
                    partition_key=step.partition_key,
                    tags={**step.tags, **session.tags},
                    instance=instance,
                    resources=resources,
                    raise_on_error=False,
                )
            )
            report.record(step.label, result, blocking)
        print(f"\nmaterialized everything in {time.monotonic() - started:.0f} s")
        _print_summary(report, defs, instance)
    return 0 if report.ok else 1


def _pools(step: Step) -> set[str]:
    return {pool for definition in step.assets if (pool := getattr(definition.node_def, "pool", None))}


def plan(defs: dg.Definitions) -> list[Step]:
    """Bronze per partition with data; dbt in dependency order — unpartitioned models that need no
    partitioned one, the daily and date × network models over the whole loaded range (one run each), then
    the remaining unpartitioned models; the vector index; the data-quality history and dashboard."""
    from assets.bronze import ledger
    from assets.bronze.discover import partitions_with_data
    from assets.bronze.factory import bronze_assets
    from assets.observability.quality import check_history, data_quality_dashboard
    from assets.transform import built_after_partitions, dbt_assets, range_tags
    from assets.vector.content_index import content_index, vector_checks

    steps: list[Step] = []
    days: set[str] = set()
    with dg.build_resources(
        {"postgres": defs.resources["postgres"], "landing": defs.resources["landing"]}
    ) as live:
        with live.postgres.connect(autocommit=True) as conn:
            ledger.ensure_schema(conn)
            for asset in bronze_assets:
                for partition_key in partitions_with_data(conn, asset, live.landing):
                    label = asset.key.to_user_string() + (f"[{partition_key}]" if partition_key else "")
                    steps.append(Step(label, [asset], partition_key=partition_key))
                    if partition_key:
                        days.add(partition_key.split("|")[0])

    unpartitioned = next(a for a in dbt_assets if not a.partitions_def)
    after = built_after_partitions(dbt_assets)
    steps.append(
        Step("dbt: unpartitioned", [unpartitioned], dg.AssetSelection.assets(*(unpartitioned.keys - after)))
    )
    for assets_def in (a for a in dbt_assets if a.partitions_def):
        tags = range_tags(assets_def, days)
        if tags:
            steps.append(Step(f"dbt: {assets_def.op.name} {min(days)}…{max(days)}", [assets_def], tags=tags))
    steps.append(Step("dbt: downstream of partitions", [unpartitioned], dg.AssetSelection.assets(*after)))
    steps.append(Step("vector/content_index", [content_index, *vector_checks]))
    steps.append(Step("data quality", [check_history, data_quality_dashboard]))
    return steps


def _print_summary(report: DemoReport, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
    from psycopg import sql

    with dg.build_resources(
        {name: defs.resources[name] for name in ("postgres", "qdrant", "embedder")}
    ) as live:
        print("\n== rows per layer ==")
        with live.postgres.connect() as conn:
            tables = conn.execute(
                """SELECT table_schema, table_name FROM information_schema.tables
                   WHERE table_schema IN ('bronze', 'silver', 'gold') AND table_type = 'BASE TABLE' ORDER BY 1, 2"""
            ).fetchall()
            for schema, name in tables:
                (count,) = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, name))
                ).fetchone()
                print(f"  {schema}.{name:<34} {count:>10,}")
        with live.qdrant.client() as client:
            from assets.vector.search import COLLECTION

            if client.collection_exists(COLLECTION):
                print(f"  qdrant {COLLECTION:<34} {client.count(COLLECTION, exact=True).count:>10,}")

        print("\n== checks ==")
        for (severity, outcome), count in sorted(report.checks.items()):
            print(f"  {severity:<5} {outcome:<6} {count}")

        print("\n== freshness ==")
        for state, keys in sorted(_freshness(defs, instance).items()):
            print(
                f"  {state:<4} {len(keys):>3} assets"
                + (f": {', '.join(sorted(keys)[:6])}" if state != "PASS" else "")
            )

        print(f'\n== semantic search: "{SAMPLE_QUERY}" ==')
        from assets.vector.search import search

        for hit in search(live.qdrant, live.embedder, SAMPLE_QUERY, limit=3):
            print(f"  {hit.rank}. {hit.score:.3f} [{hit.source_type} {hit.network or ''}] {hit.text[:90]}")

    print(f"\n{report.runs} runs, {len(report.failed_runs)} failed")
    for label in report.failed_runs:
        print(f"  run failed: {label}")
    for failure in report.blocking_failures:
        print(f"  blocking check failed: {failure}")
    print("demo: OK" if report.ok else "demo: FAILED")


def _freshness(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict[str, list[str]]:
    """Each policy's state now, from the last materialization (the daemon does the same under `strata up`)."""
    now = time.time()
    states: dict[str, list[str]] = {}
    for spec in defs.resolve_all_asset_specs():
        policy = spec.freshness_policy
        if policy is None:
            continue
        event = instance.get_latest_materialization_event(spec.key)
        age = now - event.timestamp if event else None
        if age is None or age > policy.fail_window.to_timedelta().total_seconds():
            state = "FAIL"
        elif policy.warn_window and age > policy.warn_window.to_timedelta().total_seconds():
            state = "WARN"
        else:
            state = "PASS"
        states.setdefault(state, []).append(spec.key.to_user_string())
    return states
