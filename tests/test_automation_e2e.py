"""The users' day for real, on the module's `strata up` (tests.conftest.stack): `dagster dev` answers HTTP and
GraphQL with its runs in the Postgres instance storage, and a real browser sees the asset graph; the sample
drop lands at once and the sensors carry it through bronze, silver, gold and the vector index in a handful of
runs; a file trickling in reaches gold and the index in its one run; a partition loaded again mid-chain ends
on its second version; a killed run worker is failed and its pool freed; after every process is killed,
`make up` resumes with nothing lost. Watched through the Dagster GraphQL API, as a user watching the UI would;
the generator's manifest says what must come out."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from psycopg import sql

from assets.vector.search import COLLECTION
from resources import QdrantResource
from strata.dagster_api import IN_PROGRESS, cron_repeats
from tests.conftest import REPO, STRATA, Stack

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

# The sample drop landing at once: one bronze run per partition range, one run per partitioning and wave of
# silver and gold, the index, and the scheduled extractions' first run. The cron ticks that fall while it settles
# (every 5 minutes: the Mongo extraction, the quality history, and what is built from them) are not counted.
MAX_FIRST_REFRESH_RUNS = 12


def expected_rows(manifest: dict) -> dict[str, int]:
    sources = manifest["sources"]
    posts = sum(p["distinct_keys"] for p in sources["social_posts"]["partitions"].values())
    tweets = sum(p["distinct_keys"] for p in sources["tweets"]["partitions"].values())
    videos = sources["video_content"]["expect"]["content"]
    return {
        "silver.posts": posts,
        "silver.tweets": tweets,
        "silver.video_users": sources["video_users"]["expect"]["users"],
        "silver.video_content": videos,
        "silver.brands": sources["cdc_brands"]["expect"]["final_count"],
        "silver.campaigns": sources["mongo_campaigns"]["expect"]["count"],
        "silver.ambassadors": sources["ambassadors"]["expect"]["ambassadors"],
        "silver.content_documents": posts + tweets + videos,
    }


# Posts these tests land themselves are left out when the warehouse is compared with the manifest.
TEST_POSTS = "x\\_test\\_%"
SILVER_COUNTS = {
    "silver.posts": "SELECT count(*) FROM silver.posts WHERE post_id NOT LIKE %(test_posts)s",
    "silver.tweets": "SELECT count(*) FROM silver.tweets",
    "silver.video_users": "SELECT count(*) FROM silver.video_users",
    "silver.video_content": "SELECT count(*) FROM silver.video_content",
    "silver.brands": "SELECT count(*) FROM silver.brands",
    "silver.campaigns": "SELECT count(*) FROM silver.campaigns",
    "silver.ambassadors": "SELECT count(*) FROM silver.ambassadors",
    "silver.content_documents": "SELECT count(*) FROM silver.content_documents"
    " WHERE document_key NOT LIKE 'post:x:' || %(test_posts)s",
}


def warehouse_state(stack: Stack) -> dict:
    """The ledger's statuses, bronze rows and quarantined records per source partition of the manifest, and
    silver's row counts (without the posts the tests land)."""
    manifest = stack.manifest
    with psycopg.connect(stack.warehouse) as conn:
        ledger = dict(conn.execute("SELECT status, count(*) FROM ledger.loads GROUP BY 1").fetchall())
        bronze = {}
        for name, source in manifest["sources"].items():
            if name == "mongo_campaigns":
                continue
            rows = dict(
                conn.execute(
                    sql.SQL(
                        "SELECT coalesce(l.partition_key, 'all'), count(*) FROM {} b"
                        " JOIN ledger.loads l USING (load_id) GROUP BY 1"
                    ).format(sql.Identifier("bronze", name))
                ).fetchall()
            )
            bronze |= {(name, key): rows.get(key, 0) for key in source["partitions"]}
        silver = {
            table: conn.execute(query, {"test_posts": TEST_POSTS}).fetchone()[0]
            for table, query in SILVER_COUNTS.items()
        }
    return {"ledger": ledger, "bronze": bronze, "silver": silver}


