"""A bronze load killed with SIGKILL in the middle of its COPY: nothing visible, the ledger says what
happened, and a re-run completes it exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from assets.bronze.factory import bronze_assets
from resources import LandingZoneResource, MongoResource, PostgresResource
from strata.generate import generate

POSTS = next(a for a in bronze_assets if a.key.path[-1] == "social_posts")
PARTITION = "2026-11-01|youtube"

CHILD = textwrap.dedent(
    """
    import sys, dagster as dg
    from assets.bronze.factory import bronze_assets
    from resources import LandingZoneResource, MongoResource, PostgresResource
    posts = next(a for a in bronze_assets if a.key.path[-1] == "social_posts")
    postgres_url, mongo_url, root, partition = sys.argv[1:]
    dg.materialize([posts], partition_key=partition, resources={
        "postgres": PostgresResource(url=postgres_url, application_name="strata-crash-test"),
        "mongo": MongoResource(url=mongo_url),
        "landing": LandingZoneResource(root=root),
    })
    """
)


def copy_in_progress(postgres: PostgresResource) -> bool:
    with postgres.connect() as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE application_name = 'strata-crash-test' AND query LIKE 'COPY%%'"
            ).fetchone()
        )


@pytest.fixture(scope="module")
def big_partition(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("landing")
    manifest = generate(root, scale=120, days=1, sources=["social_posts"])
    (root / "manifest.json").unlink()
    return root, manifest["sources"]["social_posts"]["partitions"][PARTITION]


def test_a_load_killed_mid_copy_leaves_nothing_and_a_rerun_loads_it_exactly_once(
    big_partition, warehouse: PostgresResource, tmp_path: Path
):
    root, expected = big_partition
    mongo_url = (tmp_path / "mongo").as_uri()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, warehouse.url, mongo_url, str(root), PARTITION],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not copy_in_progress(warehouse):
        assert child.poll() is None, "the load finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # Killed as soon as its COPY is seen: the partition's transaction is then still open, however fast the
    # machine copies.
    os.kill(child.pid, signal.SIGKILL)
    child.wait()

    with warehouse.connect() as conn:
        visible = conn.execute("SELECT count(*) FROM bronze.social_posts").fetchone()[0]
        ledger = conn.execute(
            "SELECT status, run_id IS NOT NULL FROM ledger.loads WHERE source = 'social_posts'"
        ).fetchall()
    assert child.returncode == -signal.SIGKILL
    assert visible == 0
    assert ledger and set(ledger) == {("ingesting", True)}

    resources = {
        "postgres": warehouse,
        "mongo": MongoResource(url=mongo_url),
        "landing": LandingZoneResource(root=str(root)),
    }
    dg.materialize([POSTS], partition_key=PARTITION, resources=resources)

    with warehouse.connect() as conn:
        loaded = conn.execute("SELECT count(*) FROM bronze.social_posts").fetchone()[0]
        quarantined = dict(
            conn.execute(
                "SELECT reason, count(*) FROM bronze.quarantine WHERE source = 'social_posts' GROUP BY 1"
            ).fetchall()
        )
        statuses = {
            s for (s,) in conn.execute("SELECT status FROM ledger.loads WHERE source = 'social_posts'")
        }
    assert loaded == expected["bronze_rows"]
    assert quarantined == expected["quarantined"]
    assert statuses <= {"archived", "duplicate"}
