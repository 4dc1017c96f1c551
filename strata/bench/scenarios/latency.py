"""Landing-to-serving latency (`latency`) under `make up` defaults: `strata up --no-sample` as a subprocess with
its own STRATA_HOME on free ports; the landing sensor, reconciliation and the automation sensor do everything.

1. Generate one day of every file-based source dated today (UTC), as fresh data arrives. Land all of it except
   the social posts of the trial networks (a small history) and wait until the platform settles (no run in
   progress, every requesting sensor quiet since: strata.dagster_api).
2. Each trial copies ONE (network, today) folder of social posts into the landing zone (a trickle: the landing
   sensor requests the partition's whole chain in one run), notes the time, and polls GraphQL until
   `bronze/social_posts`, `silver/posts`, every gold asset downstream of the posts and `vector/content_index`
   show a materialization newer than the landing. The clock stops only once the trial's rows are verified:
   `gold.account_daily_engagement` holds the network's day, and the index holds a point for every post
   document of that network and day. Seconds from landing to each.
3. `strata down`, always.

The target is on landing → gold + index (the later of the two), the median of the trials. A trial that misses
its deadline or whose rows are not there counts as missed.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from strata.bench.core import REPO_ROOT, BenchContext, ScenarioResult, isolated_env
from strata.bench.data import FAULTS
from strata.generate import SOURCES as GENERATED_SOURCES

TRIALS = 5
QUICK_TRIALS = 1
DEADLINE_S = 180.0
SETTLE_DEADLINE_S = 600.0
MAX_SECONDS = 30.0
NETWORKS = ("youtube", "instagram", "tiktok", "facebook", "x")
# Every source that lands as files: the index waits for all of silver.content_documents' inputs (the image labels
# among them), so a history without one of them never reaches the index. Campaigns come from Mongo, not files.
SOURCES = tuple(source for source in GENERATED_SOURCES if source != "mongo_campaigns")
BRONZE = "bronze/social_posts"
SILVER = "silver/posts"
INDEX = "vector/content_index"
STRATA = str(Path(sys.executable).with_name("strata"))
ASSETS_QUERY = """{ assetNodes { assetKey { path } dependedByKeys { path }
  assetMaterializations(limit: 1) { timestamp } } }"""


def _latest(dagster) -> tuple[dict[str, float | None], dict[str, list[str]]]:
    """Latest materialization time (epoch s) and downstream keys of every asset."""
    latest, downstream = {}, {}
    for node in dagster.query(ASSETS_QUERY)["assetNodes"]:
        key = "/".join(node["assetKey"]["path"])
        events = node["assetMaterializations"]
        latest[key] = float(events[0]["timestamp"]) / 1000 if events else None
        downstream[key] = ["/".join(k["path"]) for k in node["dependedByKeys"]]
    return latest, downstream


def _gold_downstream(downstream: dict[str, list[str]]) -> list[str]:
    seen, todo = set(), [BRONZE]
    while todo:
        for key in downstream.get(todo.pop(), []):
            if key not in seen:
                seen.add(key)
                todo.append(key)
    return sorted(key for key in seen if key.startswith("gold/"))


def _copy_tree(source: Path, target: Path) -> None:
    """Land a folder as a sender would: each file under a hidden name, renamed when complete."""
    for path in sorted(source.rglob("*")):
        if path.is_file():
            out = target / path.relative_to(source)
            out.parent.mkdir(parents=True, exist_ok=True)
            staging = out.with_name(f".{out.name}.part")
            shutil.copyfile(path, staging)
            staging.replace(out)


def _verified(env: dict[str, str], home: Path, network: str, day: str) -> str | None:
    """Why the trial's rows are not (yet) in gold and the index, or None when they are."""
    import psycopg

    from resources import QdrantResource
    from resources.qdrant import QdrantUnavailableError

    url = f"postgresql://postgres@127.0.0.1:{env['STRATA_POSTGRES_PORT']}/strata"
    with psycopg.connect(url) as conn:
        gold = conn.execute(
            "SELECT count(*) FROM gold.account_daily_engagement WHERE network = %s AND post_date = %s",
            (network, day),
        ).fetchone()[0]
        documents = conn.execute(
            "SELECT count(*) FROM silver.content_documents WHERE source_type = 'post' AND network = %s"
            " AND created_date = %s",
            (network, day),
        ).fetchone()[0]
    if not gold:
        return "no gold rows yet"
    try:
        with QdrantResource(url=(home / "qdrant").as_uri()).reader("content_index") as store:
            points = sum(
                (payload.get("network"), payload.get("source_type"), payload.get("created_date"))
                == (network, "post", day)
                for payload in store.payloads().values()
            )
    except QdrantUnavailableError:
        return "no index published yet"
    return None if documents and points == documents else f"{points} points for {documents} documents"


