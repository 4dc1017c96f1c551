"""`strata up` for real: embedded services, `dagster dev` answering HTTP and GraphQL, the landing sensor
running by default, and runs recorded in the Postgres instance storage (not SQLite)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import isolated_env

REPO = Path(__file__).resolve().parent.parent
STRATA = str(Path(sys.executable).with_name("strata"))
USERS_CSV = b"user_id,name,email,country,signup_date,subscription_tier\r\nu1,Ann,ann@example.com,FR,2026-01-02,free\r\n"


def graphql(url: str, query: str) -> dict:
    response = httpx.post(f"{url}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture(scope="module")
def platform():
    home = Path(tempfile.mkdtemp(prefix="strata-up-"))
    env = isolated_env(home)
    up = subprocess.run(
        [STRATA, "up", "--no-sample"], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield home, env, f"http://127.0.0.1:{env['STRATA_DAGSTER_PORT']}"
    finally:
        down = subprocess.run(
            [STRATA, "down"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert "postgres stopped" in down.stdout, down.stdout + down.stderr
        shutil.rmtree(home, ignore_errors=True)


def test_dagster_dev_answers_server_info_and_graphql(platform):
    _, _, url = platform
    assert httpx.get(f"{url}/server_info", timeout=10).status_code == 200
    nodes = graphql(url, "{ assetNodes { assetKey { path } } }")["assetNodes"]
    assert ["bronze", "video_users"] in [node["assetKey"]["path"] for node in nodes]


def test_a_landed_file_is_loaded_by_the_sensor_and_the_run_is_stored_in_postgres(platform):
    home, env, url = platform
    target = home / "landing" / "video" / "users" / "users.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(USERS_CSV)

    deadline = time.monotonic() + 180
    runs: list[dict] = []
    while time.monotonic() < deadline and not runs:
        time.sleep(2)
        data = graphql(
            url, "{ runsOrError(filter: {statuses: [SUCCESS]}) { ... on Runs { results { runId } } } }"
        )
        runs = data["runsOrError"]["results"]
    assert runs, "no successful run within 180 s of landing a file"

    storage = subprocess.run([STRATA, "env"], cwd=REPO, env=env, capture_output=True, text=True).stdout
    dagster_url = next(
        line.split("=", 1)[1] for line in storage.splitlines() if "STRATA_DAGSTER_STORAGE_URL" in line
    )
    dagster_url = dagster_url.strip("'").replace("postgresql+psycopg2://", "postgresql://")
    with psycopg.connect(dagster_url) as conn:
        stored = {row[0]: row[1] for row in conn.execute("SELECT run_id, status FROM runs")}
    assert stored[runs[0]["runId"]] == "SUCCESS"
    assert not list((home / "dagster").glob("**/runs.db")), "run storage fell back to SQLite"

    warehouse = dagster_url.rsplit("/", 1)[0] + "/strata"
    with psycopg.connect(warehouse) as conn:
        assert conn.execute("SELECT user_id FROM bronze.video_users").fetchall() == [("u1",)]


ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
    "--virtual-time-budget=20000",
]


def chromium() -> str:
    """Debian's Chromium, installed by the test set-up when missing."""
    found = shutil.which("chromium")
    if not found and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env)
        found = shutil.which("chromium")
    if not found:
        pytest.fail("Chromium is needed for the browser test: apt-get install chromium")
    return found


def render(url: str, screenshot: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran, and a screenshot of it."""
    browser = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]
    subprocess.run(
        [*browser, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True
    )
    return subprocess.run(
        [*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=True
    ).stdout


def test_a_real_browser_sees_the_asset_graph_and_an_assets_checks(platform, tmp_path):
    _, _, url = platform
    ARTIFACTS.mkdir(exist_ok=True)

    graph = render(f"{url}/assets?view=lineage", ARTIFACTS / "asset-graph.png", tmp_path / "profile")
    checks = render(
        f"{url}/assets/bronze/social_posts?view=checks",
        ARTIFACTS / "social-posts-checks.png",
        tmp_path / "profile",
    )

    for name in ("social_posts", "social_accounts", "video_users", "mongo_campaigns"):
        assert name in graph, name
    for check in ("accounted", "no_duplicate_records", "schema_drift", "quarantine_rate"):
        assert check in checks, check
    assert (ARTIFACTS / "asset-graph.png").stat().st_size > 10_000
