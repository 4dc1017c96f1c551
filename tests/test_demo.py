"""`strata demo` for real, on a one-day drop: killed inside each phase that holds something and run again, it
ends as an uninterrupted build of the same drop would; it stops at once on SIGTERM or SIGINT (also while
waiting for a pool, saying who holds it); it exits non-zero when a blocking check fails, building nothing on
top of the failure."""

from __future__ import annotations

import json
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


DBT_AT_WORK = ("application_name = %s", "dbt")
DBT_WAITING = ("wait_event_type = 'Lock' AND application_name = %s", "dbt")


def holds(home: Home, query: sql.Composable | str, params: tuple) -> bool:
    """Whether the query finds a row in the warehouse right now; False while the server or the ledger is not up."""
    try:
        with psycopg.connect(home.warehouse, connect_timeout=2) as conn:
            return bool(conn.execute(query, params).fetchone())
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return False


def active(home: Home, statement: tuple[str, str]) -> bool:
    """Whether the warehouse is executing a statement of the kind given right now."""
    condition, value = statement
    return holds(
        home,
        sql.SQL("SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() AND ")
        + sql.SQL(condition),
        (value,),
    )


def copying_the_big_file(home: Home) -> bool:
    """Whether bronze is inside BIG_FILE's COPY: its load registered as ingesting, a COPY into its table running.
    (Any COPY would not do: a small file's COPY can commit between the look and the kill.)"""
    return holds(
        home,
        """SELECT 1 FROM ledger.loads l, pg_stat_activity a
           WHERE l.path LIKE %s AND l.status = 'ingesting' AND a.state = 'active' AND a.query LIKE %s""",
        ("%" + BIG_FILE, 'COPY "bronze"."video_users"%'),
    )


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
    demo.wait_for(lambda: copying_the_big_file(home), "the big file's COPY into bronze")
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


DAY = "2026-11-01"
# Accounts a partner's posts name before any accounts snapshot shows them, per network.
LATE_ACCOUNTS = {"tiktok": ["tt_partner_0", "tt_partner_1"], "x": ["x_partner_0"]}
FREE_TEXT_NETWORKS = ("Instagram (main)", "tik tok", "see bio!!", "YouTube channel")


def _partner_posts(network: str) -> list[dict]:
    return [
        {
            "post_id": f"{network}_partner_post_{number}",
            "network": network,
            "account_id": account,
            "created_at": f"{DAY}T09:00:00Z",
            "caption": "Unboxing the new season kit #matchday",
            "hashtags": ["matchday"],
            "media_count": 0,
            "media": [],
            "scraped_at": "2026-11-02T08:00:00Z",
            "like_count": 3 + number,
            "comment_count": 1,
            "share_count": 2,
            "retweet_count": 2,
            "view_count": 50,
            "play_count": 50,
        }
        for number, account in enumerate(LATE_ACCOUNTS[network] * 2)
    ]


def _rows_by_account(conn: psycopg.Connection) -> dict[str, set[tuple]]:
    """The rows of every gold table with an account_id column, but the late accounts', without ranks: the late
    accounts' posts count, so they take their places in a ranking, and the accounts after them move down."""
    tables = conn.execute(
        """SELECT table_name, array_agg(column_name::text ORDER BY ordinal_position) FILTER (
                  WHERE column_name NOT LIKE 'rank%')
           FROM information_schema.columns WHERE table_schema = 'gold'
           GROUP BY 1 HAVING bool_or(column_name = 'account_id') ORDER BY 1"""
    ).fetchall()
    late = [account for accounts in LATE_ACCOUNTS.values() for account in accounts]
    return {
        table: set(
            conn.execute(
                sql.SQL("SELECT {} FROM {} WHERE account_id <> ALL(%s)").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier("gold", table)
                ),
                (late,),
            ).fetchall()
        )
        for table, columns in tables
    }


