"""SIGKILL at random points of a bronze load, of a dbt partition run and of a vector sync, ten trials each, then
a re-run: the tables and the index end identical to runs that were never interrupted.

The kill hits the whole process group, as a container kill would, so dbt's own process dies too. Kill points
are drawn uniformly over the first 60% of the work (after the child's imports) from a seeded generator and
printed per trial.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from assets.bronze.factory import bronze_assets
from assets.vector.content_index import read_documents, sync_index
from assets.vector.search import COLLECTION
from assets.vector.sync import stored_points
from resources import (
    EmbeddingModelResource,
    LandingZoneResource,
    MongoResource,
    PostgresResource,
    QdrantResource,
)
from strata.generate import generate
from tests.conftest import build, keys_in

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

TRIALS = 10
VECTOR_DOCUMENTS = 400
SEED = 20261123
PARTITION = "2026-11-01|instagram"
DAYS = ["2026-11-01", "2026-11-02"]
BRONZE = {a.key.path[-1]: a for a in bronze_assets}
PARTITION_TABLES = [
    "SELECT * FROM silver.posts",
    "SELECT * FROM silver.post_media",
    "SELECT * FROM gold.account_daily_engagement",
    "SELECT * FROM gold.creator_leaderboard",
]

CHILD = textwrap.dedent(
    """
    import sys
    import dagster as dg
    from resources import EmbeddingModelResource, LandingZoneResource, MongoResource, PostgresResource, QdrantResource
    scenario, postgres_url, mongo_url, landing, qdrant_url, partition = sys.argv[1:]
    postgres = PostgresResource(url=postgres_url)
    if scenario == "bronze":
        from assets.bronze.factory import bronze_assets
        assets = [a for a in bronze_assets if a.key.path[-1] == "social_posts"]
        resources = {"postgres": postgres, "mongo": MongoResource(url=mongo_url), "landing": LandingZoneResource(root=landing)}
    elif scenario == "dbt":
        from assets.transform import dbt_assets, dbt_resource
        assets = [a for a in dbt_assets if a.op.name == "dbt_date_network"]
        resources = {"postgres": postgres, "dbt": dbt_resource()}
    else:
        from assets.vector.content_index import content_index
        assets, partition = [content_index], None
        embedder = EmbeddingModelResource()
        embedder.encode(["warm up"])
        resources = {"postgres": postgres, "qdrant": QdrantResource(url=qdrant_url), "embedder": embedder}
    # A bronze run reloads its partition (the reference state already holds it: a plain run would load nothing).
    run_config = {"ops": {"bronze__social_posts": {"config": {"reload_all": True}}}} if scenario == "bronze" else None
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


class Child:
    """One materialization in its own process group, observed from its 'ready' line to its end."""

    def __init__(self, scenario: str, env: dict, *args: str):
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, scenario, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            start_new_session=True,
        )
        assert self.process.stdout.readline().strip() == "ready"
        self.started = time.monotonic()

    def wait(self) -> float:
        assert self.process.wait(timeout=600) == 0
        return time.monotonic() - self.started

    def kill_after(self, delay: float) -> bool:
        """SIGKILL the group after `delay` s; whether the work was still running when it landed."""
        time.sleep(delay)
        running = self.process.poll() is None
        with contextlib.suppress(ProcessLookupError):  # the whole group already ended
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return running


@pytest.fixture(scope="module")
def platform(warehouse: PostgresResource, strata_env, tmp_path_factory) -> dict:
    """Two days of the sample drop loaded and built once, as the reference state."""
    from assets.transform import dbt_resource

    root = tmp_path_factory.mktemp("landing")
    mongo = MongoResource(url=tmp_path_factory.mktemp("mongo").as_uri(), database_name="strata")
    with mongo.database() as database:
        generate(root, scale=1, days=len(DAYS), seed=3, mongo_db=database)
    (root / "manifest.json").unlink()
    landing = LandingZoneResource(root=str(root))
    resources = {"postgres": warehouse, "mongo": mongo, "landing": landing, "dbt": dbt_resource()}
    assert all(result.success for _, result in build(resources, keys_in("bronze", "silver", "gold")))
    env = {**os.environ}
    return {"resources": resources, "env": env, "root": root, "mongo_url": mongo.url}


def trial_delays(duration: float) -> list[float]:
    rng = random.Random(SEED)
    # Up to 60% of an uninterrupted run: runs vary, and a kill after the end would prove nothing.
    return [round(rng.uniform(0.05, 0.6) * duration, 2) for _ in range(TRIALS)]


