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
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from dagster_dbt import DbtCliResource, DbtProject, dbt_assets
from packaging import version
from psycopg import sql

from assets.bronze.sources import SOURCES
from assets.bronze.tables import ensure_never_loaded
from assets.partitions import PARTITIONINGS, PARTITIONS_DEFS, Partitioning, window
from assets.transform.columns import with_column_metadata
from assets.transform.env import dbt_env
from assets.transform.project import dbt_project, publish_partial_parse, reuse_partial_parse
from assets.transform.row_rules import FAILURES_SCHEMA, row_rule_metadata
from assets.transform.translator import StrataDbtTranslator
from resources import PostgresResource
from resources.postgres import serialized_ddl

TRANSLATOR = StrataDbtTranslator()
PARTITIONED_SELECTION = "config.meta.dagster.partitioning:date_network config.meta.dagster.partitioning:daily"


class DbtRunConfig(dg.Config):
    """`full_refresh` rebuilds the selected models from scratch over the whole bronze history."""

    full_refresh: bool = False


class InterpreterDbtCliResource(DbtCliResource):
    """dbt of the running interpreter's environment, started without dagster-dbt's per-invocation preparations,
    which every run would pay for: the version comes from the installed package instead of a
    `dbt --version` subprocess, and no dbt adapter is built in this process (it parses every macro of dbt to
    count rows; `_build` counts them through the warehouse resource instead). It carries the PII salt dbt's
    sessions hash with (macros/pii.sql), so that it reaches dbt's process and nothing else."""

    pii_salt: str | None = None

    @cached_property
    def _cli_version(self) -> version.Version:
        from dbt.version import __version__

        return version.parse(__version__)

    def _initialize_dbt_core_adapter(self, args) -> None:
        return None


def dbt_resource(pii_salt: str | None = None) -> InterpreterDbtCliResource:
    """dbt of the running interpreter's environment, found even when the venv is not on PATH, through
    `strata-dbt` (strata.warm_dbt: the same CLI, started without re-importing dbt)."""
    return InterpreterDbtCliResource(
        project_dir=dbt_project,
        profiles_dir=str(dbt_project.profiles_dir),
        dbt_executable=str(Path(sys.executable).with_name("strata-dbt")),
        pii_salt=pii_salt,
    )


def window_env(window: dict[str, Any]) -> dict[str, str]:
    """The window as the STRATA_DBT_PARTITION_* variables macros/partitions.sql reads."""
    return {
        f"STRATA_DBT_{name.upper()}": ",".join(value) if isinstance(value, list) else str(value)
        for name, value in window.items()
    }


def window_vars(context: dg.AssetExecutionContext) -> dict[str, Any]:
    """The partition window of the run (one key or a range) as dbt vars."""
    bounds = window(context.partition_keys)
    variables: dict[str, Any] = {
        "partition_start": bounds.start.isoformat(),
        "partition_end": bounds.end.isoformat(),
    }
    if bounds.networks:
        variables["partition_networks"] = list(bounds.networks)
    return variables


