"""landing/x_recent_search pulls tweets from an X-API-v2-shaped recent search — the local API of
strata.generate.recent_search over real HTTP on loopback — page by page into the landing zone; bronze and silver
load them like any landed file. Pages are followed to the end of next_token, a 429 waits for its reset (bounded),
a 5xx, a timeout and a page cut short are tried again, a page that keeps failing fails the run naming it, and a
day's cursor moves only once every page has landed: a search killed between pages is searched again and nothing
arrives twice. The bearer token appears in no log, event or run configuration."""

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import orjson
import pytest

from assets.bronze import ledger
from assets.bronze.factory import bronze_assets
from assets.bronze.sources import SOURCES_BY_NAME
from assets.landing.x_recent_search import (
    PAGES_LANDED,
    RESULT_COUNTS_MATCH,
    TWEETS_RETURNED,
    x_recent_search,
    x_recent_search_schedule,
)
from resources import LandingZoneResource, RecentSearchResource
from strata.config import Settings
from strata.generate import FaultRates
from strata.generate.core import Run
from strata.generate.recent_search import TWEETS_PER_DAY, Fault, RecentSearchServer, recent_tweets
from tests.conftest import PII_SALT

pytestmark = pytest.mark.slow

TOKEN = "xq-bearer-4f1d9c2e77"
SOURCE = SOURCES_BY_NAME["x_recent_search"]
BRONZE = next(a for a in bronze_assets if a.key == SOURCE.asset_key)
SILVER = dg.AssetKey(["silver", "tweets"])
PAGE_SIZE = 10  # 300 tweets a day: 30 pages


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[list[dict], dict[str, dict]]:
    run = Run(
        tmp_path_factory.mktemp("drop"), seed=5, scale=1, days=4, start=date(2026, 11, 1), rates=FaultRates()
    )
    return recent_tweets(run)


@pytest.fixture
def api(monkeypatch, sample) -> Iterator:
    """Serve the sample (with the faults given) and point the environment at it, as STRATA_TWEETS_API_URL and
    STRATA_TWEETS_API_TOKEN would under `strata up`."""
    servers = []

    def serve(*faults: Fault) -> RecentSearchServer:
        server = RecentSearchServer(*sample, token=TOKEN, faults=faults)
        context = server.running()
        monkeypatch.setenv("STRATA_TWEETS_API_URL", context.__enter__())
        servers.append(context)
        return server

    monkeypatch.setenv("STRATA_TWEETS_API_TOKEN", TOKEN)
    yield serve
    for context in servers:
        context.__exit__(None, None, None)


def served(sample, day: str) -> set[str]:
    return {tweet["id"] for tweet in sample[0] if tweet["created_at"].startswith(day)}


def resources(warehouse, landing_root: Path, transform=None, **api) -> dict:
    found = {
        "postgres": warehouse,
        "landing": LandingZoneResource(root=str(landing_root)),
        "tweets_api": RecentSearchResource(max_results=PAGE_SIZE, **api),
    }
    return found | ({"dbt": transform.dbt_resource(PII_SALT)} if transform else {})


def extract(day: str, found: dict, instance: dg.DagsterInstance, **options) -> dg.ExecuteInProcessResult:
    return dg.materialize([x_recent_search], partition_key=day, resources=found, instance=instance, **options)


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def cursor(warehouse, day: str) -> ledger.Cursor | None:
    with warehouse.connect() as conn:
        return ledger.partition_cursor(conn, SOURCE.name, day)


def load(day: str, found: dict, transform, source=SOURCE) -> None:
    """A day of a bronze source (bronze/x_recent_search unless said), then of silver/tweets."""
    bronze = next(a for a in bronze_assets if a.key == source.asset_key)
    assert dg.materialize([bronze], partition_key=day, resources=found).success
    daily = next(a for a in transform.dbt_assets if a.op.name == "dbt_daily")
    built = dg.materialize([daily], partition_key=day, selection=[SILVER], resources=found)
    assert built.success


def token_leaks(instance: dg.DagsterInstance) -> list[str]:
    """Where the token appears in any run's configuration, tags or event log."""
    leaks = []
    for run in instance.get_runs():
        if TOKEN in repr(run.run_config) or TOKEN in repr(run.tags):
            leaks.append(f"run {run.run_id} config or tags")
        leaks += [f"run {run.run_id} event" for e in instance.all_logs(run.run_id) if TOKEN in repr(e)]
    return leaks


