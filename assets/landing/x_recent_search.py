"""landing/x_recent_search: tweets pulled from the X API v2 recent search a day at a time, each page landed as
returned under `x/recent_search/date=<day>/`, where bronze/x_recent_search loads it like any landed file
(ledger, quarantine, duplicate screen, checks).

A day's cursor in ledger.watermarks (the window's end covered, the newest tweet id landed) moves only once
every page of the search has landed durably. The API pages newest first, so a search cut short — a crash, a
kill, a page that keeps failing — has landed the newest tweets and not yet the older ones; the next search asks
again from the old cursor. What it lands twice repeats bytes the ledger already holds (a `duplicate` file) or
tweets the partition's duplicate screen has seen: nothing is loaded twice.
"""

import hashlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import dagster as dg
import orjson

from assets.bronze import ledger
from assets.bronze.sources import SOURCES_BY_NAME
from assets.conventions import OWNER
from assets.partitions import DAILY, START, Key
from resources import LandingZoneResource, PostgresResource
from resources.x_api import Page, RecentSearchResource
from strata.config import Settings

SOURCE = SOURCES_BY_NAME["x_recent_search"]
KEY = dg.AssetKey(["landing", "x_recent_search"])
FOLDER = "x/recent_search"
# The API answers only for times at least this far in the past.
END_TIME_LAG = timedelta(seconds=10)
# How many earlier extractions say whether a query "usually returns" tweets.
HISTORY = 8
# The schedule also searches yesterday for this long after midnight, so its last minutes are not left out.
YESTERDAY_GRACE = timedelta(hours=1)

PAGES_LANDED = "pages_landed"
RESULT_COUNTS_MATCH = "result_counts_match"
TWEETS_RETURNED = "tweets_returned"


@dataclass
class LandedPage:
    path: str
    sha256: str
    result_count: int | None = None  # meta.result_count; None while the page is unreadable


@dataclass
class Extraction:
    """What searching one day did."""

    day: str
    window: tuple[datetime, datetime]
    since_id: str | None
    pages: list[LandedPage] = field(default_factory=list)
    newest_id: str | None = None
    attempts: int = 0

    @property
    def readable(self) -> list[LandedPage]:
        return [page for page in self.pages if page.result_count is not None]

    @property
    def tweets(self) -> int:
        return sum(page.result_count for page in self.readable)


def window(day: str, now: datetime) -> tuple[datetime, datetime]:
    """The search window of a day's partition: its midnight to the next, or to just before now."""
    start = datetime.combine(Key.parse(day).date, datetime.min.time(), UTC)
    return start, min(start + timedelta(days=1), now - END_TIME_LAG)


def extract_day(
    fetch: Callable[[dict[str, str], Callable[[bytes], None]], Page],
    landing: LandingZoneResource,
    *,
    day: str,
    query: str,
    max_results: int,
    since_id: str | None,
    name: str,
    now: datetime,
) -> Extraction:
    """Search one day page by page to the end of `next_token`, landing every answer as `<name>-<n>.json`."""
    start, end = window(day, now)
    extraction = Extraction(day, (start, end), since_id)
    if end <= start:
        return extraction  # the day has not begun
    params = {
        "query": query,
        "start_time": _iso(start),
        "end_time": _iso(end),
        "max_results": str(max_results),
    }
    if since_id:
        params["since_id"] = since_id

    def land(body: bytes) -> None:
        path = f"{FOLDER}/date={day}/{name}-{len(extraction.pages) + 1:04d}.json"
        landing.write(path, body)
        extraction.pages.append(LandedPage(path, hashlib.sha256(body).hexdigest()))

    while True:
        page = fetch(params, land)
        extraction.attempts += page.attempts
        meta = page.document.get("meta") or {}
        extraction.pages[-1].result_count = int(meta.get("result_count") or 0)
        newest = meta.get("newest_id")
        if newest and (extraction.newest_id is None or int(newest) > int(extraction.newest_id)):
            extraction.newest_id = str(newest)
        if not meta.get("next_token"):
            return extraction
        params["next_token"] = str(meta["next_token"])


