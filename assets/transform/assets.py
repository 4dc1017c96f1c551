"""The dbt models of silver and gold as Dagster assets: one `@dbt_assets` per partitioning.

Partitioned models (`meta.dagster.partitioning` = date_network or daily) share the bronze partitions
definitions, so silver/gold partition keys line up with bronze's. A run — one partition or a range of them
(single-run backfills) — hands dbt its window: `partition_start` ≤ day < `partition_end` and, for date × network
models, `partition_networks`, in STRATA_DBT_PARTITION_* variables read at execution time (macros/partitions.sql:
vars would cost a full re-parse per run). The incremental models clear that window and delete+insert it, so
re-running a partition is idempotent. `full_refresh: true` rebuilds the selected models from all of bronze.
"""

import os
import shutil
import sys
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DbtCliResource, dbt_assets

from assets.bronze.sources import NETWORKS, SOURCES_BY_NAME, split_partition_key
from assets.transform.env import dbt_env
from assets.transform.project import dbt_project, publish_partial_parse
from assets.transform.translator import StrataDbtTranslator
from resources import PostgresResource

TRANSLATOR = StrataDbtTranslator()
DBT_POOL = "dbt"
PARTITIONED_SELECTION = "config.meta.dagster.partitioning:date_network config.meta.dagster.partitioning:daily"
PARTITIONS_DEFS: dict[str, dg.PartitionsDefinition] = {
    "date_network": SOURCES_BY_NAME["social_posts"].partitions_def,
    "daily": SOURCES_BY_NAME["social_accounts"].partitions_def,
}


class DbtRunConfig(dg.Config):
    """`full_refresh` rebuilds the selected models from scratch over the whole bronze history."""

    full_refresh: bool = False


def dbt_resource() -> DbtCliResource:
    """dbt of the running interpreter's environment: found even when the venv is not on PATH."""
    return DbtCliResource(
        project_dir=dbt_project,
        profiles_dir=str(dbt_project.profiles_dir),
        dbt_executable=str(Path(sys.executable).with_name("dbt")),
    )


def window_env(window: dict[str, Any]) -> dict[str, str]:
    """The window as the STRATA_DBT_PARTITION_* variables macros/partitions.sql reads."""
    return {
        f"STRATA_DBT_{name.upper()}": ",".join(value) if isinstance(value, list) else str(value)
        for name, value in window.items()
    }


def window_vars(context: dg.AssetExecutionContext, partitioning: str) -> dict[str, Any]:
    """The partition window of the run (one key or a range) as dbt vars."""
    if partitioning == "daily":
        window = context.partition_time_window
        return {
            "partition_start": window.start.date().isoformat(),
            "partition_end": window.end.date().isoformat(),
        }
    keys = [split_partition_key(key) for key in context.partition_keys]
    days = sorted({date.fromisoformat(key["date"]) for key in keys})
    networks = sorted({key["network"] for key in keys}, key=NETWORKS.index)
    # The bounding rectangle of the run's keys: re-computing a partition from bronze is idempotent, so a
    # non-rectangular selection only does a little more work.
    return {
        "partition_start": days[0].isoformat(),
        "partition_end": (days[-1] + timedelta(days=1)).isoformat(),
        "partition_networks": networks,
    }


def _build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    postgres: PostgresResource,
    config: DbtRunConfig,
    partitioning: str,
) -> Iterator:
    # One source of truth for the warehouse: the Postgres resource's URL, handed to profiles.yml.
    os.environ.update(dbt_env(postgres.url, os.environ.get("STRATA_PII_SALT")))
    window: dict[str, str] = {}
    args = ["build"]
    if partitioning == "none":
        # Relationship tests of partitioned facts point at unpartitioned dimensions (posts → accounts); dbt's
        # eager selection would pick them up here, before their fact is built. They run with their fact.
        args += ["--exclude", PARTITIONED_SELECTION]
    if config.full_refresh:
        args.append("--full-refresh")
    elif partitioning != "none":
        variables = window_vars(context, partitioning)
        context.log.info(f"dbt partition window: {variables}")
        window = window_env(variables)
    # Steps of one run share the process: the window is set for this invocation only.
    os.environ.update(window)
    try:
        invocation = dbt.cli(args, context=context)
        try:
            yield from invocation.stream().fetch_row_counts()
            publish_partial_parse(invocation.target_path)
        finally:
            # Each invocation writes its own target folder; its events are in Dagster's log already.
            shutil.rmtree(invocation.target_path, ignore_errors=True)
    finally:
        for name in window:
            os.environ.pop(name, None)


def _dbt_assets_for(partitioning: str) -> dg.AssetsDefinition:
    """The models of one partitioning, with its partitions definition and single-run backfills."""
    partitioned = partitioning != "none"

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        select=f"config.meta.dagster.partitioning:{partitioning}" if partitioned else "fqn:*",
        exclude=None if partitioned else PARTITIONED_SELECTION,
        name=f"dbt_{partitioning}" if partitioned else "dbt_unpartitioned",
        partitions_def=PARTITIONS_DEFS.get(partitioning),
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        dagster_dbt_translator=TRANSLATOR,
        # One dbt build at a time across runs: concurrent runs rebuilding the same table (a chain and a
        # reconciliation, say) would race on dbt's swap of the relation.
        pool=DBT_POOL,
    )
    def models(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        postgres: PostgresResource,
        config: DbtRunConfig,
    ):
        yield from _build(context, dbt, postgres, config, partitioning)

    return models


dbt_assets_list: list[dg.AssetsDefinition] = [_dbt_assets_for(p) for p in ("date_network", "daily", "none")]


def built_after_partitions(assets_defs: list[dg.AssetsDefinition]) -> set[dg.AssetKey]:
    """Unpartitioned models that read a partitioned one (directly or through another model): a full build
    runs them after the partition ranges, the other unpartitioned models before."""
    partitioned = {key for a in assets_defs if a.partitions_def for key in a.keys}
    unpartitioned = next(a for a in assets_defs if not a.partitions_def)
    after: set[dg.AssetKey] = set()
    grew = True
    while grew:
        grew = False
        for key in unpartitioned.keys - after:
            if unpartitioned.asset_deps[key] & (partitioned | after):
                after.add(key)
                grew = True
    return after


def range_tags(assets_def: dg.AssetsDefinition, days: Iterable[str]) -> dict[str, str] | None:
    """Run tags making one run of `assets_def` cover every partition of the given days (a single-run
    backfill range), or None if no partition falls on them."""
    days = sorted(days)
    keys = [
        key
        for key in assets_def.partitions_def.get_partition_keys()
        if days and days[0] <= key[:10] <= days[-1]
    ]
    if not keys:
        return None
    return {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
