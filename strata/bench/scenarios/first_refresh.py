"""First refresh (`first_refresh`): a fresh `strata up` lands the sample drop; the seconds from the Dagster UI
answering until every asset of the sample drop is materialized and the platform has settled (no run in
progress, and every sensor that requests refreshes has ticked without asking for anything since the last run
ended), and the runs it took.

Every figure is read from the running platform through the UI's GraphQL API (strata.dagster_api).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from strata.bench.core import REPO_ROOT, BenchContext, ScenarioResult, isolated_env

MAX_SECONDS = 120.0
MAX_RUNS = 12
DEADLINE_S = 1200.0
STRATA = str(Path(sys.executable).with_name("strata"))
# What the sample drop feeds: every layer's assets (the data-quality history and dashboard are not its data).
LAYERS = ("bronze", "silver", "gold", "vector")


def first_refresh(ctx: BenchContext) -> ScenarioResult:
    from strata.dagster_api import Dagster, built_from_landed_data, cron_repeats

    result = ScenarioResult(
        "first_refresh",
        "fresh `strata up` with the sample drop: UI answering → every asset of the drop materialized, settled",
        columns=[
            ("settled s", "settled_s", ".1f"),
            ("runs", "runs", "d"),
            ("cron-tick runs", "cron_ticks", "d"),
            ("failed runs", "failed", "d"),
        ],
    )
    home = ctx.work_dir / "first_refresh"
    shutil.rmtree(home, ignore_errors=True)
    env = isolated_env(home)
    dagster = Dagster(f"http://127.0.0.1:{env['STRATA_DAGSTER_PORT']}")
    ctx.log(f"first_refresh: strata up (STRATA_HOME={home})")
    try:
        up = subprocess.run(
            [STRATA, "up"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        if up.returncode != 0:
            raise RuntimeError(f"strata up failed:\n{(up.stdout + up.stderr)[-2000:]}")
        # `strata up` returns once the UI answers: the clock starts now.
        started = time.monotonic()
        wanted = [key for key in built_from_landed_data(dagster.asset_keys()) if key.split("/")[0] in LAYERS]
        try:
            dagster.settle(wanted, timeout=DEADLINE_S)
            settled = time.monotonic() - started
        except AssertionError as exc:
            settled = None
            result.notes.append(str(exc))
        runs = dagster.runs()
        failed = [run["runId"] for run in runs if run["status"] == "FAILURE"]
        # The cron ticks that fall while it settles rebuild the scheduled extractions: not the drop's work.
        repeats = [run["runId"] for run in cron_repeats(runs)]
        runs = [run for run in runs if run["runId"] not in repeats]
        result.figures["sample drop"] = {
            "settled_s": settled,
            "runs": len(runs),
            "cron_ticks": len(repeats),
            "failed": len(failed),
        }
        result.target(
            "UI answering → every asset of the sample drop materialized", settled, "<=", MAX_SECONDS, " s"
        )
        result.target("runs launched for the sample drop", float(len(runs)), "<=", MAX_RUNS)
        if failed:
            result.notes.append(f"failed runs: {', '.join(failed)}")
        result.notes.append(
            "runs: "
            + "; ".join(
                ", ".join("/".join(k["path"]) for k in run["assetSelection"] or []) or "(all)"
                for run in reversed(runs)
            )
        )
    finally:
        subprocess.run([STRATA, "down"], cwd=REPO_ROOT, env=env, capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)
    return result
