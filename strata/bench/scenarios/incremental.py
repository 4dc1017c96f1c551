"""Incremental partition cost (`incremental_partition`): one new day through bronze → silver → gold, with a short
and a long history already loaded. The cost of a day must not grow with the history behind it.

For each history length H (1 and 30 days; 3 and 8 with STRATA_BENCH_QUICK): generate H + 1 days of every source
at scale 70, over 100k posts a day (scale 1 in a quick run), land the first H days, load them through the real
assets as `strata demo` does (bronze per partition, the unpartitioned dbt models, the dbt daily and date ×
network models over the loaded range in one run each, then the models built after the partitions), then land
the new day and time everything it sets off:

- bronze: every partitioned bronze asset's partitions of the new day (one `dg.materialize` each);
- dbt partitions: `dbt_date_network` over that day's date × network keys (one range run) + `dbt_daily` for the day;
- after partitions: the unpartitioned models that read partitioned ones (`_after_keys`).

The target is on the sum of the three, 30 days against 1, beside the rows the new day's runs read
(pg_stat_user_tables). A failed run fails the scenario. Everything runs in-process against the bench database
(its schemas are dropped before each history), with an ephemeral Dagster instance.
"""

from __future__ import annotations

import os
import shutil
import time
from datetime import timedelta
from pathlib import Path

from psycopg import sql

from strata import services
from strata.bench.core import BenchContext, ScenarioResult
from strata.bench.data import FAULTS

HISTORIES = (1, 30)
QUICK_HISTORIES = (3, 8)
MAX_RATIO = 1.25
# ≥ 100k posts a day (1,440 × 1.02 a day at scale 1): at that size a cost that grows with history shows.
SCALE = 70
QUICK_SCALE = 1
# Sources that need a live Mongo to generate; their bronze assets still run (on an empty store).
SOURCES = (
    "social_posts",
    "social_accounts",
    "tweets",
    "ambassadors",
    "video_users",
    "video_sessions",
    "video_content",
    "cdc_brands",
    "dmap_ad_spend",
    "video_playback",
)
KEEP_SCHEMAS = ("public", "information_schema")


def _reset_database(ctx: BenchContext) -> None:
    with ctx.connect() as conn:
        schemas = [
            row[0]
            for row in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE left(nspname, 3) <> 'pg_' AND nspname <> ALL(%s)",
                (list(KEEP_SCHEMAS),),
            )
        ]
        for schema in schemas:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def _land(staging: Path, landing: Path, *, days: set[str], include_undated: bool) -> int:
    """Copy the staged files of `days` (and, once, the files of no day) into the landing zone."""
    copied = 0
    for path in sorted(staging.rglob("*")):
        if not path.is_file() or path.name == "manifest.json":
            continue
        relative = path.relative_to(staging)
        text = str(relative)
        day = next((d for d in days if d in text or d.replace("-", "") in text), None)
        dated = any(part.startswith("date=") for part in relative.parts) or _has_any_day(text)
        if day is None and (dated or not include_undated):
            continue
        target = landing / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        copied += 1
    return copied


_ALL_DAYS: set[str] = set()


def _has_any_day(text: str) -> bool:
    return any(d in text or d.replace("-", "") in text for d in _ALL_DAYS)


def _materialize(assets, *, resources, partition_key=None, selection=None, tags=None) -> bool:
    import dagster as dg

    result = dg.materialize(
        assets,
        selection=selection,
        partition_key=partition_key,
        tags=tags or {},
        resources=resources,
        raise_on_error=False,
    )
    return result.success


def _rows_scanned(ctx: BenchContext) -> int:
    """Rows read so far from the bench database's tables: sequential scans plus index fetches
    (pg_stat_user_tables, after a fresh snapshot; every run's connections have closed, so their counts are in)."""
    with ctx.connect() as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        (rows,) = conn.execute(
            "SELECT coalesce(sum(coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)), 0)::bigint "
            "FROM pg_stat_user_tables"
        ).fetchone()
    return rows


def _day_keys(assets_def, days: list[str]) -> list[str]:
    return [k for k in assets_def.partitions_def.get_partition_keys() if days[0] <= k[:10] <= days[-1]]


