"""`strata up` for real: embedded services, `dagster dev` answering HTTP and GraphQL, the landing sensor
running by default, and runs recorded in the Postgres instance storage (not SQLite)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.conftest import Stack

REPO = Path(__file__).resolve().parent.parent
STRATA = str(Path(sys.executable).with_name("strata"))

pytestmark = pytest.mark.xdist_group("stack")


def graphql(url: str, query: str) -> dict:
    response = httpx.post(f"{url}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture
def platform(stack: Stack):
    """The session's `strata up` (tests.conftest.stack)."""
    return stack.home, stack.env, stack.dagster.url


def test_dagster_dev_answers_server_info_and_graphql(platform):
    _, _, url = platform
    assert httpx.get(f"{url}/server_info", timeout=10).status_code == 200
    nodes = graphql(url, "{ assetNodes { assetKey { path } } }")["assetNodes"]
    assert ["bronze", "video_users"] in [node["assetKey"]["path"] for node in nodes]


def test_runs_are_stored_in_the_postgres_instance_storage(platform, stack: Stack):
    home, env, url = platform
    data = graphql(
        url, "{ runsOrError(filter: {statuses: [SUCCESS]}) { ... on Runs { results { runId } } } }"
    )
    succeeded = {run["runId"] for run in data["runsOrError"]["results"]}

    storage = subprocess.run([STRATA, "env"], cwd=REPO, env=env, capture_output=True, text=True).stdout
    dagster_url = next(
        line.split("=", 1)[1] for line in storage.splitlines() if "STRATA_DAGSTER_STORAGE_URL" in line
    )
    dagster_url = dagster_url.strip("'").replace("postgresql+psycopg2://", "postgresql://")
    with psycopg.connect(dagster_url) as conn:
        stored = {row[0]: row[1] for row in conn.execute("SELECT run_id, status FROM runs")}

    assert succeeded and {stored[run_id] for run_id in succeeded} == {"SUCCESS"}
    assert not list((home / "dagster").glob("**/runs.db")), "run storage fell back to SQLite"


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
