"""SIGKILL aimed at named phases of a bronze load, a dbt partition run and a vector sync, then a re-run: the
tables and the index end identical to runs that were never interrupted.

Each kill waits for its phase to be under way — the n-th COPY into bronze writing rows, dbt inserting into a
named model, the sync's run having logged an encoded batch whose points are being written — and confirms after
the kill that it landed mid-work. The tables' rows are written a little slower during a trial (a trigger), so
that a phase lasts long enough to be caught on a loaded machine; no data changes. The kill hits the whole process group, as a container kill would, so dbt's
own process dies too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from assets.bronze.factory import bronze_assets
from assets.vector.content_index import read_documents, sync_index
from assets.vector.search import COLLECTION
from resources import (
    EmbeddingModelResource,
    PostgresResource,
    QdrantResource,
)
from resources.qdrant import QdrantUnavailableError

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

# Five encode calls of the sync: a kill after one or two of them leaves the index incomplete.
TEXTS_PER_CALL = 128
VECTOR_DOCUMENTS = 5 * TEXTS_PER_CALL
BIG_FILE_POSTS = 2_000
PARTITION = "2026-11-01|instagram"
BRONZE = {a.key.path[-1]: a for a in bronze_assets}
PARTITION_TABLES = [
    "SELECT * FROM silver.posts",
    "SELECT * FROM silver.post_media",
    "SELECT * FROM gold.account_daily_engagement",
    "SELECT * FROM gold.creator_leaderboard",
]
MARK = "strata-kill-trial"

CHILD = textwrap.dedent(
    f"""
    import os
    import sys
    import dagster as dg
    from resources import EmbeddingModelResource, LandingZoneResource, MongoResource, PostgresResource, QdrantResource
    scenario, postgres_url, mongo_url, landing, qdrant_url, partition = sys.argv[1:]
    postgres = PostgresResource(url=postgres_url, application_name="{MARK}")
    run_config = None
    if scenario == "bronze":
        from assets.bronze.factory import bronze_assets
        assets = [a for a in bronze_assets if a.key.path[-1] == "social_posts"]
        resources = {{"postgres": postgres, "mongo": MongoResource(url=mongo_url), "landing": LandingZoneResource(root=landing)}}
        # The reference state holds the partition already: the run reloads it.
        run_config = {{"ops": {{"bronze__social_posts": {{"config": {{"reload_all": True}}}}}}}}
    elif scenario == "dbt":
        from assets.transform import dbt_assets, dbt_resource
        assets = [a for a in dbt_assets if a.op.name == "dbt_date_network"]
        resources = {{"postgres": postgres, "dbt": dbt_resource(os.environ["STRATA_PII_SALT"])}}
    else:
        from assets.vector.content_index import content_index
        assets, partition = [content_index], None
        embedder = EmbeddingModelResource(texts_per_call={TEXTS_PER_CALL})
        embedder.encode(["warm up"])
        resources = {{"postgres": postgres, "qdrant": QdrantResource(url=qdrant_url), "embedder": embedder}}
    print("ready", flush=True)
    dg.materialize(assets, partition_key=None if partition == "-" else partition, resources=resources, run_config=run_config)
    print("done", flush=True)
    """
)


def checksum(postgres: PostgresResource, query: str, params: tuple = ()) -> str:
    """Row count and md5 of the rows of a (constant) query, in a stable order."""
    statement = sql.SQL(
        "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM ({}) t"
    ).format(sql.SQL(query))
    with postgres.connect() as conn:
        return conn.execute(statement, params).fetchone()[0]


def executing(postgres: PostgresResource, application: str, like: str) -> bool:
    """Whether a session of `application` is executing a statement matching `like` right now."""
    with postgres.connect() as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND application_name = %s AND query LIKE %s",
                (application, like),
            ).fetchone()
        )


@contextmanager
def slowed_inserts(
    postgres: PostgresResource, table: str, seconds_per_row: float
) -> Iterator[Callable[[], int]]:
    """Every row written into `table` (schema.name) takes `seconds_per_row` longer, so that a statement writing it
    lasts long enough to be caught under way on a loaded machine; yields a function counting the statements that
    finished writing into it (a sequence, which no rollback undoes). Removed on exit, after ending the sessions
    a kill left executing: a backend busy inside a statement notices its client is gone only when the statement
    ends, and its transaction is rolled back either way."""
    name = sql.Identifier(*table.split("."))
    with postgres.connect(autocommit=True) as conn:
        conn.execute("CREATE SEQUENCE public.kill_trial_statements")
        conn.execute(
            sql.SQL(
                "CREATE FUNCTION public.kill_trial_slow_row() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN PERFORM pg_sleep({}); RETURN NEW; END $$"
            ).format(sql.Literal(seconds_per_row))
        )
        conn.execute(
            "CREATE FUNCTION public.kill_trial_count_statement() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM nextval('public.kill_trial_statements'); RETURN NULL; END $$"
        )
        conn.execute(
            sql.SQL(
                "CREATE TRIGGER kill_trial_slow BEFORE INSERT ON {} FOR EACH ROW "
                "EXECUTE FUNCTION public.kill_trial_slow_row()"
            ).format(name)
        )
        conn.execute(
            sql.SQL(
                "CREATE TRIGGER kill_trial_count AFTER INSERT ON {} FOR EACH STATEMENT "
                "EXECUTE FUNCTION public.kill_trial_count_statement()"
            ).format(name)
        )

        def finished() -> int:
            last, called = conn.execute(
                "SELECT last_value, is_called FROM public.kill_trial_statements"
            ).fetchone()
            return last if called else 0

        try:
            yield finished
        finally:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND application_name IN (%s, 'dbt')",
                (MARK,),
            )
            for statement in (
                sql.SQL("DROP TRIGGER kill_trial_slow ON {}").format(name),
                sql.SQL("DROP TRIGGER kill_trial_count ON {}").format(name),
                sql.SQL("DROP FUNCTION public.kill_trial_slow_row(), public.kill_trial_count_statement()"),
                sql.SQL("DROP SEQUENCE public.kill_trial_statements"),
            ):
                conn.execute(statement)


def copying_rows_into(postgres: PostgresResource, table: str) -> bool:
    """Whether a COPY into `table` is under way with rows written already."""
    with postgres.connect() as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM pg_stat_progress_copy WHERE relid = %s::regclass AND tuples_processed > 0",
                (table,),
            ).fetchone()
        )


class Child:
    """One materialization in its own process group; its log in a file that can be watched."""

    def __init__(self, scenario: str, env: dict, log: Path, *args: str):
        self.log = log
        self._out = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, scenario, *args],
            stdout=subprocess.PIPE,
            stderr=self._out,
            text=True,
            env=env,
            start_new_session=True,
        )
        assert self.process.stdout.readline().strip() == "ready"

    def finish(self) -> None:
        assert self.process.wait(timeout=600) == 0
        self._out.close()

    def kill_when(self, hit: Callable[[], bool], what: str) -> None:
        """SIGKILL the group as soon as `hit()`; fails if the child ends first (a trial that hit nothing)."""
        deadline = time.monotonic() + 600
        while not hit():
            assert self.process.poll() is None, f"the child ended before {what}"
            assert time.monotonic() < deadline, f"no {what}"
            time.sleep(0.01)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        # The kill, not the end of the work, ended the child: it was still inside the phase seen above.
        assert self.process.wait() == -signal.SIGKILL, f"the child ended by itself during {what}"
        self._out.close()


@pytest.fixture(scope="module")
def platform(pipeline) -> dict:
    """A copy of the built sample pipeline, with two more files of the partition's posts under new ids landed in
    PARTITION, loaded, and the partition's silver and gold rebuilt: the reference state."""
    resources = pipeline.resources
    root = Path(resources["landing"].root)
    date, network = PARTITION.split("|")
    partition_folder = Path("social", "posts", f"network={network}", f"date={date}")
    posts = [
        post
        for path in sorted((pipeline.drop / partition_folder).glob("*.jsonl"))
        for post in parsed_records(path)
    ]
    folder = root / partition_folder
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("part-big-0.jsonl", "part-big-1.jsonl"):
        with (folder / name).open("w") as out:
            for n in range(BIG_FILE_POSTS):
                out.write(json.dumps(posts[n % len(posts)] | {"post_id": f"{name}-{n}"}) + "\n")
    for assets in ([BRONZE["social_posts"]], [date_network_models()]):
        assert dg.materialize(assets, partition_key=PARTITION, resources=resources).success
    return {"resources": resources, "env": {**os.environ}, "root": root, "mongo_url": resources["mongo"].url}


