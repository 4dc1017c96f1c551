"""Bronze on the generator's sample drop: real Postgres, real Dagster materializations, exact counts."""

from __future__ import annotations

import shutil
from collections import Counter, defaultdict
from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from assets.bronze.factory import BronzeLoadConfig, bronze_assets
from assets.bronze.sensor import landing_sensor
from assets.bronze.sources import SOURCES, SOURCES_BY_NAME
from assets.partitions import contiguous_ranges, range_tags
from resources import PostgresResource
from strata.definitions import defs
from tests.conftest import Pipeline

ASSETS = {a.key.path[-1]: a for a in bronze_assets}
# The sources the sample drop carries (a pulled source lands what its extraction fetches).
FILE_SOURCES = [s.name for s in SOURCES if s.pulled_by is None]


def table_checksums(postgres: PostgresResource, ignore: set[str] = frozenset()) -> dict[str, str]:
    """md5 of every bronze/ledger table's content, leaving out wall-clock and run-identity columns."""
    clock = {
        "ingested_at",
        "quarantined_at",
        "registered_at",
        "started_at",
        "finished_at",
        "run_id",
        "quarantine_id",
    }
    clock |= ignore
    sums = {}
    with postgres.connect() as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema IN ('bronze', 'ledger') ORDER BY 1, 2"
        ).fetchall()
        for schema, name in tables:
            columns = [
                c
                for (c,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                    "ORDER BY ordinal_position",
                    (schema, name),
                )
                if c not in clock
            ]
            row = sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
            query = sql.SQL(
                "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM (SELECT {} FROM {}) s(t)"
            )
            sums[f"{schema}.{name}"] = conn.execute(
                query.format(row, sql.Identifier(schema, name))
            ).fetchone()[0]
    return sums


@pytest.fixture(scope="module")
def drop(pipeline: Pipeline) -> tuple[Path, dict]:
    """The sample drop as generated (pristine: tests copy it into landing zones)."""
    return pipeline.drop, pipeline.manifest


@pytest.fixture(scope="module")
def warehouse(pipeline: Pipeline) -> PostgresResource:
    return pipeline.postgres


@pytest.fixture(scope="module")
def loaded(pipeline: Pipeline):
    """Every source of the drop loaded as `strata demo` loads it (bronze runs over partition ranges); how the
    runs that loaded bronze went."""
    return pipeline.manifest, pipeline.resources, [run for run in pipeline.runs if "bronze" in run.layers]


def test_bronze_and_quarantine_counts_equal_the_manifest_by_source_partition_and_reason(loaded, warehouse):
    manifest, _, _ = loaded
    with warehouse.connect() as conn:
        for source_name in FILE_SOURCES:
            source = SOURCES_BY_NAME[source_name]
            expected = manifest["sources"][source_name]["partitions"]
            loads = conn.execute(
                "SELECT coalesce(partition_key, 'all'), sum(records_read) FROM ledger.loads "
                "WHERE source = %s AND status IN ('archived', 'errored') GROUP BY 1",
                (source_name,),
            ).fetchall()
            assert {k: int(v) for k, v in loads} == {k: p["records_read"] for k, p in expected.items()}, (
                source_name
            )

            rows = conn.execute(
                sql.SQL(
                    "SELECT l.partition_key, count(*) FROM {} b JOIN ledger.loads l USING (load_id) GROUP BY 1"
                ).format(sql.Identifier("bronze", source_name))
            ).fetchall()
            assert {k or "all": n for k, n in rows} == {
                k: p["bronze_rows"] for k, p in expected.items() if p["bronze_rows"]
            }, source_name

            quarantined = defaultdict(Counter)
            for key, reason, n in conn.execute(
                "SELECT coalesce(partition_key, 'all'), reason, count(*) FROM bronze.quarantine "
                "WHERE source = %s GROUP BY 1, 2",
                (source_name,),
            ):
                quarantined[key][reason] = n
            assert {k: dict(c) for k, c in quarantined.items()} == {
                k: p["quarantined"] for k, p in expected.items() if p["quarantined"]
            }, source.name


def test_the_mongo_raw_copy_of_posts_holds_exactly_the_records_bronze_kept(loaded, warehouse, pipeline):
    # The drop's posts hold byte-identical copies: bronze sets them aside after the COPY; the document copy
    # (documents/social_posts) holds exactly what bronze kept.
    with warehouse.connect() as conn:
        kept = set(conn.execute("SELECT load_id, record_number FROM bronze.social_posts").fetchall())
        (duplicates,) = conn.execute(
            "SELECT count(*) FROM bronze.quarantine WHERE source = 'social_posts' AND reason = 'duplicate_record'"
        ).fetchone()
    with pipeline.resources["mongo"].database("bronze") as database:
        mirrored = {(d["load_id"], d["record_number"]) for d in database["social_posts"].find({})}
    assert duplicates > 0
    assert mirrored == kept


def test_every_error_check_passed_on_every_partition(loaded):
    manifest, _, runs = loaded
    evaluations = [e for run in runs for e in run.evaluations if e.asset.startswith("bronze/")]
    failed = [(e.asset, e.partition, e.check) for e in evaluations if e.severity == "ERROR" and not e.passed]
    # A run over a range records each partition's outcome: every partition of the drop was checked.
    checked = {(e.asset.split("/")[1], e.partition) for e in evaluations if e.check == "accounted"}
    partitioned = {
        (name, key)
        for name, source in manifest["sources"].items()
        for key in source["partitions"]
        if key != "all" and SOURCES_BY_NAME.get(name) and SOURCES_BY_NAME[name].partitions_def
    }
    assert failed == []
    assert partitioned <= checked


