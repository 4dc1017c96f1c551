"""Failures around a load (issue: reliability): Mongo down fails only the raw-document copy, clearly, and the
copy catches up once Mongo is back; two runs of the same partition at once end as one would; Postgres restarted
mid-load makes the step retry and complete exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.bronze import bronze_assets, documents_assets
from assets.conventions import RETRIES
from resources import LandingZoneResource, MongoResource, PostgresResource
from strata.generate import generate
from tests.conftest import free_port, scratch_database
from tests.test_bronze import table_checksums

TWEETS = next(a for a in bronze_assets if a.key.path[-1] == "tweets")
TWEET_DOCUMENTS = next(a for a in documents_assets if a.key.path[-1] == "tweets")
# The module's tests share one database: count only the partition a test loads.
PARTITION_ROWS = (
    "SELECT count(*) FROM bronze.social_posts WHERE partition_date = '2026-11-01' AND partition_network = %s"
)
POSTS = next(a for a in bronze_assets if a.key.path[-1] == "social_posts")


def test_mongo_unavailable_fails_only_the_document_copy_which_catches_up_once_mongo_is_back(
    warehouse, tmp_path: Path
):
    landing = tmp_path / "landing"
    manifest = generate(landing, days=1, sources=["tweets"])
    (day,) = manifest["sources"]["tweets"]["partitions"]
    rows = manifest["sources"]["tweets"]["partitions"][day]["bronze_rows"]
    down = MongoResource(url=f"mongodb://127.0.0.1:{free_port()}", server_selection_timeout_ms=200)
    resources = {"postgres": warehouse, "mongo": down, "landing": LandingZoneResource(root=str(landing))}

    loaded = dg.materialize([TWEETS], partition_key=day, resources=resources)
    failed = dg.materialize([TWEET_DOCUMENTS], partition_key=day, resources=resources, raise_on_error=False)

    # Bronze does not wait on the document store.
    assert loaded.success
    with warehouse.connect() as conn:
        assert conn.execute("SELECT count(*) FROM bronze.tweets").fetchone()[0] == rows
        assert conn.execute("SELECT count(*) FROM ledger.documents").fetchone()[0] == 0
    failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    retries = [e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert not failed.success and len(retries) == 3  # the retry policy's backoff, then a clear failure
    description = failure.event_specific_data.user_failure_data.description
    assert description.startswith(
        "MongoDB unavailable for the raw-document copy of tweets: ServerSelectionTimeout"
    )

    resources["mongo"] = MongoResource(url=(tmp_path / "mongo").as_uri())
    copied = dg.materialize([TWEET_DOCUMENTS], partition_key=day, resources=resources)

    (materialization,) = copied.asset_materializations_for_node(TWEET_DOCUMENTS.op.name)
    assert materialization.metadata["dagster/row_count"].value == rows
    assert [(e.check_name, e.passed) for e in copied.get_asset_check_evaluations()] == [
        ("matches_bronze", True)
    ]
    with resources["mongo"].database("bronze") as database:
        assert database["tweets"].count_documents({}) == rows


CHILD = textwrap.dedent(
    """
    import sys, dagster as dg
    from assets.bronze.factory import bronze_assets
    from resources import LandingZoneResource, MongoResource, PostgresResource
    posts = next(a for a in bronze_assets if a.key.path[-1] == "social_posts")
    postgres_url, mongo_url, root, partition = sys.argv[1:]
    dg.materialize([posts], partition_key=partition, resources={
        "postgres": PostgresResource(url=postgres_url), "mongo": MongoResource(url=mongo_url),
        "landing": LandingZoneResource(root=root, after_load="leave")})
    """
)


# Backends waiting for the lock a partition's load takes (assets.bronze.partition_load.load_partition): an advisory lock
# on two int4 keys shows its keys as classid and objid, with objsubid 2.
WAITING_FOR_THE_PARTITION = """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND NOT granted AND objsubid = 2
      AND classid = hashtext(%(source)s)::oid AND objid = hashtext(%(partition)s)::oid"""


@pytest.mark.slow
def test_the_same_partition_materialized_twice_at_once_ends_as_one_run_would(strata_env, tmp_path: Path):
    landing = tmp_path / "landing"
    manifest = generate(landing, scale=20, days=1, sources=["social_posts"])
    partition = "2026-11-01|instagram"
    key = {"source": "social_posts", "partition": partition}

    def run(database: PostgresResource) -> subprocess.Popen:
        args = [database.url, (tmp_path / "mongo").as_uri(), str(landing), partition]
        return subprocess.Popen([sys.executable, "-c", CHILD, *args], env={**os.environ})

    with (
        scratch_database(strata_env, "t_two_loads_at_once") as concurrent,
        scratch_database(strata_env, "t_one_load") as alone,
    ):
        # The test holds the partition's lock until both runs wait for it: both have found the same files
        # pending and are inside the load at once, whatever their start-up times.
        with concurrent.transaction() as gate:
            gate.execute("SELECT pg_advisory_xact_lock(hashtext(%(source)s), hashtext(%(partition)s))", key)
            children = [run(concurrent), run(concurrent)]
            deadline = time.monotonic() + 300
            with concurrent.connect(autocommit=True) as watcher:
                while watcher.execute(WAITING_FOR_THE_PARTITION, key).fetchone()[0] < 2:
                    assert all(child.poll() is None for child in children), "a run ended without waiting"
                    assert time.monotonic() < deadline, "the two runs never waited for the partition together"
                    time.sleep(0.05)
        assert [child.wait(timeout=300) for child in children] == [0, 0]
        assert run(alone).wait(timeout=300) == 0

        assert table_checksums(concurrent, ignore={"attempts"}) == table_checksums(alone, ignore={"attempts"})
        with concurrent.connect() as conn:
            (rows,) = conn.execute(PARTITION_ROWS, (partition.split("|")[1],)).fetchone()
    assert rows == manifest["sources"]["social_posts"]["partitions"][partition]["bronze_rows"]


RESTART_CHILD = textwrap.dedent(
    """
    import sys, dagster as dg
    from assets.bronze.factory import bronze_assets
    from resources import LandingZoneResource, MongoResource, PostgresResource
    posts = next(a for a in bronze_assets if a.key.path[-1] == "social_posts")
    postgres_url, mongo_url, root, partition = sys.argv[1:]
    result = dg.materialize([posts], partition_key=partition, resources={
        "postgres": PostgresResource(url=postgres_url, application_name="strata-restart-test"),
        "mongo": MongoResource(url=mongo_url), "landing": LandingZoneResource(root=root)})
    retries = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    print("retries", len(retries))
    """
)


@pytest.fixture
def own_server(tmp_path: Path):
    """An embedded Postgres of this test's own: restarting it disturbs no other test."""
    from strata.services import EmbeddedPostgres

    server = EmbeddedPostgres(tmp_path / "postgres", free_port())
    server.start()
    server.ensure_databases("strata")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.slow
