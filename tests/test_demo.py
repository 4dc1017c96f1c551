"""`strata demo` for real, on a one-day drop: killed inside each phase that holds something and run again, it
ends as an uninterrupted build of the same drop would; it stops at once on SIGTERM or SIGINT (also while
waiting for a pool, saying who holds it); it exits non-zero when a blocking check fails, building nothing on
top of the failure."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg import sql

from tests.conftest import PII_SALT, build, isolated_env, keys_in, scratch_database

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parent.parent
STRATA = str(Path(sys.executable).with_name("strata"))
# One file much larger than the rest, so that its COPY lasts long enough to be caught mid-way. Viewers: they
# reach silver, not the index.
BIG_FILE = "video/users/users-big.csv"
BIG_ROWS = 100_000


@dataclass
class Home:
    """A STRATA_HOME with a one-day drop landed, and the environment of `strata` commands run on it."""

    path: Path
    env: dict[str, str]

    @property
    def warehouse(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.env['STRATA_POSTGRES_PORT']}/strata"

    @property
    def storage(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.env['STRATA_POSTGRES_PORT']}/dagster"

    def strata(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run(
            [STRATA, *args], cwd=REPO, env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def start_demo(self) -> Demo:
        return Demo(self)


class Demo:
    """`strata demo` in its own process group, its output in a file that can be watched while it runs."""

    def __init__(self, home: Home):
        self.home = home
        self.log = home.path / f"demo-{time.monotonic_ns()}.log"
        self._out = self.log.open("wb")
        self.process = subprocess.Popen(
            [STRATA, "demo"],
            cwd=REPO,
            env=home.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, hit: Callable[[], bool], what: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not hit():
            assert self.process.poll() is None, f"the demo ended before {what}:\n{self.output[-3000:]}"
            assert time.monotonic() < deadline, f"no {what} within {timeout} s"
            time.sleep(0.02)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._out.close()

    def finish(self, timeout: float = 900) -> int:
        code = self.process.wait(timeout=timeout)
        self._out.close()
        return code


@contextmanager
def demo_home() -> Iterator[Home]:
    """A fresh STRATA_HOME with the one-day drop (and one big posts partition) landed; stopped and removed after."""
    path = Path(tempfile.mkdtemp(prefix="strata-demo-"))
    # The session's salt: the reference build hashes with it too.
    home = Home(path, isolated_env(path, dagster=False) | {"STRATA_PII_SALT": PII_SALT})
    try:
        generated = home.strata("generate", "--out", str(path / "landing"), "--days", "1", "--seed", "11")
        assert generated.returncode == 0, generated.stderr
        with (path / "landing" / BIG_FILE).open("w") as out:
            out.write("user_id,name,email,country,signup_date,subscription_tier\r\n")
            for n in range(BIG_ROWS):
                out.write(f"big_{n:07d},Viewer {n},viewer{n}@example.org,FR,2024-01-01,free\r\n")
        yield home
    finally:
        home.strata("down", timeout=120)
        shutil.rmtree(path, ignore_errors=True)


COPYING_INTO_BRONZE = ("query LIKE %s", 'COPY "bronze".%')
DBT_AT_WORK = ("application_name = %s", "dbt")
DBT_WAITING = ("wait_event_type = 'Lock' AND application_name = %s", "dbt")


def active(home: Home, statement: tuple[str, str]) -> bool:
    """Whether the warehouse is executing a statement of the kind given right now."""
    condition, value = statement
    try:
        with psycopg.connect(home.warehouse, connect_timeout=2) as conn:
            return bool(
                conn.execute(
                    sql.SQL(
                        "SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND "
                    )
                    + sql.SQL(condition),
                    (value,),
                ).fetchone()
            )
    except psycopg.OperationalError:
        return False  # the server is not up yet


def state(warehouse: str, qdrant: Path) -> dict:
    """What a build leaves: bronze and quarantine counts, silver and gold row contents (without load ids, which
    number loads), and the index's points with their content hashes."""
    found = {}
    with psycopg.connect(warehouse) as conn:
        tables = conn.execute(
            """SELECT table_schema, table_name, array_agg(column_name::text ORDER BY ordinal_position)
               FROM information_schema.columns
               WHERE table_schema IN ('bronze', 'silver', 'gold')
                 AND table_name NOT IN ('check_history', 'source_freshness')  -- observations, timed
               GROUP BY 1, 2 ORDER BY 1, 2"""
        ).fetchall()
        for schema, table, columns in tables:
            name = sql.Identifier(schema, table)
            if schema == "bronze":
                found[f"{schema}.{table}"] = conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(name)
                ).fetchone()[0]
                continue
            kept = sql.SQL(", ").join(
                sql.Identifier(c) for c in columns if c not in ("load_id", "source_file")
            )
            found[f"{schema}.{table}"] = conn.execute(
                sql.SQL(
                    "SELECT count(*) || ':' || md5(coalesce(string_agg(r::text, '|' ORDER BY r::text), ''))"
                    " FROM (SELECT {} FROM {}) r"
                ).format(kept, name)
            ).fetchone()[0]
    from resources import QdrantResource
    from resources.qdrant import QdrantUnavailableError

    try:
        with QdrantResource(url=qdrant.as_uri()).reader("content_index") as store:
            found["qdrant"] = sorted(
                (pid, payload["content_hash"]) for pid, payload in store.payloads().items()
            )
    except QdrantUnavailableError:  # no index published yet
        found["qdrant"] = []
    return found


