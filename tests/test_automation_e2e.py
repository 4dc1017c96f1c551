"""The users' day for real: `strata up` on free ports lands the sample drop, and the sensors carry it through
bronze, silver, gold and the vector index without a manual step. Everything is observed through the Dagster
GraphQL API only, as a user watching the UI would; the generator's manifest says what must come out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from qdrant_client import QdrantClient

from assets.vector.search import COLLECTION
from tests.conftest import isolated_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]

REPO = Path(__file__).resolve().parent.parent
STRATA = str(Path(sys.executable).with_name("strata"))
IN_PROGRESS = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
QUIET_SECONDS = 45  # longer than a reconciliation interval plus a run's launch
SETTLE_TIMEOUT = 1800
GOLD_AND_INDEX = [
    "gold/account_daily_engagement",
    "gold/creator_leaderboard",
    "gold/ambassador_program_performance",
    "gold/content_performance",
    "gold/viewing_completion",
    "gold/brand_mentions_daily",
    "vector/content_index",
]


class Dagster:
    def __init__(self, url: str):
        self.url = url

    def query(self, query: str, **variables) -> dict:
        response = httpx.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def runs(self, statuses: list[str] | None = None) -> list[dict]:
        data = self.query(
            """query($filter: RunsFilter) { runsOrError(filter: $filter, limit: 2000) { ... on Runs {
                 results { runId status startTime endTime tags { key value } } } } }""",
            filter={"statuses": statuses} if statuses else {},
        )
        return data["runsOrError"]["results"]

    def latest(self, path: str) -> dict | None:
        """The latest materialization of an asset (any partition): run, time and metadata."""
        data = self.query(
            """query($key: AssetKeyInput!) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
                 assetMaterializations(limit: 1) { runId timestamp partition
                   metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }""",
            key={"path": path.split("/")},
        )
        events = data["assetNodeOrError"]["assetMaterializations"]
        if not events:
            return None
        event = events[0]
        event["metadata"] = {e["label"]: e.get("intValue") for e in event.pop("metadataEntries")}
        return event

    def checks(self) -> list[dict]:
        """Every check of every asset with the evaluation of its latest execution."""
        data = self.query(
            """{ assetNodes { assetKey { path } assetChecksOrError { ... on AssetChecks { checks {
                 name blocking executionForLatestMaterialization { status
                   evaluation { severity success partition } } } } } } }"""
        )
        found = []
        for node in data["assetNodes"]:
            for check in (node["assetChecksOrError"] or {}).get("checks", []):
                found.append({"asset": "/".join(node["assetKey"]["path"]), **check})
        return found

    def settle(self, timeout: float = SETTLE_TIMEOUT) -> float:
        """Wait until gold and the index are materialized and no run has been in progress for QUIET_SECONDS."""
        started = time.monotonic()
        quiet_since = None
        while time.monotonic() - started < timeout:
            busy = self.runs(IN_PROGRESS)
            done = all(self.latest(path) for path in GOLD_AND_INDEX)
            if busy or not done:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_SECONDS:
                return quiet_since - started
            time.sleep(3)
        pytest.fail(f"not settled after {timeout} s: {len(self.runs(IN_PROGRESS))} runs in progress")


@pytest.fixture(scope="module")
def stack():
    home = Path(tempfile.mkdtemp(prefix="strata-e2e-"))
    env = isolated_env(home)
    # `strata up` lands the sample drop itself when the landing zone is empty.
    up = subprocess.run([STRATA, "up"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "landed the sample drop" in up.stdout
        dagster = Dagster(f"http://127.0.0.1:{env['STRATA_DAGSTER_PORT']}")
        settled_after = dagster.settle()
        print(f"sample drop settled {settled_after:.0f} s after `strata up`")
        yield dagster, home, env
    finally:
        subprocess.run([STRATA, "down"], cwd=REPO, env=env, capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)


def test_the_sample_drop_reaches_gold_and_the_index_and_every_error_check_passes(stack):
    dagster, home, _ = stack
    manifest = json.loads((home / "landing" / "manifest.json").read_text())
    sources = manifest["sources"]
    posts = sum(p["distinct_keys"] for p in sources["social_posts"]["partitions"].values())
    tweets = sum(p["distinct_keys"] for p in sources["tweets"]["partitions"].values())
    videos = sources["video_content"]["expect"]["content"]

    assert [r["runId"] for r in dagster.runs(["FAILURE"])] == []
    rows = {
        path: dagster.latest(path)["metadata"]["dagster/row_count"]
        for path in (
            "silver/posts",
            "silver/tweets",
            "silver/video_users",
            "silver/video_content",
            "silver/brands",
            "silver/campaigns",
            "silver/ambassadors",
            "vector/content_index",
        )
    }
    assert rows == {
        "silver/posts": posts,
        "silver/tweets": tweets,
        "silver/video_users": sources["video_users"]["expect"]["users"],
        "silver/video_content": videos,
        "silver/brands": sources["cdc_brands"]["expect"]["final_count"],
        "silver/campaigns": sources["mongo_campaigns"]["expect"]["count"],
        "silver/ambassadors": sources["ambassadors"]["expect"]["ambassadors"],
        "vector/content_index": posts + tweets + videos,
    }

    checks = dagster.checks()
    error_checks = [
        c
        for c in checks
        if c["executionForLatestMaterialization"]
        and c["executionForLatestMaterialization"]["evaluation"]
        and c["executionForLatestMaterialization"]["evaluation"]["severity"] == "ERROR"
    ]
    failed = [
        (c["asset"], c["name"])
        for c in error_checks
        if not c["executionForLatestMaterialization"]["evaluation"]["success"]
    ]
    assert failed == []
    # Every asset of the pipeline was checked: bronze's four, dbt's tests, the index's consistency.
    checked_assets = {c["asset"] for c in error_checks}
    assert {
        "bronze/social_posts",
        "silver/posts",
        "gold/account_daily_engagement",
        "vector/content_index",
    } <= (checked_assets)


LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on InvalidSubsetError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""


def post_line(likes: int, text: str) -> bytes:
    return (
        json.dumps(
            {
                "post_id": "x_e2e_race",
                "network": "x",
                "account_id": "x_acc000008",
                "created_at": "2026-11-09T10:00:00Z",
                "text": text,
                "hashtags": [],
                "topic": "fitness",
                "media_count": 0,
                "media": [],
                "scraped_at": "2026-11-09T12:00:00Z",
                "like_count": likes,
                "comment_count": 0,
                "retweet_count": 0,
                "view_count": 1000,
            }
        ).encode()
        + b"\n"
    )


def land_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.tmp"
    staging.write_bytes(data)
    staging.replace(path)
    path.with_name(path.name + ".done").touch()


def test_a_partition_loaded_again_while_its_chain_runs_ends_with_gold_and_the_index_on_the_second(stack):
    """Eager automation's blind spot: bronze[p] changes while the run refreshing p's downstream is in flight.
    Gold and the index must end up on the second version."""
    dagster, home, env = stack
    partition = "2026-11-09|x"
    path = home / "landing" / "social" / "posts" / "network=x" / "date=2026-11-09" / "part-0000.jsonl"
    land_atomically(path, post_line(10, "first version: a long run along the river at dawn"))

    # The landing sensor's run carries the chain; wait for its bronze step to be done while the rest runs.
    deadline = time.monotonic() + 300
    first = None
    while first is None and time.monotonic() < deadline:
        latest = dagster.latest("bronze/social_posts")
        if latest and latest["partition"] == partition:
            first = latest
        time.sleep(0.5)
    assert first, "the landing sensor did not load the first version"
    first_run = next(r for r in dagster.runs() if r["runId"] == first["runId"])
    assert first_run["status"] == "STARTED", "the chain run ended before the second version landed"

    land_atomically(path, post_line(99, "second version: sourdough bread with a crisp crust"))
    launched = dagster.query(
        LAUNCH,
        params={
            "selector": {
                "repositoryLocationName": "strata",
                "repositoryName": "__repository__",
                "jobName": "__ASSET_JOB",
                "assetSelection": [{"path": ["bronze", "social_posts"]}],
            },
            "executionMetadata": {
                "tags": [
                    {"key": "dagster/partition", "value": partition},
                    {"key": "dagster/partition/date", "value": "2026-11-09"},
                    {"key": "dagster/partition/network", "value": "x"},
                ]
            },
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    second_run_id = launched["run"]["runId"]

    dagster.settle(timeout=600)
    runs = {r["runId"]: r for r in dagster.runs()}
    assert runs[second_run_id]["status"] == "SUCCESS"
    bronze_second = dagster.query(
        """query($key: AssetKeyInput!, $p: [String!]) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
             assetMaterializations(partitions: $p, limit: 10) { runId timestamp } } } }""",
        key={"path": ["bronze", "social_posts"]},
        p=[partition],
    )["assetNodeOrError"]["assetMaterializations"]
    loaded_second_at = next(float(m["timestamp"]) for m in bronze_second if m["runId"] == second_run_id)
    # The race really happened: the second load committed while the first chain run was still going.
    assert float(runs[first["runId"]]["endTime"]) * 1000 > loaded_second_at

    warehouse = f"postgresql://postgres@127.0.0.1:{env['STRATA_POSTGRES_PORT']}/strata"
    with psycopg.connect(warehouse) as conn:
        likes = conn.execute(
            "SELECT likes FROM gold.account_daily_engagement WHERE account_id = 'x_acc000008'"
            " AND post_date = '2026-11-09' AND network = 'x'"
        ).fetchall()
        text = conn.execute(
            "SELECT content_text FROM silver.content_documents WHERE document_key LIKE '%x_e2e_race%'"
        ).fetchall()
    assert likes == [(99,)]
    assert len(text) == 1 and "sourdough" in text[0][0]

    client = QdrantClient(path=str(home / "qdrant"))
    try:
        points, _ = client.scroll(COLLECTION, limit=10_000, with_payload=True)
    finally:
        client.close()
    [race] = [p.payload for p in points if p.payload["document_key"] == "post:x:x_e2e_race"]
    assert race["engagement"] == 99 and "sourdough" in race["text"]