def test_postgres_restarted_mid_load_the_step_retries_and_completes_exactly(own_server, tmp_path: Path):
    import time

    warehouse = PostgresResource(url=own_server.url("strata"))
    landing = tmp_path / "landing"
    manifest = generate(landing, scale=120, days=1, sources=["social_posts"])
    partition = "2026-11-01|tiktok"
    args = [warehouse.url, (tmp_path / "mongo").as_uri(), str(landing), partition]
    # The retry policy's real waits: the server must be back before the retries run out.
    env = {k: v for k, v in os.environ.items() if k != "STRATA_RETRY_DELAY_SCALE"}
    child = subprocess.Popen(
        [sys.executable, "-c", RESTART_CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 120
    while not _copying(warehouse, "strata-restart-test"):
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    own_server.stop()
    own_server.start()

    out, _ = child.communicate(timeout=300)

    # How many retries it takes depends on whether the server is back before the first jittered wait ends;
    # that the step needed one and completed within the policy's is the behaviour.
    retries = int(out.split("retries ", 1)[1])
    assert child.returncode == 0 and 1 <= retries <= RETRIES
    with warehouse.connect() as conn:
        (rows,) = conn.execute(PARTITION_ROWS, (partition.split("|")[1],)).fetchone()
        statuses = {s for (s,) in conn.execute("SELECT status FROM ledger.loads")}
    assert rows == manifest["sources"]["social_posts"]["partitions"][partition]["bronze_rows"]
    assert statuses <= {"archived", "duplicate"}


def _copying(postgres: PostgresResource, application: str) -> bool:
    with postgres.connect() as conn:
        query = "SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND query LIKE 'COPY%%'"
        return bool(conn.execute(query, (application,)).fetchone())
