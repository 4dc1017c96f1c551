"""The volume check of every partitioned dbt model (assets.volume's judgement, as bronze's sources have it).

One `@multi_asset_check` per partitioning, beside its `@dbt_assets`: dagster-dbt builds its check specs from dbt
tests only, and a check of Dagster's own runs in the same run as the models it checks (after them, in the run's
process). Its specs carry the models' partitions definition, and a run over a range of partitions records one
evaluation per model and partition, with `rows`, `expected_low`, `expected_high` and `history_median`. The
partition's rows are counted on the columns the model names in `meta.partition_columns`.
"""

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from psycopg import sql

from assets.partitions import Key
from assets.volume import CHECK_NAME, DESCRIPTION, partition_volume
from resources import PostgresResource

UNIQUE_ID = "dagster_dbt/unique_id"
MANIFEST = "dagster_dbt/manifest"


def volume_checks(dbt_assets: list[dg.AssetsDefinition]) -> list[dg.AssetChecksDefinition]:
    """A volume check for each partitioned model (incremental or table) of the partitioned `dbt_assets`."""
    return [_checks_for(assets_def) for assets_def in dbt_assets if assets_def.partitions_def is not None]


def _counted(spec: dg.AssetSpec) -> Mapping[str, Any] | None:
    """The model's manifest node, if it is a table whose partitions can be counted."""
    node = spec.metadata[MANIFEST].manifest["nodes"][spec.metadata[UNIQUE_ID]]
    columns = (node["config"].get("meta") or {}).get("partition_columns") or {}
    return node if node["config"]["materialized"] != "view" and "date" in columns else None


def _checks_for(assets_def: dg.AssetsDefinition) -> dg.AssetChecksDefinition:
    models = {spec.key: node for spec in assets_def.specs if (node := _counted(spec)) is not None}

    @dg.multi_asset_check(
        name=f"{assets_def.op.name}_volume",
        specs=[
            dg.AssetCheckSpec(
                CHECK_NAME, asset=key, description=DESCRIPTION, partitions_def=assets_def.partitions_def
            )
            for key in models
        ],
        # The evaluations are yielded with their partitions, so a run over a range records one per partition. The
        # check's own output (an AssetCheckResult) could name no single partition of a range: optional outputs
        # (can_subset) let it go unused.
        can_subset=True,
    )
    def volume(context: dg.AssetCheckExecutionContext, postgres: PostgresResource) -> Iterator:
        with postgres.connect() as conn:
            for check_key in sorted(
                context.selected_asset_check_keys, key=lambda k: k.asset_key.to_user_string()
            ):
                node = models[check_key.asset_key]
                (exists,) = conn.execute(
                    "SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))",
                    (node["schema"], node["alias"]),
                ).fetchone()
                if exists is None:
                    # Checked on its own before the model was ever built: no partition to count yet.
                    context.log.info(
                        f"{check_key.asset_key.to_user_string()}: no table yet, nothing to check"
                    )
                    continue
                columns = node["config"]["meta"]["partition_columns"]
                dimensions = ["date", "network"] if "network" in columns else ["date"]
                table = sql.Identifier(node["schema"], node["alias"])
                for partition_key in context.partition_keys:
                    key = Key.parse(partition_key)
                    values = [key.date, key.network][: len(dimensions)]
                    result = partition_volume(conn, table, [columns[d] for d in dimensions], values)
                    yield dg.AssetCheckEvaluation(
                        asset_key=check_key.asset_key,
                        check_name=CHECK_NAME,
                        passed=result.passed,
                        severity=result.severity,
                        metadata=result.metadata,
                        partition=partition_key,
                    )

    return volume
