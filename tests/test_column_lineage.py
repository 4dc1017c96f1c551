"""Column schemas and column-level lineage of the dbt models, on the built sample pipeline: real Postgres, real dbt
runs through real Dagster materializations.

The module's warehouse is a database named after the module, not the `strata` the manifest was parsed against:
the lineage must still find the parents of each column.
"""

from __future__ import annotations

import json

import dagster as dg
import pytest

from assets.transform.project import dbt_project
from tests.conftest import Pipeline

LAYERS = ("silver", "gold")
POSTS = dg.AssetKey(["silver", "posts"])
ENGAGEMENT = dg.AssetKey(["gold", "account_daily_engagement"])


@pytest.fixture(scope="module")
def models() -> dict[tuple[str, str], dict]:
    """Every silver and gold model of the manifest, by (schema, table)."""
    manifest = json.loads(dbt_project.manifest_path.read_text())
    return {
        (node["schema"], node["alias"]): node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] in LAYERS
    }


@pytest.fixture(scope="module")
def engagement_build(pipeline: Pipeline) -> dg.ExecuteInProcessResult:
    """silver/posts and gold/account_daily_engagement built again for two partitions of the sample drop, one after
    the other on one instance: the second build's lineage is the one the first derived and kept."""
    from assets.transform import dbt_assets

    (date_network,) = [a for a in dbt_assets if ENGAGEMENT in a.keys]
    day = sorted(pipeline.manifest["sources"]["video_sessions"]["partitions"])[3]
    instance = dg.DagsterInstance.ephemeral()
    for network in ("youtube", "tiktok"):
        result = dg.materialize(
            [date_network],
            selection=[POSTS, ENGAGEMENT],
            partition_key=f"{day}|{network}",
            resources=pipeline.resources,
            instance=instance,
        )
        if network == "youtube":
            kept = instance.run_storage.get_cursor_values({LINEAGE_KEPT})
    assert set(kept) == {LINEAGE_KEPT}
    return result


LINEAGE_KEPT = "strata/column_lineage/model.strata.account_daily_engagement"


def table_columns(pipeline: Pipeline, schema: str, table: str) -> list[tuple[str, str]]:
    """(column, type) of a table as Postgres shows it, in the table's order."""
    with pipeline.postgres.connect() as conn:
        return conn.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod)
            FROM pg_attribute AS a
            WHERE a.attrelid = to_regclass(format('%%I.%%I', %s::text, %s::text)) AND a.attnum > 0
                AND NOT a.attisdropped
            ORDER BY a.attnum
            """,
            (schema, table),
        ).fetchall()


def materialization(result: dg.ExecuteInProcessResult, key: dg.AssetKey) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return event.materialization.metadata


def test_every_column_of_every_silver_and_gold_table_is_described_in_its_yml(pipeline: Pipeline, models):
    """After a real build, each column Postgres holds in a silver or gold model's table has a description in the
    model's yml, and no yml describes a column its table does not have."""
    undocumented, stale, missing_tables = [], [], []
    for (schema, table), node in sorted(models.items()):
        columns = [name for name, _ in table_columns(pipeline, schema, table)]
        if not columns:
            missing_tables.append(f"{schema}.{table}")
        documented = {name for name, column in node["columns"].items() if column["description"].strip()}
        undocumented += [f"{schema}.{table}.{name}" for name in columns if name not in documented]
        stale += [f"{schema}.{table}.{name}" for name in node["columns"] if name not in columns]

    assert len(models) == 26
    assert missing_tables == []
    assert undocumented == []
    assert stale == []


def test_a_materialization_shows_each_column_with_its_postgres_type_and_its_description(
    pipeline: Pipeline, models, engagement_build
):
    """The latest materialization's `dagster/column_schema` is the table as built (every column, in order, typed as
    Postgres holds it) described by the yml; the definition carries the same descriptions before any build."""
    from assets.transform import dbt_assets

    specs = {spec.key: spec for a in dbt_assets for spec in a.specs}
    for key in (POSTS, ENGAGEMENT):
        schema, table = key.path
        described = {
            name: column["description"].strip() for name, column in models[schema, table]["columns"].items()
        }
        expected = [
            (name, data_type, described[name]) for name, data_type in table_columns(pipeline, schema, table)
        ]

        built = materialization(engagement_build, key)["dagster/column_schema"].schema
        defined = specs[key].metadata["dagster/column_schema"]

        assert [(c.name, c.type, c.description) for c in built.columns] == expected
        assert {c.name: c.description.strip() for c in defined.columns} == described


def test_a_gold_column_is_traced_to_exactly_the_silver_columns_it_is_computed_from(engagement_build):
    """gold/account_daily_engagement sums silver/posts per account and day: `interactions` is likes + comments +
    shares, `engagement_rate` divides them by views, `posts` counts rows (no column), the keys pass through."""
    lineage = materialization(engagement_build, ENGAGEMENT)["dagster/column_lineage"].value.deps_by_column

    def sources(column: str) -> set[tuple[str, str]]:
        return {(dep.asset_key.to_user_string(), dep.column_name) for dep in lineage[column]}

    assert sources("interactions") == {
        ("silver/posts", "likes"),
        ("silver/posts", "comments"),
        ("silver/posts", "shares"),
    }
    assert sources("engagement_rate") == {
        ("silver/posts", "likes"),
        ("silver/posts", "comments"),
        ("silver/posts", "shares"),
        ("silver/posts", "views"),
    }
    assert sources("views") == {("silver/posts", "views")}
    assert sources("account_id") == {("silver/posts", "account_id")}
    assert sources("posts") == set()
    assert set(lineage) == {
        "post_date",
        "network",
        "account_id",
        "posts",
        "likes",
        "comments",
        "shares",
        "views",
        "interactions",
        "engagement_rate",
        "engagement_rate_capped",
    }