def dbt_processes(home: Home) -> list[int]:
    """The processes holding dbt's sessions with the warehouse, found by their end of the TCP connection."""
    with psycopg.connect(home.warehouse) as conn:
        ports = {
            port
            for (port,) in conn.execute(
                "SELECT client_port FROM pg_stat_activity WHERE application_name = 'dbt'"
            ).fetchall()
        }
    return sorted(
        {c.pid for c in psutil.net_connections(kind="tcp") if c.pid and c.laddr and c.laddr.port in ports}
    )


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE  # a zombie is dead, only not reaped
    except psutil.NoSuchProcess:
        return False


def run_status(home: Home, run_id: str) -> str:
    with psycopg.connect(home.storage) as conn:
        return conn.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,)).fetchone()[0]


@pytest.fixture(scope="module")
def reference(strata_env, tmp_path_factory) -> dict:
    """What an uninterrupted build of the same drop leaves: every asset built once, in this process, through the
    build plan `strata demo` uses (tests.conftest.build), into fresh stores."""
    from assets.transform import dbt_resource
    from resources import EmbeddingModelResource, LandingZoneResource, MongoResource, QdrantResource

    with demo_home() as home, scratch_database(strata_env, "t_demo_reference") as postgres:
        store = tmp_path_factory.mktemp("reference")
        resources = {
            "postgres": postgres,
            # The drop's campaigns, which `strata generate` wrote into the home's Mongo store.
            "mongo": MongoResource(url=(home.path / "mongo").as_uri(), database_name="strata"),
            "landing": LandingZoneResource(root=str(home.path / "landing")),
            "dbt": dbt_resource(PII_SALT),
            "qdrant": QdrantResource(url=(store / "qdrant").as_uri()),
            "embedder": EmbeddingModelResource(),
        }
        assert all(r.success for _, r in build(resources, keys_in("bronze", "silver", "gold", "vector")))
        return state(postgres.url, store / "qdrant")


@pytest.fixture(scope="module")
def killed(reference) -> Iterator[dict]:
    """A demo killed inside each phase that holds something, then run to the end; its home stays for the module's
    other tests (each only needs a built home)."""
    with demo_home() as home:
        outputs, partial = kill_in_each_phase_then_finish(home)
        yield {
            "home": home,
            "outputs": outputs,
            "partial": partial,
            "state": state(home.warehouse, home.path / "qdrant"),
        }


def test_a_demo_killed_inside_each_phase_that_holds_something_then_run_again_ends_as_if_never_killed(
    killed, reference
):
    final = killed["outputs"][-1]

    # Every run after a kill found the run the kill left behind and failed it before building.
    assert [text.count("recovered: run ") for text in killed["outputs"]] == [1, 1, 1]
    # The sync killed during the first build published nothing: readers never saw a partial index.
    assert killed["partial"] == [] and reference["qdrant"]
    assert killed["state"] == reference
    for section in ("== rows per layer ==", "== checks ==", "== freshness ==", "== hybrid search"):
        assert section in final
    assert "demo: OK" in final and ", 0 failed, 0 skipped" in final


def kill_in_each_phase_then_finish(home: Home) -> tuple[list[str], list]:
    recovered_after: list[str] = []

    # 1. Inside bronze's COPY: nothing of the partition may be visible, its loads stay `ingesting`.
    demo = home.start_demo()
    demo.wait_for(lambda: active(home, COPYING_INTO_BRONZE), "a COPY into bronze")
    demo.kill()
    with psycopg.connect(home.warehouse) as conn:
        loads = conn.execute("SELECT source, load_id FROM ledger.loads WHERE status = 'ingesting'").fetchall()
        assert loads
        visible = sum(
            conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE load_id = %s").format(
                    sql.Identifier("bronze", source)
                ),
                (load_id,),
            ).fetchone()[0]
            for source, load_id in loads
        )
        assert visible == 0

    # 2. Inside a dbt build (its run takes a dbt pool): the run stays STARTED with no process behind it.
    demo = home.start_demo()
    demo.wait_for(lambda: active(home, DBT_AT_WORK), "dbt at work")
    demo.kill()
    recovered_after.append(demo.output)
    with psycopg.connect(home.storage) as conn:
        assert conn.execute("SELECT count(*) FROM runs WHERE status = 'STARTED'").fetchone()[0] == 1

    # 3. Inside the vector sync (its run takes pool `qdrant`), after its first batch of points was encoded.
    demo = home.start_demo()
    demo.wait_for(lambda: "embedded " in demo.output, "the sync's first encoded batch")
    demo.kill()
    recovered_after.append(demo.output)
    partial = state(home.warehouse, home.path / "qdrant")["qdrant"]

    final = home.start_demo()
    assert final.finish() == 0, final.output[-4000:]
    recovered_after.append(final.output)
    return recovered_after, partial