def test_bad_rows_from_one_sender_never_stop_the_demo(killed):
    """A partner sends three files into one partition of a built home: posts on two networks naming accounts no
    snapshot shows yet, and an accounts CSV whose network column holds free text. `strata demo` succeeds: bronze
    holds every record of the three files; the bad account rows are set aside in dq_failures under their rule and
    never reach silver; the orphan posts are in silver and gold under inferred accounts; every other account's
    gold rows are as before (their ranks excepted). How an inferred account becomes the account its snapshot
    describes, when that lands, is specified in tests/test_silver_gold.py (late-arriving dimension)."""
    home = killed["home"]
    landing = home.path / "landing"
    files = {
        f"social/posts/network={network}/date={DAY}/partner-{network}.jsonl": _partner_posts(network)
        for network in LATE_ACCOUNTS
    }
    for path, posts in files.items():
        (landing / path).parent.mkdir(parents=True, exist_ok=True)
        (landing / path).write_text("".join(json.dumps(post) + "\n" for post in posts))
    bad_accounts = f"social/accounts/date={DAY}/partner-accounts.csv"
    free_text = {f"partner_acc_{n:02d}": FREE_TEXT_NETWORKS[n % len(FREE_TEXT_NETWORKS)] for n in range(23)}
    (landing / bad_accounts).write_text(
        "account_id,network,handle,display_name,category,followers,following,created_at\n"
        + "".join(
            f"{account},{network},{account}.h,Partner {account},music,10,1,2026-10-01T00:00:00Z\n"
            for account, network in free_text.items()
        )
    )
    with psycopg.connect(home.warehouse) as conn:
        before = _rows_by_account(conn)

    demo = home.strata("demo")

    with psycopg.connect(home.warehouse) as conn:
        in_bronze = dict(
            conn.execute(
                """SELECT source_file, count(*) FROM bronze.social_posts WHERE source_file LIKE '%partner-%'
                   GROUP BY 1 UNION ALL
                   SELECT source_file, count(*) FROM bronze.social_accounts WHERE source_file LIKE '%partner-%'
                   GROUP BY 1"""
            ).fetchall()
        )
        quarantined = conn.execute(
            "SELECT count(*) FROM bronze.quarantine WHERE source_file LIKE '%partner-%'"
        ).fetchone()[0]
        set_aside = dict(
            conn.execute(
                """SELECT "row" ->> 'account_id', rule || ' ' || action || ' ' || ("row" ->> 'network')
                   FROM dq_failures.account_snapshots WHERE "row" ->> 'source_file' = %s""",
                (bad_accounts,),
            ).fetchall()
        )
        bad_in_silver = conn.execute(
            """SELECT count(*) FROM silver.accounts WHERE account_id LIKE 'partner_acc_%'""",
        ).fetchone()[0]
        late = [account for accounts in LATE_ACCOUNTS.values() for account in accounts]
        posts = dict(
            conn.execute(
                "SELECT account_id, count(*) FROM silver.posts WHERE account_id = ANY(%s) GROUP BY 1", (late,)
            ).fetchall()
        )
        engagement = conn.execute(
            """SELECT account_id, network, posts, likes FROM gold.account_daily_engagement
               WHERE account_id = ANY(%s) ORDER BY 1""",
            (late,),
        ).fetchall()
        accounts = conn.execute(
            "SELECT account_id, is_inferred, handle FROM silver.accounts WHERE account_id = ANY(%s) ORDER BY 1",
            (late,),
        ).fetchall()
        after = _rows_by_account(conn)

    assert demo.returncode == 0 and "demo: OK" in demo.stdout, demo.stdout[-4000:]
    assert (
        in_bronze
        == {
            **{path: len(posts_) for path, posts_ in files.items()},
            bad_accounts: 23,
        }
        and quarantined == 0
    )
    assert set_aside == {
        account: f"network_is_known drop {network}" for account, network in free_text.items()
    }
    assert bad_in_silver == 0
    assert posts == {"tt_partner_0": 2, "tt_partner_1": 2, "x_partner_0": 2}
    assert engagement == [
        ("tt_partner_0", "tiktok", 2, 3 + 5),
        ("tt_partner_1", "tiktok", 2, 4 + 6),
        ("x_partner_0", "x", 2, 3 + 4),
    ]
    assert accounts == [
        ("tt_partner_0", True, None),
        ("tt_partner_1", True, None),
        ("x_partner_0", True, None),
    ]
    assert after == before