def warnings(instance: dg.DagsterInstance) -> list[str]:
    return [
        e.user_message
        for run in instance.get_runs()
        for e in instance.all_logs(run.run_id)
        if e.level == 30 and e.user_message
    ]


def test_a_day_is_paged_to_its_end_landed_page_by_page_and_reaches_silver_once_per_tweet(
    warehouse, transform, tmp_path, api, sample
):
    day = "2026-11-01"
    server = api()
    found = resources(warehouse, tmp_path / "landing", transform)
    instance = dg.DagsterInstance.ephemeral()

    first = extract(day, found, instance)
    again = extract(day, found, instance)

    pages = sorted((tmp_path / "landing" / "x/recent_search" / f"date={day}").glob("*.json"))
    metadata = first.get_asset_materialization_events()[0].materialization.metadata
    newest = max(served(sample, day), key=int)
    # Every page to the end of next_token, each landed as the server returned it, and the cursor at the newest.
    assert len(pages) == TWEETS_PER_DAY // PAGE_SIZE + 1 >= 10
    assert (metadata["pages"].value, metadata["tweets"].value) == (
        TWEETS_PER_DAY // PAGE_SIZE,
        TWEETS_PER_DAY,
    )
    assert checks(first) == {PAGES_LANDED: True, RESULT_COUNTS_MATCH: True, TWEETS_RETURNED: True}
    assert cursor(warehouse, day) == ledger.Cursor(datetime(2026, 11, 2, tzinfo=UTC), newest)
    first_requests, second_requests = server.requests[:-1], server.requests[-1:]
    assert [r.params.get("next_token") for r in first_requests] == [None] + [
        f"p{n * PAGE_SIZE}" for n in range(1, len(first_requests))
    ]
    assert all(r.params["start_time"] == f"{day}T00:00:00Z" for r in server.requests)
    # Searched again, the day asks only for tweets newer than its cursor: none, which usually is not so (WARN).
    assert second_requests[0].params["since_id"] == newest
    assert orjson.loads(pages[-1].read_bytes()) == {"meta": {"result_count": 0}}
    assert checks(again) == {PAGES_LANDED: True, RESULT_COUNTS_MATCH: True, TWEETS_RETURNED: False}
    assert cursor(warehouse, day) == ledger.Cursor(datetime(2026, 11, 2, tzinfo=UTC), newest)

    # Once the pages are loaded, one tweet of the day arrives again in a v1.1 search response with a new text;
    # another arrives only there.
    assert dg.materialize([BRONZE], partition_key=day, resources=found).success
    shared_id = sorted(served(sample, day))[0]
    v1 = {"statuses": [_status(shared_id, "edited later"), _status("1", "only in v1.1")]}
    (tmp_path / "landing" / f"x/tweets/date={day}").mkdir(parents=True)
    (tmp_path / "landing" / f"x/tweets/date={day}/search-0001.json").write_bytes(orjson.dumps(v1))
    load(day, found, transform, SOURCES_BY_NAME["tweets"])

    with warehouse.connect() as conn:
        bronze = conn.execute(
            "SELECT count(*), count(DISTINCT tweet_id) FROM bronze.x_recent_search WHERE partition_date = %s",
            (day,),
        ).fetchone()
        set_aside = conn.execute(
            "SELECT count(*) FROM bronze.quarantine WHERE source = %s", (SOURCE.name,)
        ).fetchone()
        silver = {
            tweet_id: (text, screen_name)
            for tweet_id, text, screen_name in conn.execute(
                "SELECT tweet_id, full_text, user_screen_name FROM silver.tweets WHERE tweet_date = %s",
                (day,),
            )
        }
    by_id = {tweet["id"]: tweet for tweet in sample[0]}
    assert bronze == (TWEETS_PER_DAY, TWEETS_PER_DAY) and set_aside == (0,)
    # One row per tweet id, whichever way it arrived; the later load wins; each v2 tweet with its author.
    assert set(silver) == served(sample, day) | {"1"}
    assert silver[shared_id] == ("edited later", "v1_author")
    assert all(
        silver[i] == (by_id[i]["text"], sample[1][by_id[i]["author_id"]]["username"])
        for i in served(sample, day) - {shared_id}
    )
    assert token_leaks(instance) == []