HOLDER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import dagster as dg
    from strata import services
    from strata.config import Settings
    from strata.run_workers import owner_tags

    os.environ.update(services.service_environment(Settings.from_env()))
    release = Path(sys.argv[1])

    @dg.asset(pool="dbt_none")
    def holds_a_dbt_pool():
        print("holding", flush=True)
        while not release.exists():
            time.sleep(0.1)

    dg.materialize([holds_a_dbt_pool], instance=dg.DagsterInstance.get(), tags=owner_tags())
    """
)


def test_sigterm_stops_a_demo_waiting_for_a_pool_and_says_who_holds_it(killed, tmp_path):
    home = killed["home"]
    release = tmp_path / "release"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(release)],
        cwd=REPO,
        env=home.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        demo = home.start_demo()
        demo.wait_for(
            lambda: "waiting: pool `dbt_none` is held by run " in demo.output, "the wait for pool dbt_none"
        )
        demo.process.send_signal(signal.SIGTERM)
        code = demo.finish(timeout=60)
    finally:
        release.touch()
        holder.wait(timeout=60)

    holder_run = demo.output.split("waiting: pool `dbt_none` is held by run ", 1)[1].split()[0]
    with psycopg.connect(home.storage) as conn:
        owner = conn.execute(
            "SELECT value FROM run_tags WHERE run_id = %s AND key = 'strata/owner'", (holder_run,)
        ).fetchone()[0]
    assert code == 128 + signal.SIGTERM
    assert owner.split(":")[1] == str(holder.pid) and "done in " not in demo.output
    with psycopg.connect(home.storage) as conn:
        left = conn.execute(
            "SELECT count(*) FROM runs WHERE status IN ('STARTED', 'STARTING', 'QUEUED', 'NOT_STARTED')"
        ).fetchone()[0]
    assert left == 0


def test_sigint_inside_a_dbt_build_cancels_the_run_and_kills_dbt(killed):
    home = killed["home"]
    # A reader holding silver.video_users keeps the dbt build that replaces it waiting, mid-run, for as long as
    # the test needs: the signal cannot land between two runs.
    with psycopg.connect(home.warehouse) as reader:
        reader.execute("LOCK TABLE silver.video_users IN ACCESS SHARE MODE")
        demo = home.start_demo()
        demo.wait_for(lambda: active(home, DBT_WAITING), "dbt waiting for silver.video_users")
        children = [p.pid for p in psutil.Process(demo.process.pid).children(recursive=True)]
        # dbt itself is a child of the warm dbt server (strata.warm_dbt), not of the demo.
        dbt = dbt_processes(home)
        demo.process.send_signal(signal.SIGINT)
        code = demo.finish(timeout=60)

    assert code == 128 + signal.SIGINT
    stopped = [line for line in demo.output.splitlines() if line.startswith("stopped by SIGINT: run ")]
    assert len(stopped) == 1, demo.output[-4000:]
    run_id = stopped[0].split()[4]
    assert run_status(home, run_id) == "CANCELED"
    assert children and not [pid for pid in children if alive(pid)]
    deadline = time.monotonic() + 60
    while [pid for pid in dbt if alive(pid)]:
        assert time.monotonic() < deadline, f"dbt {dbt} outlived the demo"
        time.sleep(0.1)
    assert dbt


def test_a_blocking_check_failure_makes_the_demo_exit_non_zero_and_nothing_is_built_on_it(killed):
    home = killed["home"]
    # Someone copies a bronze row by hand: the next load's no_duplicate_records check (ERROR, blocking) fails.
    with psycopg.connect(home.warehouse) as conn:
        (copy,) = conn.execute(
            "INSERT INTO bronze.video_users SELECT * FROM bronze.video_users LIMIT 1 RETURNING ctid"
        ).fetchone()
    try:
        failed = home.strata("demo")
    finally:
        # The module's other tests share the home: it goes back to a built one, whatever the order.
        with psycopg.connect(home.warehouse) as conn:
            conn.execute("DELETE FROM bronze.video_users WHERE ctid = %s::tid", (copy,))

    assert failed.returncode == 1, failed.stdout[-4000:]
    assert "bronze/video_users no_duplicate_records" in failed.stdout and "demo: FAILED" in failed.stdout
    # What is built from bronze/video_users was skipped, not built on the failure; everything else was built.
    skipped = [line for line in failed.stdout.splitlines() if line.startswith("… skipped ")]
    assert all(line.endswith(": built on a failed blocking check or a failed run") for line in skipped)
    left_out = {key for line in skipped for key in line[len("… skipped ") :].split(":")[0].split(", ")}
    assert left_out == {"silver/video_users", "gold/viewing_completion"}
