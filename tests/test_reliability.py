"""Reliability of the platform against the failures it must survive, each on the real chain: embedded Postgres,
the generator's drop loaded by the bronze assets, dbt run through the Dagster dbt assets, Qdrant Edge
and the offline embedding model.

1. Qdrant unavailable — its embedded store being written by another sync, or a server URL refusing connections:
   silver and gold still build, `vector/content_index` fails after its retry policy with an error naming the
   store, and once a working store is back the index catches up (exactly the documents it lacks) and its
   blocking check `postgres_qdrant_consistent` passes.
2. Secrets given through the environment (warehouse password, Qdrant API key, alert-webhook token, PII salt)
   appear nowhere Dagster records runs — run config and tags, snapshots, the event log with every
   materialization's metadata, compute logs, any file of the instance — nor in any file under dbt's target
   folder, nor in the alerts posted for failed runs.
3. CDC files of `cdc_brands` (a first full load, a reload, change files) landing in any order and any batching
   (hypothesis): after every batch silver.brands is the replay of the landed files under the CDC contract
   (tests/cdc_contract.py), and once every file has landed it is the generator's final state exactly.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import dagster as dg
import orjson
import pytest
from dagster._serdes import serialize_value
from dagster_dbt import DbtProject
from hypothesis import Phase, event, example, given, settings
from hypothesis import strategies as st

from assets.bronze.factory import bronze_assets
from assets.observability.alerts import run_failure_alert
from assets.transform.env import dbt_env
from assets.transform.project import DBT_PROJECT_DIR
from assets.vector.content_index import content_index, read_documents, vector_checks
from assets.vector.search import COLLECTION
from resources import (
    AlertWebhookResource,
    EmbeddingModelResource,
    LandingZoneResource,
    MongoResource,
    PostgresResource,
    QdrantResource,
)
from resources.qdrant import QdrantUnavailableError
from strata.generate import cdc, generate
from tests.cdc_contract import COLUMNS, replay
from tests.conftest import PII_SALT, build, free_port, keys_in, scratch_database, webhook_receiver

BRONZE = {a.key.path[-1]: a for a in bronze_assets}
ALERTS = {"alerts": AlertWebhookResource()}
DAY_1, DAY_2 = "2026-11-01", "2026-11-02"
INDEX = content_index.op.name
# The index's RetryPolicy: 3 retries, exponential from 5 s (waits of 5, 15 and 35 s).
INDEX_RETRIES = 3
BRANDS = dg.AssetKey(["silver", "brands"])
LOCKER = (
    "import sys, time\n"
    "from resources import QdrantResource\n"
    "from assets.vector.search import COLLECTION\n"
    "with QdrantResource(url=sys.argv[1]).writer(COLLECTION):\n"
    "    print('locked', flush=True)\n"
    "    time.sleep(900)\n"
)


# -- fixtures and steps ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def platform(warehouse: PostgresResource, transform, tmp_path_factory) -> dict:
    """Two days of the scale-1 drop generated (campaigns into an on-disk Mongo store); day 1 and the
    unpartitioned sources landed and loaded into bronze by their assets, partition by partition. Day 2 stays
    in the drop until a test lands it."""
    out = tmp_path_factory.mktemp("drop")
    mongo = MongoResource(url=tmp_path_factory.mktemp("mongo").as_uri(), database_name="strata")
    with mongo.database() as database:
        manifest = generate(out, scale=1, days=2, seed=7, mongo_db=database)
    (out / "manifest.json").unlink()
    landing = LandingZoneResource(root=str(tmp_path_factory.mktemp("landing")))
    drop = {"out": out, "manifest": manifest, "mongo": mongo, "landing": landing}
    resources = {"postgres": warehouse, "mongo": mongo, "landing": landing}
    load_day(drop, resources, DAY_1)
    return drop


@pytest.fixture(scope="module")
def index_store(tmp_path_factory) -> QdrantResource:
    """The working embedded Qdrant store the index catches up into (shared by the module's tests)."""
    return QdrantResource(url=(tmp_path_factory.mktemp("qdrant") / "store").as_uri())


def load_day(drop: dict, resources: dict, day: str) -> None:
    """Land the drop's files of `day` (day 1 also lands the unpartitioned sources) and load bronze."""
    for path in sorted(p for p in drop["out"].rglob("*") if p.is_file()):
        relative = path.relative_to(drop["out"]).as_posix()
        if f"date={day}" in relative or ("date=" not in relative and day == DAY_1):
            target = drop["landing"].root_path / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    assert all(result.success for _, result in build(resources, keys_in("bronze")))


def build_silver_gold_and_index(resources: dict, *, instance=None) -> list:
    """Every dbt model and `vector/content_index` with its checks, in the graph's build order."""
    return build(resources, keys_in("silver", "gold", "vector"), instance=instance, raise_on_error=False)


def index_run(built: list) -> dg.ExecuteInProcessResult:
    return next(result for run, result in built if content_index.key in run.keys)


def assert_silver_and_gold_built(built: list) -> None:
    """Every dbt step succeeded, every dbt test passed, and every silver and gold model materialized."""
    materialized = set()
    for _, result in built:
        for node in {"dbt_unpartitioned", "dbt_daily", "dbt_date_network"} & {
            e.node_name for e in result.all_node_events
        }:
            assert result.is_node_success(node), node
        tests = [e for e in result.get_asset_check_evaluations() if e.asset_key != content_index.key]
        assert [e.check_name for e in tests if not e.passed] == []
        materialized |= {event.asset_key for event in result.get_asset_materialization_events()}
    assert materialized == keys_in("silver", "gold")


def index_failure(result: dg.ExecuteInProcessResult) -> str:
    """The index step failed after every retry, materialized nothing and its checks never ran; returns the
    failure's message with its causes."""
    assert not result.success and result.is_node_failed(INDEX)
    retries = [
        e for e in result.events_for_node(INDEX) if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    assert len(retries) == INDEX_RETRIES
    assert result.asset_materializations_for_node(INDEX) == []
    assert [e for e in result.get_asset_check_evaluations() if e.asset_key == content_index.key] == []
    error, messages = result.failure_data_for_node(INDEX).error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


def index_state(warehouse: PostgresResource, qdrant: QdrantResource) -> dict[str, set[str]]:
    """silver.content_documents against the store: every document's point id, the points missing or stale
    (another content hash), and the orphan points."""
    with warehouse.connect() as conn:
        expected = {document.point_id: document.content_hash for document in read_documents(conn)}
    try:
        with qdrant.reader(COLLECTION) as store:
            stored = {pid: payload.get("content_hash") for pid, payload in store.payloads().items()}
    except QdrantUnavailableError:  # nothing published yet
        stored = {}
    return {
        "documents": set(expected),
        "behind": {pid for pid, digest in expected.items() if stored.get(pid) != digest},
        "orphans": set(stored) - set(expected),
    }


def assert_caught_up(result: dg.ExecuteInProcessResult, before: dict, warehouse, qdrant) -> None:
    """The sync embedded exactly the points that were behind, deleted exactly the orphans, and both checks
    (the blocking Postgres ↔ Qdrant consistency among them) passed."""
    assert result.success
    (materialization,) = result.asset_materializations_for_node(INDEX)
    metadata = {name: value.value for name, value in materialization.metadata.items()}
    assert (metadata["dagster/row_count"], metadata["embedded"], metadata["deleted"]) == (
        len(before["documents"]),
        len(before["behind"]),
        len(before["orphans"]),
    )
    assert {e.check_name: e.passed for e in result.get_asset_check_evaluations()} == {
        "postgres_qdrant_consistent": True,
        "vectors_match_the_model": True,
    }
    after = index_state(warehouse, qdrant)
    assert (after["behind"], after["orphans"]) == (set(), set())


@contextmanager
def held_by_another_process(store: QdrantResource) -> Iterator[None]:
    """A second process writing the embedded index (one writer at a time), and hanging."""
    holder = subprocess.Popen([sys.executable, "-c", LOCKER, store.url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait(timeout=60)
        holder.stdout.close()


# -- 1. Qdrant unavailable, then back ----------------------------------------------------------------------


@pytest.mark.slow
def test_qdrant_store_written_by_another_process_fails_only_the_index_which_catches_up_once_released(
    platform, warehouse, transform, index_store
):
    resources = {
        "postgres": warehouse,
        "dbt": transform.dbt_resource(PII_SALT),
        "qdrant": index_store,
        "embedder": EmbeddingModelResource(),
    }

    with held_by_another_process(index_store):
        built = build_silver_gold_and_index(resources)

    assert_silver_and_gold_built(built)
    message = index_failure(index_run(built))
    root = Path(index_store.folder) / "edge" / COLLECTION
    assert f"QdrantUnavailableError: another sync is writing the index at {root}" in message
    before = index_state(warehouse, index_store)
    assert before["behind"] and len(before["documents"]) > 500

    caught_up = dg.materialize([content_index, *vector_checks], resources=resources)

    assert_caught_up(caught_up, before, warehouse, index_store)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Failed to obtain server version")
def test_qdrant_server_refusing_connections_fails_only_the_index_which_catches_up_on_a_working_store(
    platform, warehouse, transform, index_store
):
    port = free_port()
    resources = {
        "postgres": warehouse,
        "dbt": transform.dbt_resource(PII_SALT),
        "qdrant": QdrantResource(url=f"http://127.0.0.1:{port}"),
        "embedder": EmbeddingModelResource(),
    }
    # Day 2 arrives while the server is down.
    load_day(
        platform, {"postgres": warehouse, "mongo": platform["mongo"], "landing": platform["landing"]}, DAY_2
    )

    built = build_silver_gold_and_index(resources)

    assert_silver_and_gold_built(built)
    message = index_failure(index_run(built))
    assert (
        f"QdrantUnavailableError: Qdrant server http://127.0.0.1:{port} is unreachable: ConnectError"
        in message
    )
    before = index_state(warehouse, index_store)
    assert before["behind"]  # at least day 2's documents

    caught_up = dg.materialize(
        [content_index, *vector_checks], resources={**resources, "qdrant": index_store}
    )

    assert_caught_up(caught_up, before, warehouse, index_store)


# -- 2. secrets never leak -------------------------------------------------------------------------------


def recorded_by(instance: dg.DagsterInstance) -> dict[str, bytes]:
    """Everything the instance recorded: each run (config, tags) with its job and plan snapshots, every event
    log entry, and every file under the instance's root (storage databases, compute logs)."""
    found: dict[str, bytes] = {}
    for run in instance.get_runs():
        found[f"run {run.run_id}"] = serialize_value(run).encode()
        found[f"job snapshot {run.run_id}"] = serialize_value(
            instance.get_job_snapshot(run.job_snapshot_id)
        ).encode()
        plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        found[f"plan snapshot {run.run_id}"] = serialize_value(plan).encode()
        for number, entry in enumerate(instance.all_logs(run.run_id)):
            found[f"event {run.run_id} #{number}"] = serialize_value(entry).encode()
    for path in Path(instance.root_directory).rglob("*"):
        if path.is_file():
            found[str(path)] = path.read_bytes()
    return found


def files_under(folder: Path) -> dict[str, bytes]:
    found = {}
    for path in folder.rglob("*"):
        try:
            found[str(path)] = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError):  # another run's invocation folder, just removed
            continue
    return found


@pytest.mark.slow
@pytest.mark.filterwarnings(
    "ignore:Failed to obtain server version", "ignore:Api key is used with an insecure"
)
def test_secrets_given_through_the_environment_appear_nowhere_runs_are_recorded(
    platform, warehouse, transform, index_store, monkeypatch
):
    from strata.definitions import build_resources

    secret = {
        name: f"{name}-{secrets.token_hex(16)}" for name in ("password", "api-key", "hook-token", "salt")
    }
    parts = urlsplit(warehouse.url)

    def warehouse_url(port: int) -> str:
        return urlunsplit(
            parts._replace(netloc=f"{parts.username}:{secret['password']}@{parts.hostname}:{port}")
        )

    with_password = warehouse_url(parts.port)
    # Set by the dbt assets in this process: restored afterwards.
    for name in dbt_env(with_password, secret["salt"]):
        monkeypatch.delenv(name, raising=False)
    environment = {
        "STRATA_POSTGRES_URL": with_password,
        "STRATA_MONGO_URL": platform["mongo"].url,
        "STRATA_MONGO_DATABASE": platform["mongo"].database_name,
        "STRATA_QDRANT_URL": index_store.url,
        "STRATA_QDRANT_API_KEY": secret["api-key"],
        "STRATA_LANDING_DIR": platform["landing"].root,
        "STRATA_PII_SALT": secret["salt"],
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    with webhook_receiver() as (port, alerts), dg.instance_for_test() as instance:
        monkeypatch.setenv(ALERTS["alerts"].url_env, f"http://127.0.0.1:{port}/hooks/{secret['hook-token']}")
        # The code location loading under `dagster dev` prepares the dbt project with this environment; into a
        # target folder of its own, so that other tests meanwhile read a whole manifest.
        prepared = DbtProject(
            project_dir=DBT_PROJECT_DIR,
            profiles_dir=DBT_PROJECT_DIR,
            target_path=Path("target") / f"secrets-{secrets.token_hex(4)}",
        )
        prepared.preparer.prepare(prepared)
        loads = [
            dg.materialize(
                [BRONZE["social_posts"]],
                partition_key=f"{DAY_1}|tiktok",
                resources=build_resources(),
                instance=instance,
            ),
            dg.materialize([BRONZE["mongo_campaigns"]], resources=build_resources(), instance=instance),
        ]
        built = build_silver_gold_and_index(build_resources(), instance=instance)
        # Two failing runs: dbt against a warehouse that refuses connections, the index against a Qdrant
        # server that does (the API key in use).
        monkeypatch.setenv("STRATA_POSTGRES_URL", warehouse_url(free_port()))
        dbt_down = dg.materialize(
            [next(a for a in transform.dbt_assets if a.op.name == "dbt_unpartitioned")],
            selection=dg.AssetSelection.assets(BRANDS),
            resources=build_resources(),
            instance=instance,
            raise_on_error=False,
        )
        monkeypatch.setenv("STRATA_POSTGRES_URL", with_password)
        monkeypatch.setenv("STRATA_QDRANT_URL", f"http://127.0.0.1:{free_port()}")
        qdrant_down = dg.materialize(
            [content_index], resources=build_resources(), instance=instance, raise_on_error=False
        )
        for failed in (dbt_down, qdrant_down):
            failure = next(e for e in failed.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
            run_failure_alert(
                dg.build_run_status_sensor_context(
                    resources=ALERTS,
                    sensor_name="run_failure_alert",
                    dagster_instance=instance,
                    dagster_run=failed.dagster_run,
                    dagster_event=failure,
                ).for_run_failure()
            )
        stored = recorded_by(instance)

    # The secrets were in use: every run went through, dbt had the password, the salt hashed silver's PII,
    # the API key's server mode was the one that failed, and the alerts reached the token's URL.
    assert all(result.success for result in [*loads, *(result for _, result in built)])
    assert not dbt_down.success and dbt_down.is_node_failed("dbt_unpartitioned")
    assert "Qdrant server http://127.0.0.1:" in index_failure(qdrant_down)
    # dbt's connection settings were its invocations' own: none stays in this process's environment.
    assert not [name for name in dbt_env(with_password, secret["salt"]) if name in os.environ]
    with warehouse.connect() as conn:
        email, email_hash = conn.execute(
            """SELECT b.raw ->> 'email', s.email_hash FROM bronze.video_users b
               JOIN silver.video_users s USING (user_id) ORDER BY user_id LIMIT 1"""
        ).fetchone()
    assert email_hash == hashlib.sha256((secret["salt"] + email.strip().lower()).encode()).hexdigest()
    assert [path for path, _ in alerts] == [f"/hooks/{secret['hook-token']}"] * 2
    assert [
        failed.run_id.encode() in body
        for failed, (_, body) in zip((dbt_down, qdrant_down), alerts, strict=True)
    ] == [True, True]
    # What was searched: every run (the two loads, the build plan's runs, the two failures), and compute logs
    # holding dbt's output among the instance's files.
    assert len([name for name in stored if name.startswith("run ")]) == len(loads) + len(built) + 2
    compute_logs = [content for name, content in stored.items() if "compute_logs" in name]
    assert any(b"model silver.brands" in content for content in compute_logs)

    searched = {**stored, **files_under(DBT_PROJECT_DIR / "target")}
    shutil.rmtree(prepared.project_dir / prepared.target_path)
    searched.update({f"alert {i}": body for i, (_, body) in enumerate(alerts)})
    leaks = [
        (name, where)
        for name, value in secret.items()
        for where, content in searched.items()
        if value.encode() in content
    ]
    assert leaks == []


# -- 3. CDC files arriving in every order ------------------------------------------------------------------

CDC_FILES = 2 + cdc.CHANGE_FILES  # the first full load, the reload and the change files
CDC_SEEDS = (7, 42, 2026)
MAX_BATCHES = 4


@pytest.fixture(scope="module")
def cdc_drops(tmp_path_factory) -> dict[int, dict]:
    """One cdc_brands drop per seed: its folder, its files in path order, and the manifest's expectations."""
    drops = {}
    for seed in CDC_SEEDS:
        out = tmp_path_factory.mktemp(f"cdc{seed}")
        report = generate(out, sources=["cdc_brands"], seed=seed)["sources"]["cdc_brands"]
        files = sorted(f["path"] for f in report["files"])
        assert len(files) == CDC_FILES
        drops[seed] = {"out": out, "files": files, "expect": report["expect"]}
    return drops


@pytest.fixture(scope="module")
def cdc_warehouse(strata_env: dict[str, str]) -> Iterator[PostgresResource]:
    """A database of its own: each example starts from empty bronze, ledger and silver schemas."""
    with scratch_database(strata_env, "t_test_reliability_cdc") as database:
        yield database


@st.composite
def arrivals(draw) -> tuple[int, list[list[int]]]:
    """A seed, and the drop's files (by index, in path order) in a drawn order, cut into a drawn number of
    batches (1 to MAX_BATCHES, to bound the dbt runs) at drawn places."""
    seed = draw(st.sampled_from(CDC_SEEDS))
    order = draw(st.permutations(range(CDC_FILES)))
    count = draw(st.integers(1, MAX_BATCHES))
    cuts = sorted(draw(st.sets(st.integers(1, CDC_FILES - 1), min_size=count - 1, max_size=count - 1)))
    bounds = [0, *cuts, CDC_FILES]
    return seed, [list(order[start:end]) for start, end in zip(bounds, bounds[1:], strict=False)]


def silver_brands(warehouse: PostgresResource) -> list[dict]:
    with warehouse.connect() as conn:
        rows = conn.execute(
            """SELECT brand_id, brand_name, category, country, is_active::text,
                      to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS')
               FROM silver.brands ORDER BY brand_id"""
        ).fetchall()
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


@pytest.mark.slow
@settings(max_examples=6, deadline=None, phases=(Phase.explicit, Phase.reuse, Phase.generate))
@given(arrival=arrivals())
# One file at a time (in path order: the reload, the first full load, the change files): the change files newest
# first, then the first full load, the reload last.
@example(arrival=(42, [[7], [6], [5], [4], [3], [2], [1], [0]]))
# The reload before the first full load, then every change file at once.
@example(arrival=(7, [[0], [1], [2, 3, 4, 5, 6, 7]]))
def test_cdc_files_landing_in_any_order_and_batching_end_as_the_final_state(
    arrival, cdc_drops, cdc_warehouse, transform
):
    seed, batches = arrival
    event(f"{len(batches)} batches")
    drop = cdc_drops[seed]
    unpartitioned = next(a for a in transform.dbt_assets if a.op.name == "dbt_unpartitioned")
    with cdc_warehouse.connect() as conn:
        conn.execute("DROP SCHEMA IF EXISTS bronze, ledger, silver CASCADE")
    with tempfile.TemporaryDirectory(prefix="cdc-") as scratch:
        root = Path(scratch, "landing")
        root.mkdir()
        resources = {
            "postgres": cdc_warehouse,
            "mongo": MongoResource(url=Path(scratch, "mongo").as_uri()),  # unused: no Mongo copy of CDC
            "landing": LandingZoneResource(root=str(root)),
            "dbt": transform.dbt_resource(PII_SALT),
        }
        landed: list[str] = []
        for batch in batches:
            files = [drop["files"][i] for i in batch]
            for relative in files:
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(drop["out"] / relative, root / relative)

            loaded = dg.materialize([BRONZE["cdc_brands"]], resources=resources)
            built = dg.materialize(
                [unpartitioned], selection=dg.AssetSelection.assets(BRANDS), resources=resources
            )

            landed += files
            (materialization,) = loaded.asset_materializations_for_node(BRONZE["cdc_brands"].op.name)
            assert (
                materialization.metadata["files"].value,
                materialization.metadata["files_errored"].value,
            ) == (
                len(files),
                0,
            )
            checks = built.get_asset_check_evaluations()
            assert checks and [e.check_name for e in checks if not e.passed] == []
            assert silver_brands(cdc_warehouse) == replay(drop["out"], landed)

    final = silver_brands(cdc_warehouse)
    assert final == drop["expect"]["final_state"] and len(final) == drop["expect"]["final_count"]
    digest = hashlib.sha256(orjson.dumps(final, option=orjson.OPT_SORT_KEYS)).hexdigest()
    assert digest == drop["expect"]["final_state_sha256"]
