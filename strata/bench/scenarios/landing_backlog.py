"""The landing sensor under a backlog: ten thousand small files land at once and the sensor registers them over
its ticks. Each tick must stay well inside Dagster's sensor evaluation timeout, however big the backlog."""

from __future__ import annotations

import shutil
import time

from strata.bench.core import BenchContext, ScenarioResult

FILES = 10_000
MAX_TICK_SECONDS = 30.0
MAX_TICKS = 60
RECORD = b'[{"user_id": "u%d", "name": "Ann", "email": "ann@example.com", "programs": []}]'


def landing_backlog(ctx: BenchContext) -> ScenarioResult:
    import dagster as dg

    from assets.bronze.sensor import landing_sensor
    from resources import LandingZoneResource, PostgresResource
    from strata.definitions import defs

    files = FILES // 10 if ctx.quick else FILES
    result = ScenarioResult(
        "landing_backlog",
        f"landing sensor ticks registering {files:,} files landed at once (ambassadors batches)",
        columns=[("ticks", "ticks", "d"), ("max tick s", "max_tick_s", ".2f"), ("total s", "total_s", ".1f")],
    )
    root = ctx.work_dir / "landing_backlog"
    shutil.rmtree(root, ignore_errors=True)
    folder = root / "ambassadors"
    folder.mkdir(parents=True)
    for i in range(files):
        (folder / f"batch-{i:05d}.json").write_bytes(RECORD % i)

    postgres = PostgresResource(url=ctx.url)
    with postgres.connect(autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS ledger CASCADE")
    resources = {"postgres": postgres, "landing": LandingZoneResource(root=str(root))}
    instance = dg.DagsterInstance.ephemeral()
    cursor, durations, registered = None, [], 0
    while registered < files and len(durations) < MAX_TICKS:
        started = time.perf_counter()
        evaluation = landing_sensor(
            dg.build_sensor_context(cursor=cursor, resources=resources, definitions=defs, instance=instance)
        )
        durations.append(time.perf_counter() - started)
        cursor = evaluation.cursor
        with postgres.connect() as conn:
            (registered,) = conn.execute("SELECT count(*) FROM ledger.loads").fetchone()
    shutil.rmtree(root, ignore_errors=True)

    result.figures["strata landing_sensor"] = {
        "ticks": len(durations),
        "max_tick_s": max(durations),
        "total_s": sum(durations),
    }
    result.target("every file registered", registered, ">=", files)
    result.target("slowest tick", max(durations), "<=", MAX_TICK_SECONDS, " s")
    return result
