"""The code location: it loads, it validates, it explains itself, and its graph is what we think it is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from strata.definitions import build_resources, defs

REPO = Path(__file__).resolve().parent.parent
SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.txt"


def graph_lines() -> list[str]:
    graph = defs.resolve_asset_graph()
    assets = sorted(key.to_user_string() for key in graph.get_all_asset_keys())
    checks = sorted(f"{c.asset_key.to_user_string()} :: {c.name}" for c in graph.asset_check_keys)
    return [f"asset {a}" for a in assets] + [f"check {c}" for c in checks]


def test_asset_graph_matches_the_snapshot():
    """Regenerate with STRATA_UPDATE_SNAPSHOTS=1 when the graph changes on purpose, and review the diff."""
    lines = graph_lines()
    if os.environ.get("STRATA_UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text("\n".join(lines) + "\n")
    assert lines == SNAPSHOT.read_text().splitlines()


def test_every_asset_has_an_owner_a_description_kinds_and_a_domain_group():
    for spec in defs.resolve_all_asset_specs():
        name = spec.key.to_user_string()
        assert spec.owners, name
        assert spec.description, name
        assert spec.kinds, name
        assert spec.group_name and spec.group_name != "default", name


def test_workspace_validates_with_the_dagster_cli(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful for code location strata" in result.stdout + result.stderr


def test_loading_the_code_location_does_not_import_the_model_stack_or_the_store_clients():
    heavy = ("torch", "sentence_transformers", "qdrant_client", "matplotlib", "pymongo", "litemongo")
    code = f"import sys, strata.definitions; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stderr


def test_the_dbt_project_is_parsed_only_when_a_file_is_newer_than_its_manifest(tmp_path):
    from dagster_dbt import DbtProject

    from assets.transform.project import DBT_PROJECT_DIR, manifest_is_stale

    project_dir = tmp_path / "dbt"
    shutil.copytree(DBT_PROJECT_DIR, project_dir, ignore=shutil.ignore_patterns("logs"))
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir)
    manifest = project.manifest_path
    newest = max(p.stat().st_mtime for p in project_dir.rglob("*") if p.is_file())
    os.utime(manifest, (newest + 10, newest + 10))
    fresh = manifest_is_stale(project)

    model = next(project_dir.glob("models/silver/social/posts.sql"))
    os.utime(model, (newest + 20, newest + 20))
    edited = manifest_is_stale(project)
    # Folders dbt writes itself never make it stale.
    os.utime(model, (newest, newest))
    (project_dir / "target" / "later.json").write_text("{}")
    (project_dir / "logs").mkdir(exist_ok=True)
    (project_dir / "logs" / "dbt.log").write_text("")
    generated = manifest_is_stale(project)
    manifest.unlink()
    missing = manifest_is_stale(project)

    assert (fresh, edited, generated, missing) == (False, True, False, True)


def test_under_dagster_dev_the_code_location_parses_dbt_on_load_only_when_a_model_changed(tmp_path):
    """The call site in assets/transform/project.py, run on a copy of the code and of the dbt project."""
    copy = tmp_path / "repo"
    for part in ("assets", "resources", "strata", "dbt"):
        shutil.copytree(
            REPO / part, copy / part, ignore=shutil.ignore_patterns("__pycache__", "logs", "partial_parse")
        )
    manifest = copy / "dbt" / "target" / "manifest.json"
    model = copy / "dbt" / "models" / "silver" / "social" / "posts.sql"

    def load(*, dev: bool) -> int:
        """Load the project module as a code-location process would; returns the manifest's mtime after."""
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_IS_DEV_CLI"}
        if dev:
            env["DAGSTER_IS_DEV_CLI"] = "1"  # what `dagster dev` sets for the processes it starts
        loaded = subprocess.run(
            [sys.executable, "-c", "import assets.transform.project as p; print(p.__file__)"],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert loaded.returncode == 0 and loaded.stdout.strip().startswith(str(copy)), loaded.stderr
        return manifest.stat().st_mtime_ns

    prepared = manifest.stat().st_mtime_ns
    up_to_date = load(dev=True)
    os.utime(model, ns=(prepared + 10**9, prepared + 10**9))
    outside_dev = load(dev=False)
    edited_under_dev = load(dev=True)

    assert (up_to_date, outside_dev) == (prepared, prepared)
    assert edited_under_dev > prepared + 10**9


def test_the_staleness_check_never_walks_the_folders_runs_delete_under_it(tmp_path, monkeypatch):
    """A dbt step deletes its invocation folder under target/ when it ends; a run loading the code location at
    that moment must not fail. Here every scan of a folder under target/ fails as a folder just deleted does."""
    from dagster_dbt import DbtProject

    from assets.transform.project import DBT_PROJECT_DIR, manifest_is_stale

    project_dir = tmp_path / "dbt"

    def leave_out(folder: str, names: list[str]) -> list[str]:
        # Of target/, the manifest only: the invocation folders of runs going on meanwhile come and go.
        if Path(folder).name == "target":
            return [name for name in names if name != "manifest.json"]
        return [name for name in names if name == "logs"]

    shutil.copytree(DBT_PROJECT_DIR, project_dir, ignore=leave_out)
    (project_dir / "target" / "dbt_date_network-1a2b3c4-5d6e7f8" / "compiled").mkdir(parents=True)
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir)
    scandir = os.scandir

    def deleted_under_target(path="."):
        if "target" in Path(path).relative_to(tmp_path).parts:
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", deleted_under_target)

    assert manifest_is_stale(project) is False


