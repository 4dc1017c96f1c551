"""HTTP API extraction (`api_extraction`): a day of tweets pulled from the local X API v2 recent search
(strata.generate.recent_search, served by a process of its own) into Postgres.

- Strata, as the product runs it: a materialization of `landing/x_recent_search` (pages followed to the end of
  next_token, each landed durably, the cursor committed, the checks) and then of `bronze/x_recent_search` (ledger,
  COPY, duplicate screen, checks). Timed separately and together.
- dlt 1.31's `rest_api` source reading the same endpoint, window, query and page size into its postgres
  destination, with its default loader (INSERT VALUES) and with CSV files loaded by COPY: the better of the two is
  the anchor.

Every side starts from nothing (a fresh landing folder, no ledger, no dlt state) in each of the alternating
trials; medians and spread. The target: Strata's extraction and bronze load together at least as fast as dlt
at its best.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from psycopg import sql

from strata.bench import anchors_env
from strata.bench.core import PYTHON, REPO_ROOT, BenchContext, ScenarioResult

DAY = date(2026, 11, 1)
SCALE, QUICK_SCALE = 67, 7  # 300 tweets a day at scale 1: 20,100 tweets, 201 pages
PAGE_SIZE = 100  # the API's largest page
TRIALS, QUICK_TRIALS = 3, 1
TOKEN = "bench-token"
MIN_RATIO = 1.0
DLT_MODES = {"dlt_rest_api_default": "insert_values", "dlt_rest_api_csv": "csv"}

SERVE = """
import sys, time
from datetime import date
from pathlib import Path
from strata.generate import FaultRates
from strata.generate.core import Run
from strata.generate.recent_search import RecentSearchServer, recent_tweets

run = Run(Path(sys.argv[1]), 1, int(sys.argv[2]), 1, date.fromisoformat(sys.argv[3]), FaultRates())
tweets, users = recent_tweets(run)
with RecentSearchServer(tweets, users, token=sys.argv[4]).running() as base:
    print(base, len(tweets), flush=True)
    while True:
        time.sleep(3600)