def _status(tweet_id: str, text: str) -> dict:
    return {
        "id_str": tweet_id,
        "created_at": "Sun Nov 01 12:00:00 +0000 2026",
        "full_text": text,
        "user": {"id_str": "42", "screen_name": "v1_author", "name": "V One"},
    }


def test_rate_limits_server_errors_timeouts_and_a_cut_short_page_are_survived_and_every_tweet_is_accounted_for(
    warehouse, transform, tmp_path, api, sample
):
    day = "2026-11-02"
    server = api(
        Fault(status=429, reset_in_s=2),
        Fault(status=500),
        Fault(status=500),
        Fault(delay_s=3),  # the client gives up after 1 s
        Fault(malformed=True),
    )
    found = resources(warehouse, tmp_path / "landing", transform, timeout_s=1.0)
    instance = dg.DagsterInstance.ephemeral()

    result = extract(day, found, instance)
    load(day, found, transform)

    statuses = [r.status for r in server.requests]
    assert statuses[:6] == [429, 500, 500, 200, 200, 200] and set(statuses[6:]) == {200}
    # The retry after the 429 came once its reset had passed (x-rate-limit-reset is whole seconds).
    assert server.requests[1].at >= int(server.requests[0].at) + 2
    waits = [w for w in warnings(instance) if "next attempt in" in w]
    reasons = [re.search(r": (.*?) \(attempt", w).group(1) for w in waits]
    assert reasons[:4] == ["rate limited", "server error 500", "server error 500", "timed out (ReadTimeout)"]
    assert len(reasons) == 5 and reasons[4].startswith("a page that is not JSON")
    assert checks(result) == {PAGES_LANDED: True, RESULT_COUNTS_MATCH: True, TWEETS_RETURNED: True}
    with warehouse.connect() as conn:
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT tweet_id FROM bronze.x_recent_search WHERE partition_date = %s", (day,)
            )
        ]
        set_aside = conn.execute(
            "SELECT source_file, reason FROM bronze.quarantine WHERE source = %s AND partition_key = %s",
            (SOURCE.name, day),
        ).fetchall()
        silver = {
            r[0] for r in conn.execute("SELECT tweet_id FROM silver.tweets WHERE tweet_date = %s", (day,))
        }
    # The page cut short landed as returned and was set aside whole, naming its file; its tweets came again.
    assert len(set_aside) == 1 and set_aside[0][1] == "unrepairable_json"
    assert set_aside[0][0].endswith("-0001.json")
    assert sorted(ids) == sorted(served(sample, day)) and set(ids) == silver
    assert token_leaks(instance) == []


def test_a_rate_limit_wait_is_bounded_and_a_page_that_keeps_failing_fails_the_run_naming_it(
    warehouse, tmp_path, api
):
    day = "2026-11-03"
    server = api(Fault(status=429, reset_in_s=3600), Fault(status=503), Fault(status=503))
    found = resources(warehouse, tmp_path / "landing", max_attempts=3, max_rate_limit_wait_s=1.0)
    instance = dg.DagsterInstance.ephemeral()

    result = extract(day, found, instance, raise_on_error=False)

    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.cause.message
    # An hour's reset was waited for one second, then tried again; three attempts in all, then the run failed.
    assert [r.status for r in server.requests] == [429, 503, 503]
    assert "next attempt in 1.0 s" in next(w for w in warnings(instance) if "rate limited" in w)
    assert "/2/tweets/search/recent?query=brand+mentions&start_time=2026-11-03T00%3A00%3A00Z" in message
    assert "status 503" in message and "after 3 attempts" in message
    assert cursor(warehouse, day) is None
    assert token_leaks(instance) == [] and TOKEN not in message


KILLED_EXTRACTION = """
import sys
import dagster as dg
from assets.landing.x_recent_search import x_recent_search
from resources import LandingZoneResource, PostgresResource, RecentSearchResource

dg.materialize(
    [x_recent_search],
    partition_key=sys.argv[1],
    resources={
        "postgres": PostgresResource(url=sys.argv[2]),
        "landing": LandingZoneResource(root=sys.argv[3]),
        "tweets_api": RecentSearchResource(max_results=int(sys.argv[4])),
    },
)
"""


