"""`strata bench`: Strata measured against its anchors in one run, on the same data and machine.

Each scenario (a name in SCENARIOS) measures Strata and its anchors and returns figures, ratios and targets;
`run` prints a table with the machine it ran on and writes `$STRATA_HOME/bench/latest.json`, which keeps every
scenario's latest run (with its date, machine and versions; strata/bench/readme.py renders it into the README).
A missed target
is reported ("met": false) and makes the command exit 1, except in a quick run. `STRATA_BENCH_QUICK=1` shrinks every input ~10× for a smoke run.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from strata.bench.core import BENCH_DATABASE, BenchContext, ScenarioResult, machine, render
from strata.bench.scenarios.api_extraction import api_extraction
from strata.bench.scenarios.bronze import bronze_load, bronze_memory
from strata.bench.scenarios.code_location import code_location_load
from strata.bench.scenarios.first_refresh import first_refresh
from strata.bench.scenarios.incremental import incremental_partition
from strata.bench.scenarios.landing_backlog import landing_backlog
from strata.bench.scenarios.latency import latency
from strata.bench.scenarios.run_recovery import run_recovery
from strata.bench.scenarios.search_relevance import search_relevance
from strata.bench.scenarios.vector import vector_index
from strata.config import Settings

__all__ = ["SCENARIOS", "BenchContext", "ScenarioResult", "report_path", "run"]

SCENARIOS: dict[str, Callable[[BenchContext], ScenarioResult]] = {
    "code_location_load": code_location_load,
    "bronze_load": bronze_load,
    "bronze_memory": bronze_memory,
    "vector_index": vector_index,
    "search_relevance": search_relevance,
    "incremental_partition": incremental_partition,
    "latency": latency,
    "landing_backlog": landing_backlog,
    "run_recovery": run_recovery,
    "first_refresh": first_refresh,
    "api_extraction": api_extraction,
}


def report_path(settings: Settings) -> Path:
    return settings.home / "bench" / "latest.json"


def _earlier_scenarios(path: Path) -> dict:
    """The scenarios of the report at `path`, each with the date, machine and mode of the run that measured it."""
    try:
        earlier = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    run_of = {
        "ran_at": earlier.get("started_at"),
        "quick": earlier.get("quick"),
        "machine": earlier.get("machine"),
    }
    return {name: {**run_of, **scenario} for name, scenario in earlier.get("scenarios", {}).items()}


def run(
    settings: Settings,
    names: list[str] | None = None,
    *,
    quick: bool | None = None,
    anchors: bool = True,
    records: int | None = None,
    database: str = BENCH_DATABASE,
) -> int:
    """Run the named scenarios (all when `names` is empty), print the table, write the JSON report. Returns 1
    when a scenario broke or, unless `quick` (a smoke run on shrunk inputs), when a target was missed; else 0.

    `anchors=False` skips what needs the anchors venv (dlt, pandas); `records` overrides the size of the
    bronze_load file; `database` names the bench's database — all for tests."""
    selected = list(names or SCENARIOS)
    unknown = [name for name in selected if name not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown bench scenarios {unknown}; choose from {list(SCENARIOS)}")
    if quick is None:
        quick = os.environ.get("STRATA_BENCH_QUICK", "") not in ("", "0", "false")
    ctx = BenchContext(settings, quick=quick, anchors=anchors, records=records, database=database)
    started_at = datetime.now(UTC)
    results: list[ScenarioResult] = []
    ctx.start()
    try:
        info = machine(ctx)
        for name in selected:
            ctx.log(f"scenario {name}{' (quick)' if quick else ''}")
            began = time.perf_counter()
            try:
                result = SCENARIOS[name](ctx)
            except Exception as exc:  # a broken scenario is reported; the others still run
                result = ScenarioResult(name, "failed", error=f"{type(exc).__name__}: {exc}")
                result.notes.append(traceback.format_exc(limit=5))
            result.seconds = time.perf_counter() - began
            results.append(result)
    finally:
        ctx.finish()
    if ctx.anchor_versions:
        info["anchors"] = ctx.anchor_versions
    ran = {
        r.name: {**r.to_json(), "ran_at": started_at.isoformat(), "quick": quick, "machine": info}
        for r in results
    }
    path = report_path(settings)
    # The report keeps each scenario's latest run: this run's scenarios replace theirs, the others stay.
    kept = _earlier_scenarios(path)
    report = {
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "quick": quick,
        "machine": info,
        "met": all(r.met for r in results),
        "scenarios": {**{k: v for k, v in kept.items() if k in SCENARIOS and k not in ran}, **ran},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(render(results, info))
    missed = [t.text() for r in results for t in r.targets if not t.met]
    missed += [f"{r.name}: {r.error}" for r in results if r.error]
    print()
    print("all targets met" if not missed else "MISSED: " + "; ".join(missed))
    print(f"report: {path}")
    broken = any(r.error for r in results)
    return 1 if broken or (missed and not quick) else 0