def assert_the_sample_drop_is_all_there(stack: Stack) -> None:
    manifest = stack.manifest
    state = warehouse_state(stack)
    assert "ingesting" not in state["ledger"] and "ready" not in state["ledger"]
    assert state["bronze"] == {
        (name, key): part["bronze_rows"]
        for name, source in manifest["sources"].items()
        if name != "mongo_campaigns"
        for key, part in source["partitions"].items()
    }
    assert state["silver"] == expected_rows(manifest)
    with psycopg.connect(stack.warehouse) as conn:
        documents = conn.execute("SELECT count(*) FROM silver.content_documents").fetchone()[0]
    assert stack.dagster.latest("vector/content_index")["metadata"]["dagster/row_count"] == documents


def test_the_sample_drop_landing_at_once_settles_in_a_handful_of_runs_with_every_file_ledgered_once(stack):
    runs = stack.first_refresh_runs
    failed = [run["runId"] for run in runs if run["status"] != "SUCCESS"]
    repeats = [run["runId"] for run in cron_repeats(runs)]
    for_the_drop = [run for run in runs if run["runId"] not in repeats]
    print(
        f"first refresh: {len(for_the_drop)} runs (and {len(repeats)} cron ticks), settled "
        f"{stack.first_refresh_seconds:.0f} s after the UI answered"
    )

    assert failed == [], stack.log_tail()
    assert len(for_the_drop) <= MAX_FIRST_REFRESH_RUNS, [
        [k["path"] for k in run["assetSelection"] or []] for run in for_the_drop
    ]
    manifest = stack.manifest
    landed = {f["path"] for source in manifest["sources"].values() for f in source["files"]}
    with psycopg.connect(stack.warehouse) as conn:
        ledgered = dict(conn.execute("SELECT path, count(*) FROM ledger.loads GROUP BY 1").fetchall())
    assert landed and [path for path in landed if ledgered.get(path) != 1] == []
    assert_the_sample_drop_is_all_there(stack)


def test_every_error_check_of_the_pipeline_passed(stack):
    checks = stack.dagster.checks()
    evaluated = [c for c in checks if (c["executionForLatestMaterialization"] or {}).get("evaluation")]
    errors = [
        c for c in evaluated if c["executionForLatestMaterialization"]["evaluation"]["severity"] == "ERROR"
    ]

    assert [
        (c["asset"], c["name"])
        for c in errors
        if not c["executionForLatestMaterialization"]["evaluation"]["success"]
    ] == []
    assert {
        "bronze/social_posts",
        "silver/posts",
        "gold/account_daily_engagement",
        "vector/content_index",
    } <= {c["asset"] for c in errors}


def test_runs_sharing_a_pool_never_overlapped_on_the_running_platform(stack):
    """The instance admits one run per pool at a time (platform/dagster.yaml): on the running stack, the runs
    whose steps take the same pool ran one after another, and every pool was taken."""
    import dagster as dg

    from strata.definitions import defs

    graph = defs.resolve_asset_graph()
    pool_of_step = {
        defs.get_assets_def(key).op.name: pool
        for key in graph.materializable_asset_keys
        for pool in graph.get(key).pools or ()
    }
    with psycopg.connect(stack.storage) as conn:
        steps = conn.execute(
            """SELECT DISTINCT e.run_id, e.step_key, r.start_time, r.end_time
               FROM event_logs e JOIN runs r USING (run_id)
               WHERE e.dagster_event_type = %s AND r.end_time IS NOT NULL""",
            (dg.DagsterEventType.STEP_START.value,),
        ).fetchall()
    held: dict[str, list[tuple[float, float, str]]] = {}
    for run_id, step, started, ended in steps:
        if step in pool_of_step:
            held.setdefault(pool_of_step[step], []).append((started, ended, run_id))
    # Sorted by start, two spans of a pool overlap only if some consecutive two do.
    overlapping = [
        (pool, earlier[2], later[2])
        for pool, spans in held.items()
        for earlier, later in zip(sorted(spans), sorted(spans)[1:], strict=False)
        if later[0] < earlier[1]
    ]

    assert set(held) == set(pool_of_step.values()) == {"dbt_date_network", "dbt_daily", "dbt_none", "qdrant"}
    assert overlapping == []