def test_a_file_with_no_records_warns_in_its_partition_and_nowhere_else(loaded):
    manifest, _, runs = loaded
    # Per partition (a run over a range also records one summary evaluation, with no partition).
    evaluations = [e for run in runs for e in run.evaluations if e.check == "no_empty_files" and e.partition]
    warned = {(e.asset.split("/")[1], e.partition) for e in evaluations if not e.passed}
    # The drop's empty files: a posts file with no lines, a sessions re-export with only its header.
    empty = {
        (name, key)
        for name, source in manifest["sources"].items()
        for key, part in source["partitions"].items()
        if part["faults"].get("empty_file") or part["faults"].get("header_only_csv")
    }
    assert empty and warned == empty
    assert {e.severity for e in evaluations} == {"WARN"}


def test_renamed_copies_are_ledgered_as_duplicates_and_never_loaded(loaded, warehouse):
    manifest, _, _ = loaded
    expected = {
        (name, d["path"], d["duplicate_of"])
        for name, source in manifest["sources"].items()
        for d in source["duplicate_files"]
    }
    with warehouse.connect() as conn:
        found = set(
            conn.execute(
                "SELECT d.source, d.path, o.path FROM ledger.loads d JOIN ledger.loads o ON o.load_id = d.duplicate_of "
                "WHERE d.status = 'duplicate'"
            ).fetchall()
        )
    assert expected and found == expected


def test_files_move_to_archive_or_error_after_loading(loaded):
    _, resources, _ = loaded
    root = resources["landing"].root_path
    left = [
        p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] not in ("archive", "error")
    ]
    errored = sorted(
        p.relative_to(root / "error").as_posix() for p in (root / "error").rglob("*") if p.is_file()
    )
    assert left == []
    assert errored == sorted(
        ["ambassadors/" + p.name for p in (root / "error" / "ambassadors").glob("*")]
        + [p.relative_to(root / "error").as_posix() for p in (root / "error" / "x").rglob("*") if p.is_file()]
    )
    assert len(errored) == 2  # the two unrepairable JSON files of the drop


def run_sensor(resources: dict, cursor: str | None = None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        cursor=cursor,
        instance=dg.DagsterInstance.ephemeral(),
        resources={"postgres": resources["postgres"], "landing": resources["landing"]},
        definitions=defs,
    )
    return landing_sensor(context)


def test_landing_the_drop_again_changes_nothing(loaded, drop, warehouse):
    _, resources, _ = loaded
    before = table_checksums(warehouse)
    source_dir, _ = drop
    root = resources["landing"].root_path
    shutil.copytree(source_dir, root, dirs_exist_ok=True)

    first = run_sensor(resources)
    second = run_sensor(resources, first.cursor)

    assert first.run_requests == [] and second.run_requests == []
    assert table_checksums(warehouse) == before
    left = [
        p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] not in ("archive", "error")
    ]
    assert left == []


def test_rerunning_every_partition_leaves_every_table_unchanged(loaded, warehouse):
    """A plain re-run finds nothing pending and loads nothing; a `reload_all` re-run reloads every file and
    ends with the same rows. (Each source's partitions in one run over their range, as a backlog loads.)"""
    manifest, resources, _ = loaded
    before = table_checksums(warehouse, ignore={"attempts"})

    def rerun(source: str, **config) -> dg.ExecuteInProcessResult:
        keys = [k for k in manifest["sources"][source]["partitions"] if k != "all"]
        ranges = contiguous_ranges(SOURCES_BY_NAME[source].partitions_def, keys) if keys else [None]
        run_config = dg.RunConfig(ops={f"bronze__{source}": BronzeLoadConfig(**config)})
        return [
            dg.materialize(
                [ASSETS[source]],
                tags=range_tags(r) if r else None,
                resources=resources,
                run_config=run_config,
            )
            for r in ranges
        ]

    plain = [result for source in FILE_SOURCES for result in rerun(source)]
    unchanged = table_checksums(warehouse, ignore={"attempts"})
    reloaded = [result for source in FILE_SOURCES for result in rerun(source, reload_all=True)]

    assert all(result.success for result in plain + reloaded)
    loaded_rows = [
        result.asset_materializations_for_node(node)
        for result in plain
        for node in [result.all_node_events[0].node_name]
    ]
    assert all(
        m.metadata["rows_loaded"].value == 0 for materializations in loaded_rows for m in materializations
    )
    assert unchanged == before
    assert table_checksums(warehouse, ignore={"attempts"}) == before
    # The reload did load again: every bronze row once more.
    reloaded_rows = sum(
        m.metadata["rows_loaded"].value
        for result in reloaded
        for m in result.asset_materializations_for_node(result.all_node_events[0].node_name)
    )
    with warehouse.connect() as conn:
        bronze_rows = sum(
            conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("bronze", source))
            ).fetchone()[0]
            for source in FILE_SOURCES
        )
    assert reloaded_rows == bronze_rows > 0


def test_every_bronze_asset_shows_its_tables_columns_typed_and_described(loaded, warehouse):
    from strata.definitions import defs

    graph = defs.resolve_asset_graph()
    with warehouse.connect() as conn:
        for source in SOURCES:
            schema = graph.get(source.asset_key).metadata["dagster/column_schema"]
            in_postgres = conn.execute(
                """SELECT column_name, CASE data_type WHEN 'bigint' THEN 'bigint' ELSE udt_name END
                   FROM information_schema.columns WHERE table_schema = 'bronze' AND table_name = %s""",
                (source.name,),
            ).fetchall()
            shown = {column.name: column.type for column in schema.columns}
            aliases = {"int8": "bigint", "float8": "float8", "bool": "bool"}
            assert {name: aliases.get(kind, kind) for name, kind in shown.items()} == dict(in_postgres), (
                source.name
            )
            assert all(column.description for column in schema.columns), source.name