def _history_and_new_day(ctx: BenchContext, history: int) -> dict:
    # The first days the definitions partition: files dated before them are refused at landing.
    from assets.partitions import START
    from strata.generate import generate

    root = ctx.work_dir / f"incremental-{history}d"
    shutil.rmtree(root, ignore_errors=True)
    staging, landing = root / "staging", root / "landing"
    landing.mkdir(parents=True)
    days = [(START + timedelta(days=i)).isoformat() for i in range(history + 1)]
    _ALL_DAYS.clear()
    _ALL_DAYS.update(days)
    scale = QUICK_SCALE if ctx.quick else SCALE
    ctx.log(f"incremental_partition: generating {history + 1} days at scale {scale}")
    manifest = generate(staging, scale=scale, days=history + 1, start=START, faults=FAULTS, sources=SOURCES)
    posts = manifest["sources"]["social_posts"]
    _land(staging, landing, days=set(days[:-1]), include_undated=True)

    _reset_database(ctx)
    env = {
        "STRATA_POSTGRES_URL": ctx.url,
        "STRATA_LANDING_DIR": str(landing),
        "STRATA_MONGO_URL": (root / "mongo").as_uri(),
        "STRATA_MONGO_DATABASE": "bench",
        "STRATA_QDRANT_URL": (root / "qdrant").as_uri(),
        "STRATA_PII_SALT": os.environ.get("STRATA_PII_SALT") or services.pii_salt(ctx.settings),
    }
    from assets.transform.assets import scoped_environ

    try:
        with scoped_environ(env):
            return _run(ctx, history, days, landing, staging, posts)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(ctx: BenchContext, history: int, days: list[str], landing: Path, staging: Path, posts: dict) -> dict:
    import dagster as dg

    from assets.bronze import ledger
    from assets.bronze.discover import data_partitions
    from assets.bronze.factory import bronze_assets
    from assets.partitions import RANGE_END_TAG, RANGE_START_TAG
    from assets.transform import dbt_assets
    from strata.definitions import defs

    resources = defs.resources
    unpartitioned = next(a for a in dbt_assets if not a.partitions_def)
    partitioned = [a for a in dbt_assets if a.partitions_def]
    after = _after_keys()
    failures: list[str] = []

    def bronze_partitions(wanted_days: set[str]) -> list[tuple]:
        steps = []
        with dg.build_resources({"postgres": resources["postgres"], "landing": resources["landing"]}) as live:
            with live.postgres.connect(autocommit=True) as conn:
                ledger.ensure_schema(conn)
                data = data_partitions(conn, live.landing)
                for asset in bronze_assets:
                    keys = sorted(data[asset.key]) if asset.key in data else [None]
                    for key in keys:
                        if key is None or key[:10] in wanted_days:
                            steps.append((asset, key))
        return steps

    def run(label, assets, **kwargs) -> None:
        if not _materialize(assets, resources=resources, **kwargs):
            failures.append(label)

    # History, as `strata demo` loads it.
    history_days = days[:-1]
    started = time.perf_counter()
    history_steps = bronze_partitions(set(history_days))
    if not any(key for _, key in history_steps):
        raise RuntimeError(f"no partition of {history_days[0]} … {history_days[-1]} was found in {landing}")
    for asset, key in history_steps:
        run(f"bronze {asset.key.to_user_string()}[{key}]", [asset], partition_key=key)
    run(
        "dbt unpartitioned",
        [unpartitioned],
        selection=dg.AssetSelection.assets(*(unpartitioned.keys - after)),
    )
    for assets_def in partitioned:
        keys = _day_keys(assets_def, history_days)
        run(
            f"dbt {assets_def.op.name}",
            [assets_def],
            tags={RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]},
        )
    run("dbt after partitions", [unpartitioned], selection=dg.AssetSelection.assets(*after))
    history_s = time.perf_counter() - started
    ctx.log(f"incremental_partition: {history} days of history loaded in {history_s:.0f} s")

    # The new day.
    new_day = days[-1]
    _land(staging, landing, days={new_day}, include_undated=False)
    new_steps = [(a, k) for a, k in bronze_partitions({new_day}) if k is not None]
    scanned = _rows_scanned(ctx)
    started = time.perf_counter()
    for asset, key in new_steps:
        run(f"new bronze {asset.key.to_user_string()}[{key}]", [asset], partition_key=key)
    bronze_s = time.perf_counter() - started
    bronze_scanned, scanned = _rows_scanned(ctx) - scanned, _rows_scanned(ctx)
    started = time.perf_counter()
    for assets_def in partitioned:
        keys = _day_keys(assets_def, [new_day])
        if len(keys) == 1:
            run(f"new dbt {assets_def.op.name}", [assets_def], partition_key=keys[0])
        else:
            run(
                f"new dbt {assets_def.op.name}",
                [assets_def],
                tags={RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]},
            )
    dbt_s = time.perf_counter() - started
    dbt_scanned, scanned = _rows_scanned(ctx) - scanned, _rows_scanned(ctx)
    started = time.perf_counter()
    run("new dbt after partitions", [unpartitioned], selection=dg.AssetSelection.assets(*after))
    after_s = time.perf_counter() - started
    after_scanned = _rows_scanned(ctx) - scanned

    with ctx.connect() as conn:
        silver_posts = conn.execute("SELECT count(*) FROM silver.posts").fetchone()[0]
        bronze_posts = conn.execute("SELECT count(*) FROM bronze.social_posts").fetchone()[0]
    return {
        "history_days": history,
        "new_day": new_day,
        "posts_generated": posts.get("records_total") or sum(f["records"] for f in posts["files"]),
        "bronze_rows": bronze_posts,
        "silver_posts": silver_posts,
        "history_load_s": history_s,
        "bronze_partitions": len(new_steps),
        "bronze_s": bronze_s,
        "dbt_partitions_s": dbt_s,
        "day_s": bronze_s + dbt_s,
        "after_partitions_s": after_s,
        "total_s": bronze_s + dbt_s + after_s,
        "bronze_rows_scanned": bronze_scanned,
        "dbt_partitions_rows_scanned": dbt_scanned,
        "after_partitions_rows_scanned": after_scanned,
        "rows_scanned": bronze_scanned + dbt_scanned + after_scanned,
        "failed_runs": failures,
    }