def date_network_models() -> dg.AssetsDefinition:
    from assets.transform import dbt_assets

    return next(a for a in dbt_assets if a.op.name == "dbt_date_network")


def parsed_records(path: Path) -> Iterator[dict]:
    """The file's well-formed posts; the drop also holds malformed lines, which bronze quarantines."""
    for line in path.open():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "post_id" in record:
            yield record


def child(
    platform: dict, scenario: str, log: Path, qdrant_url: str = "-", partition: str = PARTITION
) -> Child:
    args = (
        platform["resources"]["postgres"].url,
        platform["mongo_url"],
        str(platform["root"]),
        qdrant_url,
        partition,
    )
    return Child(scenario, platform["env"], log, *args)


@pytest.mark.parametrize("copies_before_the_kill", [0, 1], ids=["first file's COPY", "second file's COPY"])
def test_a_bronze_load_killed_inside_a_copy_then_rerun_leaves_bronze_identical(
    platform, copies_before_the_kill, tmp_path
):
    resources, postgres = platform["resources"], platform["resources"]["postgres"]
    date, network = PARTITION.split("|")

    def state():
        return (
            checksum(
                postgres,
                "SELECT record_hash, raw FROM bronze.social_posts WHERE partition_date = %s AND partition_network = %s",
                (date, network),
            ),
            checksum(
                postgres,
                "SELECT source_file, record_number, reason FROM bronze.quarantine WHERE source = 'social_posts'",
            ),
        )

    reference = state()
    # Two milliseconds per row: even the partition's small file takes a while to COPY.
    with slowed_inserts(postgres, "bronze.social_posts", 0.002) as copies_finished:
        child(platform, "bronze", tmp_path / "bronze.log").kill_when(
            lambda: (
                copying_rows_into(postgres, "bronze.social_posts")
                and copies_finished() == copies_before_the_kill
            ),
            f"COPY number {copies_before_the_kill + 1} into bronze.social_posts writing rows",
        )
    with postgres.connect() as conn:
        left = conn.execute(
            "SELECT count(*) FROM ledger.loads WHERE source = 'social_posts' AND partition_key = %s AND status = 'ingesting'",
            (PARTITION,),
        ).fetchone()[0]
    assert left > 0  # killed mid-load: its loads say so

    rerun = dg.materialize([BRONZE["social_posts"]], partition_key=PARTITION, resources=resources)
    assert rerun.success and state() == reference