def post_line(post_id: str, likes: int, text: str, day: str = "2026-11-09") -> bytes:
    record = {
        "post_id": post_id,
        "network": "x",
        "account_id": "x_acc000008",
        "created_at": f"{day}T10:00:00Z",
        "text": text,
        "hashtags": [],
        "topic": "fitness",
        "media_count": 0,
        "media": [],
        "scraped_at": f"{day}T12:00:00Z",
        "like_count": likes,
        "comment_count": 0,
        "retweet_count": 0,
        "view_count": 1000,
    }
    return json.dumps(record).encode() + b"\n"


def land_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.tmp"
    staging.write_bytes(data)
    staging.replace(path)
    path.with_name(path.name + ".done").touch()


def posts_path(stack: Stack, day: str, name: str) -> Path:
    return stack.home / "landing" / "social" / "posts" / "network=x" / f"date={day}" / name


def runs_for_partition(stack: Stack, partition: str) -> list[dict]:
    return [
        run
        for run in stack.dagster.runs()
        if {t["key"]: t["value"] for t in run["tags"]}.get("dagster/partition") == partition
    ]


def indexed(stack: Stack, document_key: str) -> dict | None:
    """The document's payload in the published index (read while syncs may be writing)."""
    with QdrantResource(url=(stack.home / "qdrant").as_uri()).reader(COLLECTION) as store:
        payloads = store.payloads().values()
    return next((payload for payload in payloads if payload["document_key"] == document_key), None)


def test_a_file_landing_alone_reaches_gold_and_the_index_in_its_one_run(stack):
    stack.idle()
    land_atomically(
        posts_path(stack, "2026-11-10", "trickle.jsonl"), post_line("x_test_trickle", 42, "a trickle")
    )

    stack.settle()
    [run] = runs_for_partition(stack, "2026-11-10|x")
    with psycopg.connect(stack.warehouse) as conn:
        likes = conn.execute(
            "SELECT likes FROM gold.account_daily_engagement WHERE account_id = 'x_acc000008'"
            " AND post_date = '2026-11-10' AND network = 'x'"
        ).fetchall()

    assert run["status"] == "SUCCESS"
    assert {"gold/account_daily_engagement", "vector/content_index"} <= {
        "/".join(k["path"]) for k in run["assetSelection"]
    }
    assert likes == [(42,)]
    assert indexed(stack, "post:x:x_test_trickle")["engagement"] == 42


LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } ... on InvalidSubsetError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""