def _build(
    context: dg.AssetExecutionContext,
    project: DbtProject,
    dbt: InterpreterDbtCliResource,
    postgres: PostgresResource,
    config: DbtRunConfig,
    partitioning: str,
) -> Iterator:
    # One source of truth for the warehouse: the Postgres resource's URL, handed to profiles.yml.
    environment = dbt_env(postgres.url, dbt.pii_salt)
    if dbt.pii_salt:
        # macros/pii.sql refuses to compile a hash without it; the hash itself takes the session setting.
        environment["STRATA_PII_SALT"] = dbt.pii_salt
    # dagster-dbt points dbt's file log into the invocation's target folder, removed after the build (the events
    # are in Dagster's log): written at debug level, it was CPU spent for nobody.
    environment["DBT_LOG_LEVEL_FILE"] = "none"
    # Row rules mark what they set aside with the build (macros/row_rules.sql), read back for the metadata.
    build_id = environment["STRATA_DBT_BUILD_ID"] = uuid.uuid4().hex
    # Unit tests check the SQL, not the data: they run in the test suite, not on every build.
    args = ["build", "--exclude-resource-type", "unit_test"]
    if partitioning == "none":
        # Relationship tests of partitioned facts point at unpartitioned dimensions (video_sessions →
        # video_users); dbt's eager selection would pick them up here, before their fact is built. They run with
        # their fact.
        args += ["--exclude", PARTITIONED_SELECTION]
    if config.full_refresh:
        args.append("--full-refresh")
    elif partitioning != "none":
        variables = window_vars(context)
        context.log.info(f"dbt partition window: {variables}")
        environment |= window_env(variables)
    with postgres.connect(autocommit=True) as conn:
        ensure_never_loaded(conn, SOURCES)
        # dbt creates the schema of stored test failures on first use; two builds doing so at once collide.
        with serialized_ddl(conn, "strata.dq_failures.ddl"):
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(FAILURES_SCHEMA)))
    target = (
        project.project_dir
        / project.target_path
        / (f"{context.op_execution_context.op.name}-{context.run.run_id[:7]}-{uuid.uuid4().hex[:7]}")
    )
    reuse_partial_parse(target, environment)
    # dagster-dbt hands dbt's process a copy of os.environ, taken when it starts the process: the variables
    # (the salt among them) are in os.environ only while that happens, never seen by later work in this process.
    with scoped_environ(environment):
        invocation = dbt.cli(args, context=context, target_path=target)
    try:
        with postgres.connect(autocommit=True) as conn:
            for event in invocation.stream():
                event = with_column_metadata(conn, invocation, event)
                yield with_table_metadata(conn, invocation.manifest, event, build_id)
        publish_partial_parse(invocation.target_path, environment)
    finally:
        # Each invocation writes its own target folder; its events are in Dagster's log already.
        shutil.rmtree(invocation.target_path, ignore_errors=True)


def with_table_metadata(conn: psycopg.Connection, manifest: dict, event, build_id: str):
    """A model's materialization with its table's row count (`dagster/row_count`; views are not counted, since that
    would run their query) and what its row rules set aside in this build; a test's check result with the table
    holding its failing rows (`dq_failures_table`)."""
    if isinstance(event, (dg.AssetCheckResult, dg.AssetCheckEvaluation)):
        node = manifest["nodes"].get(getattr(event.metadata.get("unique_id"), "text", None))
        if node is None or not node["config"].get("store_failures"):
            return event
        table = f"{node['schema']}.{node['alias']}"
        return event.with_metadata({**event.metadata, "dq_failures_table": dg.MetadataValue.text(table)})
    if not isinstance(event, (dg.Output, dg.AssetMaterialization)):
        return event
    node = manifest["nodes"].get(event.metadata["unique_id"].text)
    if node is None or node["config"]["materialized"] == "view":
        return event
    table = sql.Identifier(node["schema"], node["alias"])
    (count,) = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    return event.with_metadata(
        {
            **event.metadata,
            "dagster/row_count": dg.MetadataValue.int(count),
            **row_rule_metadata(conn, node, build_id),
        }
    )


@contextmanager
def scoped_environ(variables: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _dbt_assets_for(project: DbtProject, partitioning: Partitioning) -> dg.AssetsDefinition:
    """The models of one partitioning, with its partitions definition and single-run backfills."""
    partitioned = partitioning != "none"

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        select=f"config.meta.dagster.partitioning:{partitioning}" if partitioned else "fqn:*",
        exclude=None if partitioned else PARTITIONED_SELECTION,
        name=f"dbt_{partitioning}" if partitioned else "dbt_unpartitioned",
        partitions_def=PARTITIONS_DEFS.get(partitioning),
        backfill_policy=dg.BackfillPolicy.single_run() if partitioned else None,
        dagster_dbt_translator=TRANSLATOR,
        # One build of a partitioning's models at a time: concurrent runs rebuilding the same table (a chain and
        # a reconciliation, say) would race on dbt's swap of the relation. Builds of different partitionings
        # touch different tables and run side by side.
        pool=f"dbt_{partitioning}",
    )
    def models(
        context: dg.AssetExecutionContext,
        dbt: InterpreterDbtCliResource,
        postgres: PostgresResource,
        config: DbtRunConfig,
    ):
        yield from _build(context, project, dbt, postgres, config, partitioning)

    return models


def build_dbt_assets(project: DbtProject) -> list[dg.AssetsDefinition]:
    """Every model, seed and snapshot of a parsed dbt project as assets, one `@dbt_assets` per partitioning; keys,
    groups, owners and automation come from the dbt config (StrataDbtTranslator)."""
    return [_dbt_assets_for(project, partitioning) for partitioning in PARTITIONINGS]


dbt_assets_list: list[dg.AssetsDefinition] = build_dbt_assets(dbt_project)