def latency(ctx: BenchContext) -> ScenarioResult:
    from strata.dagster_api import Dagster
    from strata.generate import generate

    trials = QUICK_TRIALS if ctx.quick else TRIALS
    result = ScenarioResult(
        "latency",
        "file landing → bronze partition, → gold and vector index (rows verified), under `strata up` defaults "
        f"({trials} trial{'s' if trials > 1 else ''})",
        columns=[
            ("landed", "landed", ""),
            ("→ bronze s", "bronze_s", ".1f"),
            ("→ silver/posts s", "silver_s", ".1f"),
            ("→ gold s", "gold_s", ".1f"),
            ("→ index s", "index_s", ".1f"),
            ("→ gold + index s", "gold_and_index_s", ".1f"),
        ],
    )
    root = ctx.work_dir / "latency"
    shutil.rmtree(root, ignore_errors=True)
    home, staging = root / "home", root / "staging"
    today = datetime.now(UTC).date()
    day = today.isoformat()
    networks = NETWORKS[:trials]
    ctx.log(f"latency: generating {day} at scale 1")
    generate(staging, scale=1, days=1, start=today, faults=FAULTS, sources=SOURCES)
    held_back = [str(Path("social", "posts", f"network={n}")) for n in networks]

    # Today's data: the partitions must reach today.
    env = isolated_env(home) | {"STRATA_PARTITIONS_START": day}
    dagster = Dagster(f"http://127.0.0.1:{env['STRATA_DAGSTER_PORT']}")
    landing = home / "landing"
    ctx.log(f"latency: strata up --no-sample (STRATA_HOME={home}, {dagster.url})")
    try:
        up = subprocess.run(
            [STRATA, "up", "--no-sample"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
        )
        if up.returncode != 0:
            raise RuntimeError(f"strata up failed:\n{(up.stdout + up.stderr)[-2000:]}")

        # A small history: today's files of every staged source but the trial networks' posts.
        for path in sorted(staging.rglob("*")):
            relative = path.relative_to(staging)
            if (
                path.is_file()
                and path.name != "manifest.json"
                and not any(str(relative).startswith(h) for h in held_back)
            ):
                out = landing / relative
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, out)
        settled = dagster.settle([INDEX], timeout=SETTLE_DEADLINE_S)
        result.figures["history (today, all sources)"] = {
            "landed": f"{day}, {len(SOURCES)} sources",
            "gold_and_index_s": settled,
        }
        _, downstream = _latest(dagster)
        gold = _gold_downstream(downstream)
        for trial, network in enumerate(networks, start=1):
            folder = Path("social", "posts", f"network={network}", f"date={day}")
            figure = _trial(ctx, dagster, env, home, staging / folder, landing / folder, gold, network, day)
            figure["landed"] = f"posts {network} {day}"
            result.figures[f"trial {trial}"] = figure
            if figure.get("missed"):
                result.notes.append(f"trial {trial}: {figure.pop('missed')}")
            dagster.settle([INDEX], timeout=SETTLE_DEADLINE_S)
    finally:
        down = subprocess.run(
            [STRATA, "down"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        if "postgres stopped" not in down.stdout:
            result.notes.append(f"strata down: {(down.stdout + down.stderr)[-500:]}")
    shutil.rmtree(root, ignore_errors=True)

    def median(key: str) -> float | None:
        values = [f.get(key) for name, f in result.figures.items() if name.startswith("trial")]
        return statistics.median(values) if values and None not in values else None

    def spread(key: str) -> str:
        values = [f.get(key) for name, f in result.figures.items() if name.startswith("trial")]
        return f"{min(values):.1f}–{max(values):.1f}" if values and None not in values else "n/a"

    result.figures["median"] = {
        key: median(key) for key in ("bronze_s", "silver_s", "gold_s", "index_s", "gold_and_index_s")
    }
    result.target("landing → bronze/social_posts (median)", median("bronze_s"), "<=", MAX_SECONDS, " s")
    result.target(
        "landing → gold + vector/content_index, verified (median)",
        median("gold_and_index_s"),
        "<=",
        MAX_SECONDS,
        " s",
    )
    result.notes.append(f"landing → gold + index over the trials: {spread('gold_and_index_s')} s")
    result.notes.append(
        f"gold = {', '.join(gold) or 'none found'} (every gold asset downstream of bronze/social_posts); times are "
        "GraphQL materialization timestamps minus the landing time, the clock stopping once the trial's rows are "
        f"verified in gold and in Qdrant; a trial past {DEADLINE_S:.0f} s counts as missed"
    )
    return result


def _trial(
    ctx: BenchContext,
    dagster,
    env: dict[str, str],
    home: Path,
    source: Path,
    target: Path,
    gold: list[str],
    network: str,
    day: str,
) -> dict:
    watched = [BRONZE, SILVER, *gold, INDEX]
    landed_at = time.time()
    _copy_tree(source, target)
    ctx.log(f"latency: landed {target}")
    seen: dict[str, float] = {}
    why = "not checked"
    while time.time() - landed_at < DEADLINE_S:
        latest, _ = _latest(dagster)
        for key in watched:
            if key not in seen and (latest.get(key) or 0) > landed_at:
                seen[key] = latest[key] - landed_at
        if len(seen) == len(watched):
            why = _verified(env, home, network, day)
            if why is None:
                break
        time.sleep(0.5)
    figure = {
        "bronze_s": seen.get(BRONZE),
        "silver_s": seen.get(SILVER),
        "gold_s": max(seen[k] for k in gold) if gold and all(k in seen for k in gold) else None,
        "index_s": seen.get(INDEX),
    }
    if why is None and figure["gold_s"] is not None and figure["index_s"] is not None:
        figure["gold_and_index_s"] = max(figure["gold_s"], figure["index_s"])
    else:
        missing = [k for k in watched if k not in seen]
        figure["missed"] = (
            f"within {DEADLINE_S:.0f} s: not updated {', '.join(missing) or 'none'}; rows: {why}; updated: "
            + ", ".join(f"{k} {s:.0f} s" for k, s in seen.items())
        )
    return figure