def run_trials(scenario: str, platform: dict, qdrant_url: str, partition: str, rerun, state) -> list[tuple]:
    args = (
        platform["resources"]["postgres"].url,
        platform["mongo_url"],
        str(platform["root"]),
        qdrant_url,
        partition,
    )
    reference = state()
    duration = Child(scenario, platform["env"], *args).wait()
    assert state() == reference, "an uninterrupted run changed the state"
    outcomes = []
    for trial, delay in enumerate(trial_delays(duration), 1):
        killed_mid_work = Child(scenario, platform["env"], *args).kill_after(delay)
        rerun()
        outcomes.append((trial, delay, killed_mid_work, state() == reference))
        print(
            f"{scenario} trial {trial}: SIGKILL after {delay:.2f} s of {duration:.2f} s, recovered: {outcomes[-1][3]}"
        )
    return outcomes


def assert_all_recovered(outcomes: list[tuple]) -> None:
    assert [trial for trial, _, _, recovered in outcomes if not recovered] == []
    # The draws land inside the work, not after it: every kill interrupted a running materialization.
    assert sum(1 for _, _, killed_mid_work, _ in outcomes if killed_mid_work) == TRIALS


def test_a_bronze_load_killed_anywhere_then_rerun_leaves_bronze_identical(platform):
    resources = platform["resources"]
    postgres = resources["postgres"]
    date, network = PARTITION.split("|")

    def state():
        return (
            checksum(
                postgres,
                "SELECT record_hash, raw FROM bronze.social_posts"
                " WHERE partition_date = %s AND partition_network = %s",
                (date, network),
            ),
            checksum(
                postgres,
                "SELECT source_file, record_number, reason FROM bronze.quarantine WHERE source = 'social_posts'",
            ),
        )

    def rerun():
        assert dg.materialize([BRONZE["social_posts"]], partition_key=PARTITION, resources=resources).success

    assert_all_recovered(run_trials("bronze", platform, "-", PARTITION, rerun, state))


def test_a_dbt_partition_run_killed_anywhere_then_rerun_leaves_silver_and_gold_identical(platform):
    from assets.transform import dbt_assets

    resources = platform["resources"]
    date_network = next(a for a in dbt_assets if a.op.name == "dbt_date_network")

    def state():
        return tuple(checksum(resources["postgres"], query) for query in PARTITION_TABLES)

    def rerun():
        assert dg.materialize([date_network], partition_key=PARTITION, resources=resources).success

    assert_all_recovered(run_trials("dbt", platform, "-", PARTITION, rerun, state))


def test_a_vector_sync_killed_anywhere_then_rerun_matches_postgres(platform, tmp_path: Path):
    postgres = platform["resources"]["postgres"]
    qdrant = QdrantResource(url=(tmp_path / "qdrant").as_uri())
    embedder = EmbeddingModelResource()
    with postgres.connect() as conn:
        # A few hundred documents: each trial writes the index from scratch, twenty times in all.
        conn.execute(
            """DELETE FROM silver.content_documents WHERE document_key NOT IN
               (SELECT document_key FROM silver.content_documents ORDER BY document_key LIMIT %s)""",
            (VECTOR_DOCUMENTS,),
        )
        expected = {d.point_id: d.content_hash for d in read_documents(conn)}

    def state():
        with qdrant.client() as client:
            return {
                pid: payload["content_hash"] for pid, payload in stored_points(client, COLLECTION).items()
            }

    def rerun():
        with postgres.connect() as conn, qdrant.client() as client:
            sync_index(conn, client, embedder, local=True)

    rerun()
    assert state() == expected

    def from_scratch():
        # Each trial kills a sync that has the whole index to write: the store starts empty.
        with qdrant.client() as client:
            client.delete_collection(COLLECTION)

    outcomes = []
    args = (postgres.url, platform["mongo_url"], str(platform["root"]), qdrant.url, "-")
    from_scratch()
    duration = Child("vector", platform["env"], *args).wait()
    assert state() == expected
    for trial, delay in enumerate(trial_delays(duration), 1):
        from_scratch()
        killed_mid_work = Child("vector", platform["env"], *args).kill_after(delay)
        rerun()
        outcomes.append((trial, delay, killed_mid_work, state() == expected))
        print(
            f"vector trial {trial}: SIGKILL after {delay:.2f} s of {duration:.2f} s, recovered: {outcomes[-1][3]}"
        )
    assert_all_recovered(outcomes)
