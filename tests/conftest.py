"""Shared fixtures: real embedded services in a throwaway STRATA_HOME, on a free port.

The session's services never come from the caller's STRATA_* variables: a developer's own server must not
receive the tests' DROP SCHEMA statements.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster as dg
import pytest
from filelock import FileLock

from resources import LandingZoneResource, MongoResource, PostgresResource, QdrantResource
from strata import services, warm_dbt
from strata.config import Settings

# Retries stay as many, their waits near zero (assets.conventions reads this when the definitions are built).
os.environ.setdefault("STRATA_RETRY_DELAY_SCALE", "0.01")
# Two test workers share two cores with the servers they start: the model's OpenMP threads spinning while they
# wait (libgomp's default) burn the CPU the other worker needs. With the other core busy, passive waiting encodes
# ≈ 35 % faster on a third less CPU. Inherited by every process the tests start; set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def shell_signals() -> None:
    """`preexec_fn` for a child that must take signals as one started from a shell: the test worker's own signal
    state (what pytest, xdist and in-process Dagster runs left ignored or blocked) is not passed on."""
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


# Ports for the servers tests start (Postgres, dagster dev) come from below the kernel's ephemeral range (32768 and
# up, where bind(0) and outgoing connections land) and from a slice of their own per xdist worker: two workers asking
# the kernel for a free port at the same moment were handed the same one, and the second server found it taken.
PORTS = range(20000, 32000)


def _port_candidates() -> Iterator[int]:
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    workers = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), 1)
    size = len(PORTS) // workers
    first = PORTS.start + (worker % workers) * size
    # Another test session on the same machine most likely starts elsewhere in the slice.
    offset = random.randrange(size)
    for step in itertools.count():
        yield first + (offset + step) % size


_candidates = _port_candidates()


def free_port() -> int:
    """A port nothing listens on, never handed out before in this session (until its worker's slice wraps)."""
    while True:
        port = next(_candidates)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def isolated_env(home: Path, *, dagster: bool = True) -> dict[str, str]:
    """The environment of a `strata` subprocess with its own STRATA_HOME on free ports, none of the caller's
    STRATA_* / DAGSTER_* settings leaking in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRATA_", "DAGSTER_"))}
    env |= {"STRATA_HOME": str(home), "STRATA_POSTGRES_PORT": str(free_port())}
    if dagster:
        env["STRATA_DAGSTER_PORT"] = str(free_port())
    return env


def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every xdist worker of this test session sees: the session's base temp dir."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if "PYTEST_XDIST_WORKER" in os.environ else base


# A space and a backslash: the salt reaches Postgres through libpq's connection options, which escape both.
PII_SALT = "test salt\\7f3a"


def _session_settings(shared: Path) -> Settings:
    return Settings.from_env(
        {
            "STRATA_HOME": str(shared / "strata"),
            "STRATA_POSTGRES_PORT": (shared / "postgres.port").read_text(),
            "STRATA_PII_SALT": PII_SALT,
        }
    )


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    """One embedded Postgres for the whole session, every worker's, on a free port (the session's services
    never come from the caller's STRATA_* variables)."""
    shared = shared_dir(tmp_path_factory)
    with FileLock(shared / "settings.lock"):
        if not (shared / "postgres.port").exists():
            (shared / "postgres.port").write_text(str(free_port()))
    return _session_settings(shared)


@pytest.fixture(scope="session")
def strata_env(settings: Settings, tmp_path_factory) -> Iterator[dict[str, str]]:
    """The services are up and os.environ carries their URLs, as under `strata up`. The first worker starts
    them, the others attach; the session's end stops them (pytest_sessionfinish)."""
    with FileLock(shared_dir(tmp_path_factory) / "services.lock"):
        env = services.up(settings)
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield env
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def own_settings(strata_env: dict[str, str], tmp_path: Path) -> Settings:
    """Settings with a state dir of the test's own, on the session's Postgres (for commands that write under
    STRATA_HOME, such as the bench)."""
    return Settings.from_env(
        {"STRATA_HOME": str(tmp_path / "home"), "STRATA_POSTGRES_URL": strata_env["STRATA_POSTGRES_URL"]}
    )


# The modules that take longest, longest first (`make test` measures them: pytest's slowest durations). With
# `--no-loadscope-reorder` xdist hands out test files in collection order, so the two workers start on these
# and end on short files together, instead of one finishing a long module alone.
LONGEST_MODULES = (
    "test_automation_e2e.py",
    "test_demo.py",
    "test_reliability.py",
    "test_kill_trials.py",
    "test_silver_gold.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_MODULES.index(name) if name in LONGEST_MODULES else len(LONGEST_MODULES)

    items.sort(key=rank)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the session's services and the warm dbt server, once: in the only process, or in the xdist
    controller after its workers."""
    if hasattr(session.config, "workerinput"):
        return
    warm_dbt.stop()
    shared = session.config._tmp_path_factory.getbasetemp()
    if (shared / "postgres.port").exists():
        services.down(_session_settings(shared))


@pytest.fixture(scope="module")
def transform():
    """The dbt assets, with the manifest prepared first when a model changed since (`make test` prepares it
    before the session: a parse here would rewrite the manifest while other workers read it)."""
    from assets.transform.project import dbt_project, manifest_is_stale

    if manifest_is_stale(dbt_project):
        dbt_project.preparer.prepare(dbt_project)
    return importlib.import_module("assets.transform")


@pytest.fixture(scope="session")
def postgres(strata_env: dict[str, str]) -> PostgresResource:
    return PostgresResource(url=strata_env["STRATA_POSTGRES_URL"])


@pytest.fixture
def mongo(strata_env: dict[str, str], tmp_path: Path) -> MongoResource:
    return MongoResource(url=(tmp_path / "mongo").as_uri(), database_name="strata_test")


@pytest.fixture
def qdrant(tmp_path: Path) -> QdrantResource:
    return QdrantResource(url=(tmp_path / "qdrant").as_uri())


@pytest.fixture
def landing(tmp_path: Path) -> LandingZoneResource:
    root = tmp_path / "landing"
    root.mkdir()
    return LandingZoneResource(root=str(root))


@contextmanager
def scratch_database(
    strata_env: dict[str, str],
    name: str,
    *,
    template: str | None = None,
    keep: bool = False,
    lock: Path | None = None,
) -> Iterator[PostgresResource]:
    """A fresh database `name` of the embedded server (a copy of `template`, if given, made while holding the
    file `lock`: a template admits one copy at a time), dropped afterwards unless `keep`."""
    import psycopg
    from psycopg import sql

    from strata.config import with_database

    admin = with_database(strata_env["STRATA_POSTGRES_URL"], "postgres")
    with FileLock(lock) if lock else nullcontext(), psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            # No other session may be connected to a template being copied (dbt's adapter may keep one open).
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (template,),
            )
            create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(create)
    try:
        yield PostgresResource(url=with_database(strata_env["STRATA_POSTGRES_URL"], name))
    finally:
        if not keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def warehouse(strata_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[PostgresResource]:
    """A fresh database of the embedded server for one test module, dropped afterwards."""
    with scratch_database(strata_env, "t_" + request.module.__name__.rsplit(".", 1)[-1].lower()) as database:
        yield database


@pytest.fixture
def bronze_resources(warehouse: PostgresResource, tmp_path: Path) -> dict:
    """What bronze assets need, on the module's database with no ledger or bronze yet and an empty landing zone."""
    with warehouse.connect(autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS ledger CASCADE; DROP SCHEMA IF EXISTS bronze CASCADE")
    root = tmp_path / "landing"
    root.mkdir()
    return {
        "postgres": warehouse,
        "landing": LandingZoneResource(root=str(root)),
        "mongo": MongoResource(url=(tmp_path / "mongo").as_uri()),
    }


@dataclass(frozen=True)
class Evaluation:
    asset: str
    check: str
    partition: str | None
    passed: bool
    severity: str


@dataclass(frozen=True)
class BuiltRun:
    """What one run of the pipeline's build did (kept as data: it is shared between test processes)."""

    label: str
    layers: tuple[str, ...]
    success: bool
    evaluations: tuple[Evaluation, ...]


@dataclass(frozen=True)
class Pipeline:
    """A copy of the built sample pipeline: its resources, the generator's manifest, how the build went."""

    resources: dict
    manifest: dict
    runs: tuple[BuiltRun, ...]
    drop: Path

    @property
    def postgres(self) -> PostgresResource:
        return self.resources["postgres"]


PIPELINE_TEMPLATE = "t_built_pipeline"


def _summary(run, result: dg.ExecuteInProcessResult) -> dict:
    return {
        "label": run.label,
        "layers": sorted({key.path[0] for key in run.keys}),
        "success": result.success,
        "evaluations": [
            [e.asset_key.to_user_string(), e.check_name, e.partition, e.passed, e.severity.value]
            for e in result.get_asset_check_evaluations()
        ],
    }


@pytest.fixture(scope="session")
def built_pipeline(strata_env, tmp_path_factory) -> tuple[Path, dict]:
    """The 7-day scale-1 sample drop (seed 7) generated, loaded into bronze (with the raw-document copies) and
    built through silver and gold once for the whole session, every worker's (as `strata demo` builds, through
    assets.automation.plan), in a database that tests copy. Returns its folder (drop, landing, mongo) and a summary of the build."""
    from assets.transform import dbt_resource
    from strata.generate import generate

    base = shared_dir(tmp_path_factory) / "pipeline"
    with FileLock(shared_dir(tmp_path_factory) / "pipeline.lock"):
        if not (base / "built.json").exists():
            shutil.rmtree(base, ignore_errors=True)
            base.mkdir()
            mongo = MongoResource(url=(base / "mongo").as_uri(), database_name="strata")
            with mongo.database() as database:
                manifest = generate(base / "drop", scale=1, days=7, seed=7, mongo_db=database)
            (base / "drop" / "manifest.json").unlink()
            shutil.copytree(base / "drop", base / "landing")
            with scratch_database(strata_env, PIPELINE_TEMPLATE, keep=True) as postgres:
                resources = {
                    "postgres": postgres,
                    "mongo": mongo,
                    "landing": LandingZoneResource(root=str(base / "landing")),
                    "dbt": dbt_resource(PII_SALT),
                }
                runs = [
                    _summary(run, result)
                    for run, result in build(resources, keys_in("bronze", "documents", "silver", "gold"))
                ]
            (base / "built.json").write_text(json.dumps({"manifest": manifest, "runs": runs}))
    return base, json.loads((base / "built.json").read_text())


@pytest.fixture(scope="module")
def pipeline(strata_env, built_pipeline, request, tmp_path_factory) -> Iterator[Pipeline]:
    """This module's own copy of the built sample pipeline: database, landing zone and Mongo store."""
    from assets.transform import dbt_resource

    base, built = built_pipeline
    copy = tmp_path_factory.mktemp("pipeline")
    shutil.copytree(base / "landing", copy / "landing")
    shutil.copytree(base / "mongo", copy / "mongo")
    name = "t_" + request.module.__name__.rsplit(".", 1)[-1].lower()
    lock = shared_dir(tmp_path_factory) / "pipeline.lock"
    with scratch_database(strata_env, name, template=PIPELINE_TEMPLATE, lock=lock) as postgres:
        yield Pipeline(
            resources={
                "postgres": postgres,
                "mongo": MongoResource(url=(copy / "mongo").as_uri(), database_name="strata"),
                "landing": LandingZoneResource(root=str(copy / "landing")),
                "dbt": dbt_resource(PII_SALT),
            },
            manifest=built["manifest"],
            runs=tuple(
                BuiltRun(
                    r["label"],
                    tuple(r["layers"]),
                    r["success"],
                    tuple(Evaluation(*e) for e in r["evaluations"]),
                )
                for r in built["runs"]
            ),
            drop=base / "drop",
        )


REPO = Path(__file__).resolve().parent.parent
STRATA = str(Path(sys.executable).with_name("strata"))
# What a settled stack has materialized: every gold mart and the index.
GOLD_AND_INDEX = [
    "gold/account_daily_engagement",
    "gold/creator_leaderboard",
    "gold/ambassador_program_performance",
    "gold/content_performance",
    "gold/viewing_completion",
    "gold/brand_mentions_daily",
    "vector/content_index",
]
SETTLE_TIMEOUT = 1200


@dataclass
class Stack:
    """`strata up` on free ports with the sample drop, watched through the Dagster UI's GraphQL API."""

    home: Path
    env: dict[str, str]
    dagster: object
    # The runs of the first settle: the sample drop landing all at once.
    first_refresh_runs: list
    first_refresh_seconds: float
    # The (path, body) of every alert the platform posted to its webhook.
    alerts: list[tuple[str, bytes]]

    @property
    def warehouse(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.env['STRATA_POSTGRES_PORT']}/strata"

    @property
    def storage(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.env['STRATA_POSTGRES_PORT']}/dagster"

    @property
    def manifest(self) -> dict:
        import json

        return json.loads((self.home / "landing" / "manifest.json").read_text())

    def strata(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [STRATA, *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def settle(self) -> float:
        """Settled since now: after a file landed, every requesting sensor must tick again."""
        return self.dagster.settle(GOLD_AND_INDEX, timeout=SETTLE_TIMEOUT)

    def idle(self) -> float:
        """Settled since the last run ended: what a test finds when the one before it left the stack settled
        (no fresh sensor tick needed), or once the runs still going (a cron tick's) have ended."""
        return self.dagster.settle(GOLD_AND_INDEX, timeout=SETTLE_TIMEOUT, since=0.0)

    def log_tail(self, lines: int = 60) -> str:
        """The end of `dagster dev`'s log, for a failure message."""
        log = self.home / "logs" / "dagster-dev.log"
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else ""


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """One `strata up` for a module's end-to-end tests, settled on the sample drop before the first of them.
    A test that restarts it leaves it running and settled. It goes down with the module: an idle stack's
    sensors and cron ticks would take CPU from the tests after it."""
    from resources import AlertWebhookResource
    from strata.dagster_api import Dagster

    home = Path(tempfile.mkdtemp(prefix="strata-stack-"))
    receiver = webhook_receiver()
    port, alerts = receiver.__enter__()
    env = isolated_env(home) | {AlertWebhookResource().url_env: f"http://127.0.0.1:{port}/alerts"}
    try:
        # Two days of the sample drop: a backlog of every source over every network, at under a third of the cost.
        up = subprocess.run(
            [STRATA, "up", "--sample-days", "2"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert up.returncode == 0, up.stdout + up.stderr
        assert "landed the sample drop" in up.stdout
        dagster = Dagster(f"http://127.0.0.1:{env['STRATA_DAGSTER_PORT']}")
        seconds = dagster.settle(GOLD_AND_INDEX, timeout=SETTLE_TIMEOUT)
        yield Stack(home, env, dagster, dagster.runs(), seconds, alerts)
    finally:
        subprocess.run([STRATA, "down"], cwd=REPO, env=env, capture_output=True, timeout=120)
        receiver.__exit__(None, None, None)
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def webhook_receiver() -> Iterator[tuple[int, list[tuple[str, bytes]]]]:
    """A real HTTP endpoint on a free port recording each POST's path and body."""
    received: list[tuple[str, bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 — the http.server API
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port, received
    finally:
        server.shutdown()
        server.server_close()


def keys_in(*layers: str) -> set[dg.AssetKey]:
    """The pipeline's asset keys of the given layers (`bronze`, `documents`, `silver`, `gold`, `vector`), without
    the data-quality assets, which read the instance's event log."""
    from strata.definitions import defs

    graph = defs.resolve_asset_graph()
    return {
        key
        for key in graph.materializable_asset_keys
        if key.path[0] in layers and graph.get(key).group_name != "observability"
    }


def build(
    resources: dict,
    keys: set[dg.AssetKey],
    *,
    instance: dg.DagsterInstance | None = None,
    raise_on_error: bool = True,
) -> list:
    """Build `keys` as `strata demo` does — the graph's build order (assets.automation.plan), bronze over the
    partitions with files — with the given resources; returns (run, result) pairs."""
    from assets.automation.plan import materialize_runs, plan_runs
    from assets.bronze import ledger
    from assets.bronze.discover import data_partitions
    from strata.definitions import defs

    # Resources given as configuration (EnvVar) are resolved as a run would resolve them.
    wanted = {name: resources[name] for name in ("postgres", "landing") if name in resources}
    with dg.build_resources(wanted) as live, live.postgres.connect(autocommit=True) as conn:
        ledger.ensure_schema(conn)
        data = data_partitions(conn, getattr(live, "landing", None))
    graph = defs.resolve_asset_graph()
    return materialize_runs(
        plan_runs(graph, data, keys),
        [*defs.assets, *defs.asset_checks],
        resources,
        instance=instance,
        raise_on_error=raise_on_error,
    )