def _iso(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dg.asset(
    key=KEY,
    group_name=SOURCE.domain,
    kinds={"http"},
    owners=[OWNER],
    description="Tweets searched in the X API v2 recent search (STRATA_TWEETS_API_URL, bearer token from "
    "STRATA_TWEETS_API_TOKEN), a day per partition, every page landed as returned under "
    f"`{FOLDER}/date=<day>/` for bronze/{SOURCE.name}. A day's cursor (newest id landed, window covered) moves "
    "in ledger.watermarks once all its pages have landed.",
    partitions_def=DAILY,
    # A backfill searches each day in its own run: a day's cursor, pages and checks stand alone.
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=1),
    check_specs=[
        dg.AssetCheckSpec(
            PAGES_LANDED, asset=KEY, description="Every page fetched is a file in the landing zone."
        ),
        dg.AssetCheckSpec(
            RESULT_COUNTS_MATCH,
            asset=KEY,
            description="The pages' meta.result_count add up to the tweets their landed files hold.",
        ),
        dg.AssetCheckSpec(
            TWEETS_RETURNED,
            asset=KEY,
            description=f"WARN when a search returns no tweet while the last {HISTORY} usually returned some.",
        ),
    ],
    metadata={"landing_folder": FOLDER, "bronze_asset": SOURCE.asset_key.to_user_string()},
)
def x_recent_search(
    context: dg.AssetExecutionContext,
    postgres: PostgresResource,
    landing: LandingZoneResource,
    tweets_api: RecentSearchResource,
) -> dg.MaterializeResult:
    day = context.partition_key
    started, clock = datetime.now(UTC), time.perf_counter()
    with postgres.connect(autocommit=True) as conn:
        ledger.ensure_schema(conn)
        cursor = ledger.partition_cursor(conn, SOURCE.name, day)
        with tweets_api.searching(context.log) as fetch:
            extraction = extract_day(
                fetch,
                landing,
                day=day,
                query=tweets_api.query,
                max_results=tweets_api.max_results,
                since_id=cursor.since_id if cursor else None,
                name=f"{started:%Y%m%dT%H%M%S%fZ}-{context.run_id[:8]}",
                now=started,
            )
        if extraction.pages:  # a day not begun yet was not searched
            ledger.advance_cursor(
                conn,
                SOURCE.name,
                day,
                ledger.Cursor(extraction.window[1], extraction.newest_id or extraction.since_id),
                context.run_id,
            )
    elapsed = time.perf_counter() - clock
    context.log.info(
        f"{day}: {extraction.tweets} tweets in {len(extraction.pages)} pages "
        f"({extraction.attempts - len(extraction.readable)} attempts retried), {elapsed:.1f} s"
    )
    metadata = {
        "window_start": extraction.window[0].isoformat(),
        "window_end": extraction.window[1].isoformat(),
        "since_id_before": extraction.since_id or "",
        "since_id_after": extraction.newest_id or extraction.since_id or "",
        "pages": len(extraction.readable),
        "pages_unreadable": len(extraction.pages) - len(extraction.readable),
        "tweets": extraction.tweets,
        "attempts": extraction.attempts,
        "elapsed_s": round(elapsed, 3),
        "tweets_per_s": round(extraction.tweets / elapsed, 1) if elapsed else 0.0,
    }
    return dg.MaterializeResult(
        metadata=metadata,
        check_results=[
            _pages_landed(landing, extraction),
            _result_counts_match(landing, extraction),
            _tweets_returned(context.instance, extraction),
        ],
    )


def _pages_landed(landing: LandingZoneResource, extraction: Extraction) -> dg.AssetCheckResult:
    missing = [
        page.path
        for page in extraction.pages
        if not (path := landing.resolve(page.path)).is_file()
        or hashlib.sha256(path.read_bytes()).hexdigest() != page.sha256
    ]
    return dg.AssetCheckResult(
        check_name=PAGES_LANDED,
        passed=not missing,
        metadata={
            "pages_fetched": len(extraction.pages),
            "pages_landed": len(extraction.pages) - len(missing),
            "missing": dg.MetadataValue.json(missing[:20]),
        },
    )


def _result_counts_match(landing: LandingZoneResource, extraction: Extraction) -> dg.AssetCheckResult:
    landed = sum(
        len(orjson.loads(landing.resolve(page.path).read_bytes()).get(SOURCE.record_path) or [])
        for page in extraction.readable
    )
    return dg.AssetCheckResult(
        check_name=RESULT_COUNTS_MATCH,
        passed=landed == extraction.tweets,
        metadata={"result_count_sum": extraction.tweets, "tweets_landed": landed},
    )


def _tweets_returned(instance: dg.DagsterInstance, extraction: Extraction) -> dg.AssetCheckResult:
    earlier = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=KEY), limit=HISTORY).records
    counts = [
        int(value.value)
        for record in earlier
        if (value := record.asset_materialization.metadata.get("tweets")) is not None
    ]
    usual = statistics.median(counts) if counts else 0
    return dg.AssetCheckResult(
        check_name=TWEETS_RETURNED,
        passed=extraction.tweets > 0 or usual == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"tweets": extraction.tweets, "usual_tweets": usual, "extractions_compared": len(counts)},
    )


x_recent_search_job = dg.define_asset_job(
    "x_recent_search", selection=dg.AssetSelection.assets(KEY), partitions_def=DAILY
)


@dg.schedule(
    job=x_recent_search_job,
    cron_schedule=Settings.from_env().tweets_api_cron,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Search today's tweets (and yesterday's, for an hour after midnight) when STRATA_TWEETS_API_URL "
    "is set.",
)
def x_recent_search_schedule(context: dg.ScheduleEvaluationContext):
    api = RecentSearchResource()
    if not api.base_url:
        return dg.SkipReason(f"{api.url_env} is not set: no recent-search endpoint to call")
    now = context.scheduled_execution_time.astimezone(UTC)
    midnight = datetime.combine(now.date(), datetime.min.time(), UTC)
    days = [now.date(), *([now.date() - timedelta(days=1)] if now - midnight < YESTERDAY_GRACE else [])]
    return [
        dg.RunRequest(run_key=f"{day.isoformat()}@{now.isoformat()}", partition_key=day.isoformat())
        for day in days
        if day >= START
    ]