def test_a_partition_loaded_again_while_its_chain_runs_ends_with_gold_and_the_index_on_the_second(stack):
    """Eager automation's blind spot: bronze[p] changes while the run refreshing p's downstream is in flight.
    Gold and the index must end up on the second version."""
    stack.idle()
    partition = "2026-11-09|x"
    path = posts_path(stack, "2026-11-09", "part-0000.jsonl")
    land_atomically(path, post_line("x_test_race", 10, "first version: a long run along the river at dawn"))

    # The landing sensor's run carries the chain; wait until its bronze step is done and the rest still runs.
    deadline = time.monotonic() + 300
    first = None
    while first is None and time.monotonic() < deadline:
        latest = stack.dagster.latest("bronze/social_posts")
        if latest and latest["partition"] == partition:
            first = latest
        time.sleep(0.2)
    assert first, "the landing sensor did not load the first version"
    first_run = next(r for r in stack.dagster.runs() if r["runId"] == first["runId"])
    assert first_run["status"] == "STARTED", "the chain run ended before the second version landed"

    land_atomically(path, post_line("x_test_race", 99, "second version: sourdough bread with a crisp crust"))
    launched = stack.dagster.query(
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

    stack.settle()
    runs = {r["runId"]: r for r in stack.dagster.runs()}
    assert runs[second_run_id]["status"] == "SUCCESS"
    loaded_second_at = next(
        float(m["timestamp"])
        for m in stack.dagster.query(
            """query($key: AssetKeyInput!, $p: [String!]) { assetNodeOrError(assetKey: $key) { ... on AssetNode {
                 assetMaterializations(partitions: $p, limit: 10) { runId timestamp } } } }""",
            key={"path": ["bronze", "social_posts"]},
            p=[partition],
        )["assetNodeOrError"]["assetMaterializations"]
        if m["runId"] == second_run_id
    )
    # The race really happened: the second load committed while the first chain run was still going.
    assert float(runs[first["runId"]]["endTime"]) * 1000 > loaded_second_at

    with psycopg.connect(stack.warehouse) as conn:
        likes = conn.execute(
            "SELECT likes FROM gold.account_daily_engagement WHERE account_id = 'x_acc000008'"
            " AND post_date = '2026-11-09' AND network = 'x'"
        ).fetchall()
        text = conn.execute(
            "SELECT content_text FROM silver.content_documents WHERE document_key = 'post:x:x_test_race'"
        ).fetchall()
    assert likes == [(99,)]
    assert len(text) == 1 and "sourdough" in text[0][0]
    race = indexed(stack, "post:x:x_test_race")
    assert race["engagement"] == 99 and "sourdough" in race["text"]


def run_worker_pid(stack: Stack, run_id: str) -> int | None:
    logs = stack.dagster.query(
        """query($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
             ... on MessageEvent { message } } } } }""",
        runId=run_id,
    )["logsForRun"]["events"]
    for event in logs:
        message = event.get("message") or ""
        if message.startswith("Started process for run (pid: "):
            return int(message.split("pid: ", 1)[1].split(")", 1)[0])
    return None


def step_started(stack: Stack, run_id: str, step_prefix: str) -> bool:
    stats = stack.dagster.query(
        """query($runId: ID!) { runOrError(runId: $runId) { ... on Run { stepStats { stepKey status } } } }""",
        runId=run_id,
    )["runOrError"]["stepStats"]
    return any(s["stepKey"].startswith(step_prefix) and s["status"] is None for s in stats) or any(
        s["stepKey"].startswith(step_prefix) and s["status"] == "IN_PROGRESS" for s in stats
    )


def test_a_killed_run_worker_is_failed_its_pool_freed_and_the_next_landing_reaches_gold(stack):
    stack.idle()
    land_atomically(posts_path(stack, "2026-11-11", "killed.jsonl"), post_line("x_test_killed", 5, "killed"))
    deadline = time.monotonic() + 300
    run = None
    while time.monotonic() < deadline:
        run = next(iter(runs_for_partition(stack, "2026-11-11|x")), None)
        if run and run["status"] == "STARTED" and step_started(stack, run["runId"], "dbt_"):
            break
        time.sleep(0.2)
    assert run and run["status"] == "STARTED", "the chain run never reached its dbt step"
    pid = run_worker_pid(stack, run["runId"])
    assert pid and psutil.pid_exists(pid)

    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 300
    while next(r for r in stack.dagster.runs() if r["runId"] == run["runId"])["status"] in IN_PROGRESS:
        assert time.monotonic() < deadline, "the killed run was never marked failed"
        time.sleep(0.5)

    assert next(r for r in stack.dagster.runs() if r["runId"] == run["runId"])["status"] == "FAILURE"
    # Its pool is free: the next landing's chain takes pool `dbt` and reaches gold.
    land_atomically(
        posts_path(stack, "2026-11-12", "next.jsonl"), post_line("x_test_next", 7, "next", "2026-11-12")
    )
    stack.settle()
    with psycopg.connect(stack.warehouse) as conn:
        days = conn.execute(
            "SELECT post_date::text, likes FROM gold.account_daily_engagement WHERE account_id = 'x_acc000008'"
            " AND post_date IN ('2026-11-11', '2026-11-12') AND network = 'x' ORDER BY 1"
        ).fetchall()
    # The killed partition too: its run was retried (a dead worker is an infrastructure failure).
    assert days == [("2026-11-11", 5), ("2026-11-12", 7)]
    assert [r["status"] for r in runs_for_partition(stack, "2026-11-12|x")] == ["SUCCESS"]
    # The run-failure alert went out once for the killed run (the sensor ticks every 15 s).
    deadline = time.monotonic() + 120
    while not run_failure_alerts(stack, run["runId"]):
        assert time.monotonic() < deadline, "no alert for the killed run"
        time.sleep(1)
    assert len(run_failure_alerts(stack, run["runId"])) == 1


def run_failure_alerts(stack: Stack, run_id: str) -> list[bytes]:
    """The run-failure alerts about the run (a check's alert names the run it failed in, too)."""
    return [body for _, body in stack.alerts if f"run `{run_id}` of ".encode() in body]


def test_after_every_process_of_the_platform_is_killed_make_up_resumes_with_nothing_lost(stack):
    stack.idle()
    for day in ("2026-11-13", "2026-11-14", "2026-11-15"):
        land_atomically(
            posts_path(stack, day, "burst.jsonl"), post_line(f"x_test_burst_{day}", 3, "burst", day)
        )
    deadline = time.monotonic() + 300
    while not stack.dagster.runs(["STARTED"]):
        assert time.monotonic() < deadline, "no run started"
        time.sleep(0.2)

    # Power loss: dagster dev with its daemon, code server and run workers, and the Postgres server.
    dagster_pid = int((stack.home / "dagster-dev.pid").read_text())
    postmaster = int((stack.home / "postgres" / "postmaster.pid").read_text().split()[0])
    os.killpg(dagster_pid, signal.SIGKILL)
    os.kill(postmaster, signal.SIGKILL)
    for pid in (dagster_pid, postmaster):
        with_deadline = time.monotonic() + 30
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < with_deadline
            time.sleep(0.1)

    up = subprocess.run(["make", "up"], cwd=REPO, env=stack.env, capture_output=True, text=True, timeout=600)
    assert up.returncode == 0, up.stdout + up.stderr + stack.log_tail()
    # The runs the power loss cut short are failed before dagster dev starts again, not after run monitoring's
    # start timeout; run retries launch them again.
    assert "recovered: run " in up.stdout, up.stdout
    stack.settle()

    assert_the_sample_drop_is_all_there(stack)
    with psycopg.connect(stack.warehouse) as conn:
        burst = conn.execute(
            "SELECT count(*) FROM gold.account_daily_engagement WHERE account_id = 'x_acc000008'"
            " AND post_date BETWEEN '2026-11-13' AND '2026-11-15' AND network = 'x'"
        ).fetchone()[0]
    assert burst == 3


TOPIC_QUERIES = {
    "pets": "my puppy and my kitten at the vet",
    "cooking": "homemade dinner recipe from scratch in the kitchen",
    "finance": "saving money, budgeting and investing for retirement",
}


@pytest.mark.parametrize("topic", sorted(TOPIC_QUERIES))
def test_a_topic_query_returns_posts_of_the_planted_topic(stack, topic):
    from assets.vector.search import search
    from resources import EmbeddingModelResource, QdrantResource

    stack.idle()
    planted = set(stack.manifest["sources"]["social_posts"]["expect"]["topics"][topic])

    hits = search(
        QdrantResource(url=(stack.home / "qdrant").as_uri()),
        EmbeddingModelResource(),
        TOPIC_QUERIES[topic],
        source_type="post",
        limit=5,
    )

    assert len(hits) == 5
    assert [hit.document_key.split(":", 2)[2] in planted for hit in hits] == [True] * 5


# -- the platform itself ----------------------------------------------------------------------------------


def graphql(url: str, query: str) -> dict:
    response = httpx.post(f"{url}/graphql", json={"query": query}, timeout=30)
    response.raise_for_status()
    body = response.json()
    assert "errors" not in body, body
    return body["data"]


@pytest.fixture
def platform(stack: Stack):
    """The module's `strata up` (tests.conftest.stack)."""
    return stack.home, stack.env, stack.dagster.url


def test_strata_up_again_finds_it_running_and_starts_nothing(stack):
    pid = (stack.home / "dagster-dev.pid").read_text()

    again = stack.strata("up", "--no-sample")

    assert again.returncode == 0 and f"dagster running {stack.dagster.url}" in again.stdout
    assert (stack.home / "dagster-dev.pid").read_text() == pid
    mine = [
        p
        for p in psutil.process_iter(["cmdline", "environ"])
        if "dev" in (p.info["cmdline"] or [])
        and (p.info["environ"] or {}).get("STRATA_HOME") == str(stack.home)
    ]
    assert len(mine) == 1


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