def test_pools_are_taken_per_run_by_the_dbt_builds_and_the_index():
    """The instance admits one run per pool at a time (platform/dagster.yaml); the steps that must not overlap
    declare theirs."""
    import yaml

    config = yaml.safe_load((REPO / "platform" / "dagster.yaml").read_text())
    graph = defs.resolve_asset_graph()
    pools = {
        key.to_user_string(): frozenset(graph.get(key).pools)
        for key in graph.materializable_asset_keys
        if graph.get(key).pools
    }

    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "run"}
    dbt_pools = {"dbt_date_network", "dbt_daily", "dbt_none"}
    assert set(pools.values()) == {frozenset({pool}) for pool in {*dbt_pools, "qdrant"}}
    assert pools["vector/content_index"] == {"qdrant"} and pools["silver/posts"] == {"dbt_date_network"}
    assert pools["silver/tweets"] == {"dbt_daily"} and pools["gold/content_performance"] == {"dbt_none"}


def test_sensors_that_drive_the_platform_run_by_default():
    for name in ("landing_sensor", "automation_sensor", "run_failure_alert", "quality_alert_sensor"):
        assert defs.resolve_sensor_def(name).default_status == dg.DefaultSensorStatus.RUNNING, name


def test_a_cron_tick_refreshes_the_scheduled_extractions_and_what_is_built_from_them():
    from assets.automation.conditions import refreshed_by_cron_ticks

    assert {key.to_user_string() for key in refreshed_by_cron_ticks(defs.resolve_asset_graph())} == {
        "bronze/mongo_campaigns",
        "gold/check_history",
        "gold/data_quality_dashboard",
        "gold/source_freshness",
        "silver/campaigns",
    }


def test_runs_that_only_rebuild_on_a_cron_tick_what_was_built_are_cron_repeats():
    from strata.dagster_api import cron_repeats

    def run(run_id: str, created: float, *paths: str) -> dict:
        return {
            "runId": run_id,
            "creationTime": created,
            "assetSelection": [{"path": p.split("/")} for p in paths],
        }

    runs = [
        run("tick-2", 40, "silver/campaigns"),
        run("tick-1", 30, "bronze/mongo_campaigns", "gold/check_history"),
        run("chain", 20, "silver/campaigns", "silver/posts"),
        run("first", 10, "bronze/mongo_campaigns", "gold/check_history"),
        # Only a cron tick ever builds the source freshness, its first time included.
        run("freshness", 15, "gold/source_freshness"),
    ]

    assert [r["runId"] for r in cron_repeats(runs)] == ["freshness", "tick-1", "tick-2"]