def incremental_partition(ctx: BenchContext) -> ScenarioResult:
    histories = QUICK_HISTORIES if ctx.quick else HISTORIES
    result = ScenarioResult(
        "incremental_partition",
        f"one new daily partition through bronze → silver → gold with {histories[0]} vs {histories[1]} days of "
        f"history (scale {QUICK_SCALE if ctx.quick else SCALE}, in-process dg.materialize)",
        columns=[
            ("bronze posts", "bronze_rows", ",d"),
            ("bronze parts", "bronze_partitions", "d"),
            ("bronze s", "bronze_s", ",.1f"),
            ("dbt partitions s", "dbt_partitions_s", ",.1f"),
            ("new day s", "day_s", ",.1f"),
            ("after-partition models s", "after_partitions_s", ",.1f"),
            ("total s", "total_s", ",.1f"),
            ("rows scanned", "rows_scanned", ",d"),
            ("history load s", "history_load_s", ",.0f"),
        ],
    )
    figures = {}
    for history in histories:
        figure = _history_and_new_day(ctx, history)
        figures[history] = figure
        result.figures[f"{history} days of history"] = figure
        if figure["failed_runs"]:
            result.notes.append(f"{history} days: failed runs {figure['failed_runs']}")
    short, long = (figures[h] for h in histories)
    failed = len(short["failed_runs"]) + len(long["failed_runs"])
    # A failed run did less work than a real day: its times compare nothing, and the scenario fails.
    result.target("failed runs", float(failed), "<=", 0)
    ratio = result.ratio(
        f"new day with every downstream model {histories[1]}d/{histories[0]}d",
        long["total_s"] if not failed else None,
        short["total_s"],
    )
    result.ratio(f"rows scanned {histories[1]}d/{histories[0]}d", long["rows_scanned"], short["rows_scanned"])
    result.ratio(f"bronze + dbt partitions {histories[1]}d/{histories[0]}d", long["day_s"], short["day_s"])
    result.ratio(f"bronze {histories[1]}d/{histories[0]}d", long["bronze_s"], short["bronze_s"])
    result.ratio(
        f"dbt partitions {histories[1]}d/{histories[0]}d", long["dbt_partitions_s"], short["dbt_partitions_s"]
    )
    result.ratio(
        f"after-partition models {histories[1]}d/{histories[0]}d",
        long["after_partitions_s"],
        short["after_partitions_s"],
    )
    result.target(
        f"new day with every downstream model {histories[1]}d/{histories[0]}d", ratio, "<=", MAX_RATIO, "×"
    )
    result.notes.append(
        "new day = the new date's bronze partitions (one run each) + dbt_date_network over its date × network keys "
        "(one range run) + dbt_daily for the date + the unpartitioned models built after the partitions "
        f"({', '.join(sorted('/'.join(k.path) for k in _after_keys()))}); rows scanned = seq_tup_read + "
        "idx_tup_fetch of pg_stat_user_tables over the new day's runs"
    )
    for key in list(result.figures):
        if result.figures[key].get("failed_runs") == []:
            result.figures[key].pop("failed_runs")
    return result


def _after_keys() -> set:
    """The unpartitioned models the build order places after a partitioned step."""
    from assets.automation.plan import build_order
    from assets.transform import dbt_assets
    from strata.definitions import defs

    steps = build_order(defs.resolve_asset_graph(), {key for a in dbt_assets for key in a.keys})
    after, partitioned_seen = set(), False
    for step in steps:
        partitioned_seen |= step.partitions_def is not None
        if partitioned_seen and step.partitions_def is None:
            after |= set(step.keys)
    return after