"""


@contextmanager
def _api(ctx: BenchContext, scale: int):
    """The local API in its own process (the extractions never share its interpreter); yields (URL, tweets)."""
    process = subprocess.Popen(
        [PYTHON, "-c", SERVE, str(ctx.work_dir), str(scale), DAY.isoformat(), TOKEN],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base, tweets = process.stdout.readline().split()
        yield base, int(tweets)
    finally:
        process.kill()
        process.wait()


def api_extraction(ctx: BenchContext) -> ScenarioResult:
    trials = QUICK_TRIALS if ctx.quick else TRIALS
    result = ScenarioResult(
        "api_extraction",
        f"a day of tweets from the local X API v2 recent search into Postgres, pages of {PAGE_SIZE} "
        f"(median of {trials} alternating trials)",
        columns=[
            ("tweets", "tweets", ",d"),
            ("pages", "pages", ",d"),
            ("s", "seconds", ".2f"),
            ("tweets/s", "tweets_per_s", ",.0f"),
            ("pages/s", "pages_per_s", ",.1f"),
            ("spread s", "seconds_spread", ""),
        ],
    )
    exe = anchors_env.python(ctx.home, log=ctx.log) if ctx.anchors else None
    runs: dict[str, list[dict]] = {"strata_extract": [], "strata_extract_and_bronze": []}
    runs |= {key: [] for key in DLT_MODES} if exe else {}
    with _api(ctx, QUICK_SCALE if ctx.quick else SCALE) as (base, served):
        for trial in range(1, trials + 1):
            ctx.log(f"api_extraction: trial {trial}/{trials}: Strata on {served:,} tweets")
            extract, bronze = _strata(ctx, base, trial)
            runs["strata_extract"].append(extract)
            runs["strata_extract_and_bronze"].append(
                {**bronze, "seconds": extract["seconds"] + bronze["seconds"], "pages": extract["pages"]}
            )
            for key, file_format in DLT_MODES.items() if exe else ():
                ctx.log(f"api_extraction: trial {trial}/{trials}: {key}")
                runs[key].append(_dlt(ctx, exe, base, key, file_format))
        ctx.anchor_versions = anchors_env.versions(exe) if exe else {}

    pages = runs["strata_extract"][0]["pages"]
    for key, measured in runs.items():
        seconds = statistics.median(run["seconds"] for run in measured)
        rows = measured[-1]["rows"]
        result.figures[key] = {
            "tweets": rows,
            "pages": pages,
            "seconds": seconds,
            "tweets_per_s": rows / seconds,
            "pages_per_s": pages / seconds,
            "seconds_spread": f"{min(r['seconds'] for r in measured):.2f}–{max(r['seconds'] for r in measured):.2f}",
        }
        if rows != served:
            result.notes.append(f"{key} ended with {rows:,} tweets of the {served:,} served")
    dlt = [key for key in DLT_MODES if key in result.figures]
    best = max(dlt, key=lambda key: result.figures[key]["tweets_per_s"]) if dlt else None
    name = "strata extract + bronze / dlt rest_api (its better loader)"
    ratio = result.ratio(
        name,
        result.figures["strata_extract_and_bronze"]["tweets_per_s"],
        result.figures[best]["tweets_per_s"] if best else None,
    )
    result.target(name, ratio, ">=", MIN_RATIO, "×")
    result.notes.append(
        "Strata lands every page as returned (fsync'd), commits the day's cursor, runs its three checks, then loads "
        "bronze (each tweet with its author from includes.users embedded, ledger, duplicate screen, checks); dlt "
        "keeps the tweets under `data` only (authors dropped), flattened into `tweets` and child tables. Both "
        f"ask the same endpoint for the same window, query and {PAGE_SIZE}-tweet pages, over one connection."
    )
    return result


def _strata(ctx: BenchContext, base: str, trial: int) -> tuple[dict, dict]:
    import dagster as dg

    from assets.bronze.factory import bronze_assets
    from assets.landing.x_recent_search import SOURCE, x_recent_search
    from assets.transform.assets import scoped_environ
    from resources import LandingZoneResource, PostgresResource, RecentSearchResource

    root = ctx.work_dir / "api_extraction" / f"landing-{trial}"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    with ctx.connect() as conn:
        conn.execute("DROP SCHEMA IF EXISTS ledger CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS bronze CASCADE")
    resources = {
        "postgres": PostgresResource(url=ctx.url),
        "landing": LandingZoneResource(root=str(root)),
        "tweets_api": RecentSearchResource(max_results=PAGE_SIZE),
    }
    bronze = next(asset for asset in bronze_assets if asset.key == SOURCE.asset_key)
    api = resources["tweets_api"]
    with scoped_environ({api.url_env: base, api.token_env: TOKEN}):
        started = time.perf_counter()
        extracted = dg.materialize([x_recent_search], partition_key=DAY.isoformat(), resources=resources)
        extract_s = time.perf_counter() - started
        started = time.perf_counter()
        loaded = dg.materialize([bronze], partition_key=DAY.isoformat(), resources=resources)
        bronze_s = time.perf_counter() - started
    if not (extracted.success and loaded.success):
        raise RuntimeError("the Strata extraction or bronze load failed")
    metadata = extracted.get_asset_materialization_events()[0].materialization.metadata
    with ctx.connect() as conn:
        (rows,) = conn.execute("SELECT count(*) FROM bronze.x_recent_search").fetchone()
    extract = {"seconds": extract_s, "pages": metadata["pages"].value, "rows": metadata["tweets"].value}
    return extract, {"seconds": bronze_s, "rows": rows}


def _dlt(ctx: BenchContext, exe: Path, base: str, key: str, file_format: str) -> dict:
    pipelines = ctx.work_dir / "api_extraction" / "dlt"
    shutil.rmtree(pipelines, ignore_errors=True)
    # dlt insists on a password; the embedded server trusts local connections and ignores it.
    url = ctx.url.replace("postgres@", "postgres:unused@", 1)
    end = date.fromordinal(DAY.toordinal() + 1)
    args = [str(exe), str(anchors_env.SCRIPTS / "dlt_rest_api.py"), "--url", url, "--api", base]
    args += ["--token", TOKEN, "--start", f"{DAY}T00:00:00Z", "--end", f"{end}T00:00:00Z"]
    args += ["--page-size", str(PAGE_SIZE), "--loader-file-format", file_format]
    args += ["--dataset", key, "--pipelines-dir", str(pipelines)]
    try:
        figures = ctx.run_json(args, cwd=ctx.work_dir)
    finally:
        with ctx.connect() as conn:
            for schema in (key, f"{key}_staging"):
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return {"seconds": figures["seconds"], "rows": figures["rows_in_table"]}
