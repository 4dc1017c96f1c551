"""Code location load time: importing `strata.definitions` and `dagster definitions validate`, each beside its
floor — the same command on a definitions module of one asset that imports only what any dagster-dbt code
location imports (dagster and dagster_dbt, which imports dbt-core)."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from pathlib import Path

from strata.bench.core import PYTHON, REPO_ROOT, BenchContext, ScenarioResult

# Every run worker pays this before its first step: the target for a cheap run start.
MAX_SECONDS = 2.5
REPEATS = 5
FLOOR_MODULE = """
import dagster as dg
import dagster_dbt  # noqa: F401  (imports dbt-core, as every dagster-dbt code location does)


@dg.asset
def one() -> int:
    return 1


defs = dg.Definitions(assets=[one])
"""


def _wall(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env={**os.environ, **env})
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{(result.stderr or result.stdout)[-2000:]}")
    return seconds


def code_location_load(ctx: BenchContext) -> ScenarioResult:
    repeats = 1 if ctx.quick else REPEATS
    result = ScenarioResult(
        "code_location_load",
        f"time to load the code location (fresh processes, median of {repeats})",
        columns=[
            ("median s", "median_s", ".2f"),
            ("min s", "min_s", ".2f"),
            ("max s", "max_s", ".2f"),
            ("floor s", "floor_s", ".2f"),
        ],
    )
    dagster_home = ctx.work_dir / "dagster_home"
    dagster_home.mkdir(exist_ok=True)
    (dagster_home / "dagster.yaml").touch()
    floor = ctx.work_dir / "code_location_floor"
    floor.mkdir(exist_ok=True)
    (floor / "floor_definitions.py").write_text(FLOOR_MODULE)
    (floor / "workspace.yaml").write_text(
        f"load_from:\n  - python_module:\n      module_name: floor_definitions\n      working_directory: {floor}\n"
    )
    validate = [str(Path(PYTHON).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"]
    # Each figure: Strata's command (run in the repository) and its floor's (run in the floor's folder).
    commands = {
        "import strata.definitions": (
            [PYTHON, "-c", "import strata.definitions"],
            [PYTHON, "-c", "import floor_definitions"],
        ),
        "dagster definitions validate": (validate, validate),
    }
    env = {"DAGSTER_HOME": str(dagster_home)}
    for name, (args, floor_args) in commands.items():
        runs, floor_runs = [], []
        # Alternating, so that a change in the machine's speed weighs on both alike.
        for _ in range(repeats):
            runs.append(_wall(args, REPO_ROOT, env))
            floor_runs.append(_wall(floor_args, floor, env))
        median, floor_median = statistics.median(runs), statistics.median(floor_runs)
        result.figures[name] = {
            "median_s": median,
            "min_s": min(runs),
            "max_s": max(runs),
            "floor_s": floor_median,
        }
        result.ratio(f"{name}: Strata/floor", median, floor_median)
        result.target(name, median, "<=", MAX_SECONDS, " s")
    result.notes.append(
        "floor = the same command on a one-asset definitions module importing dagster and dagster_dbt (which "
        "imports dbt-core): what any dagster-dbt code location pays before its own code"
    )
    return result