@pytest.mark.parametrize("model", ['"silver"."posts', '"gold"."account_daily_engagement'])
def test_a_dbt_partition_run_killed_inside_a_model_then_rerun_leaves_silver_and_gold_identical(
    platform, model, tmp_path
):
    resources, postgres = platform["resources"], platform["resources"]["postgres"]
    reference = tuple(checksum(postgres, query) for query in PARTITION_TABLES)

    # The model's insert is slowed down: dbt's transaction has deleted the partition's rows already.
    with slowed_inserts(postgres, model.replace('"', ""), 0.02):
        child(platform, "dbt", tmp_path / "dbt.log").kill_when(
            lambda: executing(postgres, "dbt", f"%insert into %{model}%"), f"dbt inserting into {model}"
        )

    rerun = dg.materialize([date_network_models()], partition_key=PARTITION, resources=resources)
    assert rerun.success
    assert tuple(checksum(postgres, query) for query in PARTITION_TABLES) == reference


@pytest.fixture(scope="module")
def documents(platform) -> dict[str, str]:
    """Enough documents for five encode calls: every trial writes the index from scratch."""
    with platform["resources"]["postgres"].connect() as conn:
        conn.execute(
            """DELETE FROM silver.content_documents WHERE document_key NOT IN
               (SELECT document_key FROM silver.content_documents ORDER BY document_key LIMIT %s)""",
            (VECTOR_DOCUMENTS,),
        )
        return {d.point_id: d.content_hash for d in read_documents(conn)}


@pytest.mark.parametrize("batches_before_the_kill", [1, 2])
def test_a_vector_sync_killed_while_writing_then_rerun_matches_postgres(
    platform, documents, batches_before_the_kill, tmp_path
):
    import qdrant_edge

    postgres = platform["resources"]["postgres"]
    qdrant = QdrantResource(url=(tmp_path / "qdrant").as_uri())
    building = tmp_path / "qdrant" / "edge" / COLLECTION / ".building-000001"

    log = tmp_path / "vector.log"
    child(platform, "vector", log, qdrant.url, "-").kill_when(
        lambda: log.read_text(errors="replace").count("embedded ") >= batches_before_the_kill,
        f"{batches_before_the_kill} encoded batches",
    )
    # Killed mid-sync: nothing is published, so readers see no partial index; the writer's copy holds what it
    # flushed (every batch written before the one being encoded at the kill).
    with pytest.raises(QdrantUnavailableError, match="no index has been published"):
        with qdrant.reader(COLLECTION):
            pass
    shard = qdrant_edge.EdgeShard.load(str(building))
    kept = shard.count(qdrant_edge.CountRequest(exact=True))
    shard.close()
    assert (batches_before_the_kill - 1) * TEXTS_PER_CALL <= kept < len(documents)

    resumed: list[str] = []
    with postgres.connect() as conn, qdrant.writer(COLLECTION, log=resumed.append) as store:
        result = sync_index(conn, store, EmbeddingModelResource(texts_per_call=TEXTS_PER_CALL))
    assert result.embedded == len(documents) - kept
    assert resumed == ["resuming .building-000001, left by a sync that did not finish: what it wrote is kept"]
    with qdrant.reader(COLLECTION) as store:
        assert {pid: payload["content_hash"] for pid, payload in store.payloads().items()} == documents
    assert not building.exists()
