"""`strata demo`: the pipeline headless. Land the sample drop if the landing zone is empty, materialize every
asset once in the graph's build order (assets.automation.plan), run every check, print a summary, and fail if a
run failed or a blocking check failed. Runs are recorded in the same Dagster instance that `strata up` serves;
a run a killed demo left in progress is failed at the next start, and SIGINT/SIGTERM stop a demo at once
(strata.run_session)."""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from assets.automation.graph import downstream_of
from assets.automation.plan import Run, materialize_runs
from strata import services
from strata.config import Settings
from strata.run_session import RunSession
from strata.sample_drop import land_sample_drop, landing_is_empty

SAMPLE_QUERY = "funny cat videos"
# Read every check's outcome: built after everything else.
QUALITY_GROUP = "observability"


@dataclass
class DemoReport:
    runs: int = 0
    failed_runs: list[str] = field(default_factory=list)
    checks: Counter = field(default_factory=Counter)
    blocking_failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def record(
        self, run: Run, result: dg.ExecuteInProcessResult, blocking: set[dg.AssetCheckKey]
    ) -> set[dg.AssetKey]:
        """Count the run's outcomes; returns the assets whose downstream must not be built on top of them (a
        blocking check failed, or they were not materialized)."""
        self.runs += 1
        if not result.success:
            self.failed_runs.append(run.label)
        unusable = set(run.keys) - {event.asset_key for event in result.get_asset_materialization_events()}
        for evaluation in result.get_asset_check_evaluations():
            outcome = "passed" if evaluation.passed else "failed"
            self.checks[(evaluation.severity.value, outcome)] += 1
            if not evaluation.passed and evaluation.asset_check_key in blocking:
                self.blocking_failures.append(
                    f"{run.label}: {evaluation.asset_key.to_user_string()} {evaluation.check_name}"
                )
                unusable.add(evaluation.asset_key)
        return unusable

    @property
    def ok(self) -> bool:
        return not self.failed_runs and not self.blocking_failures


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
    definitions = [*defs.assets, *defs.asset_checks]
    asset_graph = defs.resolve_asset_graph()
    blocked: set[dg.AssetKey] = set()
    with RunSession(instance, say=lambda line: print(line, flush=True)) as session:
        session.recover()

        def execute(planned: Run) -> None:
            run = replace(planned, keys=tuple(key for key in planned.keys if key not in blocked))
            left_out = [key.to_user_string() for key in planned.keys if key in blocked]
            if left_out:
                print(f"… skipped {', '.join(left_out)}: built on a failed blocking check or a failed run")
                report.skipped += left_out
            if not run.keys:
                return
            print(f"… {run.label}", flush=True)
            session.wait_for_pools(_pools(defs, run))
            [(_, result)] = materialize_runs(
                [run],
                definitions,
                resources,
                instance=instance,
                tags=session.tags,
                execute=session.execute,
                raise_on_error=False,
            )
            blocked.update(downstream_of(asset_graph, report.record(run, result, blocking)))

        # Extractions land first: the plan is made from what has landed.
        for run in extraction_runs(settings, datetime.now(UTC).date()):
            execute(run)
        for run in plan(defs):
            execute(run)
        print(f"\ndone in {time.monotonic() - started:.0f} s")
        _print_summary(report, defs, instance)
    return 0 if report.ok else 1


def _pools(defs: dg.Definitions, run: Run) -> set[str]:
    """The pools the run's assets and their checks take (pools are taken per run)."""
    return {
        pool
        for definition in [*defs.assets, *defs.asset_checks]
        if (set(definition.keys) | {c.asset_key for c in definition.check_keys}) & set(run.keys)
        and (pool := getattr(definition.node_def, "pool", None))
    }


def extraction_runs(settings: Settings, today: date) -> list[Run]:
    """The recent-search extraction of the last `tweets_api_days` days, a run per day, when an endpoint is
    configured; none, saying so, when not."""
    from assets.landing.x_recent_search import KEY
    from resources import RecentSearchResource

    api = RecentSearchResource()
    if not api.base_url:
        print(f"… not searching tweets ({KEY.to_user_string()}): {api.url_env} is not set")
        return []
    first = max(today - timedelta(days=settings.tweets_api_days - 1), settings.partitions_start)
    days = [first + timedelta(days=n) for n in range((today - first).days + 1)]
    return [Run((KEY,), (day.isoformat(), day.isoformat())) for day in days]


def plan(defs: dg.Definitions) -> list[Run]:
    """Every asset built from the landing zone once, in the graph's build order: bronze over the partitions that
    have files (one run per range), the partitioned models over every partition of the days with data, the
    data-quality assets last."""
    from assets.automation.plan import plan_runs
    from assets.bronze import ledger
    from assets.bronze.discover import data_partitions

    asset_graph = defs.resolve_asset_graph()
    with dg.build_resources(
        {"postgres": defs.resources["postgres"], "landing": defs.resources["landing"]}
    ) as live:
        with live.postgres.connect(autocommit=True) as conn:
            ledger.ensure_schema(conn)
            data = data_partitions(conn, live.landing)
    quality = [
        key
        for key in asset_graph.materializable_asset_keys
        if asset_graph.get(key).group_name == QUALITY_GROUP
    ]
    built = {key for key in asset_graph.materializable_asset_keys if key.path[0] != "landing"}
    return plan_runs(asset_graph, data, built, last=quality)


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
        from assets.vector.search import COLLECTION
        from resources.qdrant import QdrantUnavailableError

        try:
            with live.qdrant.reader(COLLECTION) as store:
                indexed: int | None = store.count()
            print(f"  qdrant {COLLECTION:<34} {indexed:>10,}")
        except QdrantUnavailableError as exc:
            indexed = None
            print(f"  qdrant {COLLECTION:<34} {exc}")

        print("\n== checks ==")
        for (severity, outcome), count in sorted(report.checks.items()):
            print(f"  {severity:<5} {outcome:<6} {count}")

        print("\n== freshness ==")
        for state, keys in sorted(_freshness(defs, instance).items()):
            print(
                f"  {state:<4} {len(keys):>3} assets"
                + (f": {', '.join(sorted(keys)[:6])}" if state != "PASS" else "")
            )

        print(f'\n== hybrid search: "{SAMPLE_QUERY}" ==')
        from assets.vector.search import search

        for hit in search(live.qdrant, live.embedder, SAMPLE_QUERY, limit=3) if indexed is not None else []:
            print(f"  {hit.rank}. {hit.score:.3f} [{hit.source_type} {hit.network or ''}] {hit.text[:90]}")

    print(f"\n{report.runs} runs, {len(report.failed_runs)} failed, {len(report.skipped)} skipped")
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
