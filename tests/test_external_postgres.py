"""Nothing assumes the embedded Postgres: the pipeline runs against a second, separately started PostgreSQL
server (the machine's Debian PostgreSQL, started by this test) given only by a URL with a password."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from resources import LandingZoneResource, MongoResource, PostgresResource
from strata.generate import generate
from tests.conftest import build, free_port, keys_in


def server_binaries() -> Path:
    """The Debian PostgreSQL server, installed from the distribution's packages if it is missing."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True, env=env)
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        pytest.fail("no PostgreSQL server binaries: install the `postgresql` package")
    return found[-1].parent


@pytest.fixture(scope="module")
def external_postgres() -> Iterator[str]:
    bindir = server_binaries()
    user = "postgres" if os.geteuid() == 0 else None
    base = Path(tempfile.mkdtemp(prefix="strata-extpg-"))
    base.chmod(0o755)
    data, password_file = base / "data", base / "password"
    password = secrets.token_urlsafe(16)
    password_file.write_text(password)
    data.mkdir()
    if user:
        shutil.chown(data, user)
        shutil.chown(password_file, user)
    run = lambda *args: subprocess.run(args, user=user, check=True, capture_output=True, text=True)  # noqa: E731
    run(
        str(bindir / "initdb"),
        "-D",
        str(data),
        "-U",
        "strata",
        "--auth=scram-sha-256",
        f"--pwfile={password_file}",
    )
    port = free_port()
    options = f"-h 127.0.0.1 -p {port} -c unix_socket_directories=''"
    run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(data / "server.log"), "-o", options, "-w", "start")
    try:
        admin = f"postgresql://strata:{password}@127.0.0.1:{port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE strata")
        yield f"postgresql://strata:{password}@127.0.0.1:{port}/strata"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_bronze_to_gold_runs_on_a_separate_postgres_given_only_by_url_and_never_leaks_its_password(
    external_postgres: str, tmp_path: Path
):
    from assets.transform import dbt_resource

    landing = tmp_path / "landing"
    mongo = MongoResource(url=(tmp_path / "mongo").as_uri())
    with mongo.database() as database:
        manifest = generate(landing, scale=1, days=2, mongo_db=database)
    (landing / "manifest.json").unlink()
    resources = {
        "postgres": PostgresResource(url=external_postgres),
        "mongo": mongo,
        "landing": LandingZoneResource(root=str(landing)),
        "dbt": dbt_resource("external-test-salt"),
    }
    results = [result for _, result in build(resources, keys_in("bronze", "silver", "gold"))]

    failed_checks = [
        (e.asset_key.to_user_string(), e.check_name)
        for result in results
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    ]
    assert failed_checks == []
    with psycopg.connect(external_postgres) as conn:
        (version,) = conn.execute("SHOW server_version_num").fetchone()
        posts = conn.execute("SELECT count(*) FROM silver.posts").fetchone()[0]
        engagement = conn.execute("SELECT count(*) FROM gold.account_daily_engagement").fetchone()[0]
        mentions = conn.execute("SELECT count(*) FROM gold.brand_mentions_daily").fetchone()[0]
    assert int(version) < 180000  # really the Debian server, not the embedded PostgreSQL 18
    assert posts == sum(
        p["distinct_keys"] for p in manifest["sources"]["social_posts"]["partitions"].values()
    )
    assert engagement > 0 and mentions > 0
    password = external_postgres.split(":")[2].split("@")[0]
    assert not [e for result in results for e in result.all_events if password in repr(e)]