def test_a_search_killed_between_pages_is_searched_again_and_nothing_arrives_twice(
    warehouse, transform, tmp_path, api, sample
):
    day = "2026-11-04"
    landed = 3
    server = api(*[Fault()] * landed, Fault(delay_s=120))
    root = tmp_path / "landing"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_EXTRACTION, day, warehouse.url, str(root), str(PAGE_SIZE)],
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Killed while the server holds its fourth answer: three pages have landed, the search is mid-way.
    deadline = time.monotonic() + 120
    while len(server.requests) <= landed and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stderr.close()
    after_kill = sorted(p.name for p in (root / f"x/recent_search/date={day}").glob("*.json"))
    assert len(after_kill) == landed and cursor(warehouse, day) is None

    found = resources(warehouse, root, transform)
    assert extract(day, found, dg.DagsterInstance.ephemeral()).success
    load(day, found, transform)

    with warehouse.connect() as conn:
        statuses = dict(
            conn.execute(
                "SELECT status, count(*) FROM ledger.loads WHERE source = %s AND partition_key = %s GROUP BY 1",
                (SOURCE.name, day),
            ).fetchall()
        )
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT tweet_id FROM bronze.x_recent_search WHERE partition_date = %s", (day,)
            )
        ]
        silver = [
            r[0] for r in conn.execute("SELECT tweet_id FROM silver.tweets WHERE tweet_date = %s", (day,))
        ]
    # The search started over from the old cursor: its first pages repeat the killed run's bytes (duplicates,
    # not loaded), and bronze and silver hold the served day exactly, each tweet once.
    assert statuses == {"archived": TWEETS_PER_DAY // PAGE_SIZE, "duplicate": landed}
    assert sorted(ids) == sorted(silver) == sorted(served(sample, day))
    assert cursor(warehouse, day).since_id == max(served(sample, day), key=int)


@pytest.mark.parametrize(
    ("url", "at", "days"),
    [
        (None, "2026-11-20T10:15:00Z", None),
        ("http://127.0.0.1:9", "2026-11-20T10:15:00Z", ["2026-11-20"]),
        ("http://127.0.0.1:9", "2026-11-20T00:30:00Z", ["2026-11-20", "2026-11-19"]),
    ],
)
def test_the_schedule_searches_today_and_yesterday_after_midnight_and_skips_without_an_endpoint(
    monkeypatch, url, at, days
):
    if url:
        monkeypatch.setenv("STRATA_TWEETS_API_URL", url)
    else:
        monkeypatch.delenv("STRATA_TWEETS_API_URL", raising=False)
    from strata.definitions import defs

    context = dg.build_schedule_context(
        scheduled_execution_time=datetime.fromisoformat(at), repository_def=defs.get_repository_def()
    )

    answer = x_recent_search_schedule.evaluate_tick(context)

    if days is None:
        assert answer.run_requests == [] and "STRATA_TWEETS_API_URL is not set" in answer.skip_message
    else:
        assert [r.partition_key for r in answer.run_requests] == days


def test_the_demo_searches_the_last_days_only_when_an_endpoint_is_set(monkeypatch, capsys):
    from strata.demo import extraction_runs

    settings = Settings.from_env({"STRATA_TWEETS_API_DAYS": "3"})
    monkeypatch.delenv("STRATA_TWEETS_API_URL", raising=False)
    without = extraction_runs(settings, date(2026, 11, 20))
    monkeypatch.setenv("STRATA_TWEETS_API_URL", "http://127.0.0.1:9")
    with_endpoint = extraction_runs(settings, date(2026, 11, 20))
    # Never before the first partition.
    at_the_start = extraction_runs(settings, date(2026, 11, 2))

    assert without == [] and "STRATA_TWEETS_API_URL is not set" in capsys.readouterr().out
    assert [run.label for run in with_endpoint] == [
        f"landing/x_recent_search [{day}]" for day in ("2026-11-18", "2026-11-19", "2026-11-20")
    ]
    assert [run.partition_range for run in at_the_start] == [("2026-11-01",) * 2, ("2026-11-02",) * 2]