PODCAST_MODEL = """\
{{
    config(
        materialized='incremental',
        unique_key=['episode_id'],
        meta={'dagster': {'partitioning': 'daily'}, 'partition_columns': {'date': 'published_date'}},
    )
}}

-- One row per episode: the latest load wins.

with latest as (
    {{ latest_load_wins(source('bronze', 'podcast_episodes'), 'episode_id', where=partition_filter('partition_date')) }}
)

select
    episode_id,
    partition_date as published_date,
    {{ json_text('raw', 'title') }} as title,
    load_id,
    record_number
from latest
"""

PODCAST_MODEL_YML = """\
version: 2

models:
  - name: podcast_episodes
    description: One row per podcast episode.
    columns:
      - name: episode_id
        data_tests: [unique, not_null]
"""


def test_a_source_added_as_one_entry_with_its_dbt_model_joins_the_graph_with_its_checks(tmp_path):
    """README "How to add a source": the configuration entry, the dbt source line, the model and its yml."""
    from dagster_dbt import DbtProject

    from assets.bronze.factory import build_bronze_asset
    from assets.bronze.sources import Field, Source
    from assets.partitions import DAILY
    from assets.transform.assets import build_dbt_assets
    from assets.transform.project import DBT_PROJECT_DIR

    podcasts = Source(
        name="podcast_episodes",
        domain="podcasts",
        description="Podcast episodes, one JSON object per line.",
        patterns=("podcasts/episodes/date={date}/*.jsonl",),
        format="jsonl",
        partitioning="daily",
        natural_key=("episode_id",),
        fields=(Field("episode_id", "text"),),
    )
    project_dir = tmp_path / "dbt"
    shutil.copytree(DBT_PROJECT_DIR, project_dir, ignore=shutil.ignore_patterns("target", "logs"))
    sources_yml = project_dir / "models" / "sources.yml"
    sources_yml.write_text(
        sources_yml.read_text().replace(
            "    tables:\n",
            "    tables:\n      - name: podcast_episodes\n        description: Podcast episodes.\n",
            1,
        )
    )
    (project_dir / "models" / "silver" / "podcasts").mkdir()
    (project_dir / "models" / "silver" / "podcasts" / "podcast_episodes.sql").write_text(PODCAST_MODEL)
    (project_dir / "models" / "silver" / "podcasts" / "podcast_episodes.yml").write_text(PODCAST_MODEL_YML)
    project = DbtProject(project_dir=project_dir, profiles_dir=project_dir)
    project.preparer.prepare(project)

    graph = dg.Definitions(
        assets=[build_bronze_asset(podcasts), *build_dbt_assets(project)], resources=build_resources()
    ).resolve_asset_graph()

    bronze, silver = dg.AssetKey(["bronze", "podcast_episodes"]), dg.AssetKey(["silver", "podcast_episodes"])
    checks = {key: set() for key in (bronze, silver)}
    for check in graph.asset_check_keys:
        if check.asset_key in checks:
            checks[check.asset_key].add(check.name)
    assert checks == {
        bronze: {
            "accounted",
            "no_duplicate_records",
            "no_empty_files",
            "quarantine_rate",
            "schema_drift",
            "volume_in_recent_range",
        },
        silver: {"unique_podcast_episodes_episode_id", "not_null_podcast_episodes_episode_id"},
    }
    assert graph.get(silver).parent_keys == {bronze}
    assert graph.get(bronze).group_name == graph.get(silver).group_name == "podcasts"
    assert graph.get(bronze).partitions_def == graph.get(silver).partitions_def == DAILY
    assert graph.get(silver).automation_condition is not None


def test_every_gold_mart_and_bronze_table_shows_each_of_its_columns_described():
    from assets.bronze.sources import SOURCES

    graph = defs.resolve_asset_graph()
    # Every gold dbt model has a contract, so its yml declares each column; bronze's come from the sources.
    marts = {
        key
        for key in graph.materializable_asset_keys
        if key.path[0] == "gold" and "dagster_dbt/unique_id" in graph.get(key).metadata
    }
    shown = {
        key: graph.get(key).metadata.get("dagster/column_schema")
        for key in marts | {s.asset_key for s in SOURCES}
    }
    undescribed = {
        key.to_user_string(): [column.name for column in schema.columns if not column.description]
        for key, schema in shown.items()
        if schema is not None
    }
    assert len(marts) == 9 and None not in shown.values()
    assert {key: names for key, names in undescribed.items() if names} == {}
