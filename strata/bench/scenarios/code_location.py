"""Code location load time: importing `strata.definitions` and `dagster definitions validate`."""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path

from strata.bench.core import PYTHON, REPO_ROOT, BenchContext, ScenarioResult

# Every run worker pays this before its first step: the target for a cheap run start.
MAX_SECONDS = 2.5
REPEATS = 3


def _wall(args: list[str], env: dict[str, str] | None = None) -> float:
    import os

    started = time.perf_counter()
    result = subprocess.run(
        args, cwd=REPO_ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{(result.stderr or result.stdout)[-2000:]}")
    return seconds


def code_location_load(ctx: BenchContext) -> ScenarioResult:
    repeats = 1 if ctx.quick else REPEATS
    result = ScenarioResult(
        "code_location_load",
        f"time to load the code location (fresh processes, median of {repeats})",
        columns=[("median s", "median_s", ".2f"), ("min s", "min_s", ".2f"), ("max s", "max_s", ".2f")],
    )
    dagster_home = ctx.work_dir / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    (dagster_home / "dagster.yaml").touch()
    commands = {
        "import strata.definitions": [PYTHON, "-c", "import strata.definitions"],
        "dagster definitions validate": [
            str(Path(PYTHON).parent / "dagster"),
            "definitions",
            "validate",
            "-w",
            "workspace.yaml",
        ],
    }
    for name, args in commands.items():
        runs = [_wall(args, {"DAGSTER_HOME": str(dagster_home)}) for _ in range(repeats)]
        result.figures[name] = {"median_s": statistics.median(runs), "min_s": min(runs), "max_s": max(runs)}
        result.target(name, statistics.median(runs), "<=", MAX_SECONDS, " s")
    return result
