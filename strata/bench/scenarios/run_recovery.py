"""Recovery from killed processes (`run_recovery`) under `strata up`, as a user's machine would see it:

1. `strata up` with one day of the sample drop, settled.
2. A posts file lands; once its chain run is inside its dbt step (holding pool `dbt_date_network`), its run
   worker is SIGKILLed. Seconds from the kill until the run is marked failed, which frees its pools.
3. Another file lands; once a run is in progress, every process of the platform is SIGKILLed — `dagster dev`
   with its daemon, code server and run workers, and Postgres — and `strata up` starts it again. Seconds from
   the UI answering again until the run the kill left `STARTED` is marked failed.

Both are read from the running platform through the UI's GraphQL API (strata.dagster_api).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from strata.bench.core import REPO_ROOT, BenchContext, ScenarioResult, isolated_env

MAX_SECONDS = 60.0
DEADLINE_S = 600.0
STRATA = str(Path(sys.executable).with_name("strata"))
IN_PROGRESS = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")
LAYERS = ("bronze", "silver", "gold", "vector")
PROCESS_STARTED = "Started process for run (pid: "


def run_recovery(ctx: BenchContext) -> ScenarioResult:
    from strata.dagster_api import Dagster, built_from_landed_data

    result = ScenarioResult(
        "run_recovery",
        "a killed run worker, then every process killed, under `strata up`: until the run is failed, pools free",
        columns=[("seconds", "seconds", ".1f")],
    )
    home = ctx.work_dir / "run_recovery"
    shutil.rmtree(home, ignore_errors=True)
    env = isolated_env(home)
    dagster = Dagster(f"http://127.0.0.1:{env['STRATA_DAGSTER_PORT']}")

    def up(*args: str) -> None:
        done = subprocess.run(
            [STRATA, "up", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            raise RuntimeError(f"strata up failed:\n{(done.stdout + done.stderr)[-2000:]}")

    try:
        ctx.log(f"run_recovery: strata up (STRATA_HOME={home})")
        up("--sample-days", "1")
        wanted = [key for key in built_from_landed_data(dagster.asset_keys()) if key.split("/")[0] in LAYERS]
        dagster.settle(wanted, timeout=DEADLINE_S)

        _land(home, "2026-11-05")
        run_id = _wait_for_run(
            dagster, lambda run: _of(run, "2026-11-05|x") and _in_step(dagster, run["runId"], "dbt_")
        )
        os.kill(_worker_pid(dagster, run_id), signal.SIGKILL)
        killed = time.monotonic()
        _wait_until_ended(dagster, run_id)
        result.figures["run worker killed → run failed, pools free"] = {"seconds": time.monotonic() - killed}
        dagster.settle([], timeout=DEADLINE_S)

        _land(home, "2026-11-06")
        run_id = _wait_for_run(dagster, lambda run: _of(run, "2026-11-06|x"))
        os.killpg(int((home / "dagster-dev.pid").read_text()), signal.SIGKILL)
        os.kill(int((home / "postgres" / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
        time.sleep(1)
        up()
        answering = time.monotonic()
        _wait_until_ended(dagster, run_id)
        result.figures["every process killed → (UI answering) → run failed, pools free"] = {
            "seconds": time.monotonic() - answering
        }
    finally:
        subprocess.run([STRATA, "down"], cwd=REPO_ROOT, env=env, capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)
    for name, figure in result.figures.items():
        result.target(name, figure["seconds"], "<=", MAX_SECONDS, " s")
    return result


def _land(home: Path, day: str) -> None:
    """One post for `day` on network x, landed as a sender would (hidden name, rename, done marker)."""
    folder = home / "landing" / "social" / "posts" / "network=x" / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "post_id": f"x_recovery_{day}",
        "network": "x",
        "account_id": "x_acc000001",
        "created_at": f"{day}T10:00:00Z",
        "text": "recovery trial",
        "hashtags": [],
        "topic": "tech",
        "media_count": 0,
        "media": [],
        "scraped_at": f"{day}T12:00:00Z",
        "like_count": 1,
        "comment_count": 0,
        "retweet_count": 0,
        "view_count": 10,
    }
    staging = folder / ".recovery.jsonl.part"
    staging.write_text(json.dumps(record) + "\n")
    staging.replace(folder / "recovery.jsonl")
    (folder / "recovery.jsonl.done").touch()


def _wait_for_run(dagster, ready) -> str:
    """The first run in progress for which `ready(run)` holds."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        for run in dagster.runs(["STARTED"]):
            if ready(run):
                return run["runId"]
        time.sleep(0.2)
    raise TimeoutError("no run started")


def _of(run: dict, partition: str) -> bool:
    return {tag["key"]: tag["value"] for tag in run["tags"]}.get("dagster/partition") == partition


def _in_step(dagster, run_id: str, prefix: str) -> bool:
    stats = dagster.query(
        """query($runId: ID!) { runOrError(runId: $runId) { ... on Run { stepStats { stepKey status } } } }""",
        runId=run_id,
    )["runOrError"]["stepStats"]
    return any(s["stepKey"].startswith(prefix) and s["status"] in (None, "IN_PROGRESS") for s in stats)


def _worker_pid(dagster, run_id: str) -> int:
    events = dagster.query(
        """query($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
             ... on MessageEvent { message } } } } }""",
        runId=run_id,
    )["logsForRun"]["events"]
    for event in events:
        message = event.get("message") or ""
        if message.startswith(PROCESS_STARTED):
            return int(message[len(PROCESS_STARTED) :].split(")", 1)[0])
    raise RuntimeError(f"run {run_id} logged no worker pid")


def _wait_until_ended(dagster, run_id: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        try:
            statuses = {run["runId"]: run["status"] for run in dagster.runs()}
        except httpx.HTTPError:  # the UI restarting
            statuses = {}
        if statuses.get(run_id) not in (None, *IN_PROGRESS):
            return
        time.sleep(0.2)
    raise TimeoutError(f"run {run_id} still in progress after {DEADLINE_S:.0f} s")
