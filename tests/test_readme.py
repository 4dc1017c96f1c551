"""The README is the user's manual: its configuration table covers every variable the code reads, and its
performance figures are exactly what the bench measured."""

from __future__ import annotations

import json
import re
from pathlib import Path

from strata.bench import readme

REPO = Path(__file__).resolve().parent.parent
# Not user configuration: set by the platform itself or by the test suite.
INTERNAL = {
    "STRATA_UPDATE_SNAPSHOTS",
    "STRATA_DBT_HOST",
    "STRATA_DBT_PORT",
    "STRATA_DBT_USER",
    "STRATA_DBT_PASSWORD",
    "STRATA_DBT_DBNAME",
    "STRATA_DBT_PARTITION_START",
    "STRATA_DBT_PARTITION_END",
    "STRATA_DBT_PARTITION_NETWORKS",
    "STRATA_DBT_BUILD_ID",
}


def variables_in_code() -> set[str]:
    names: set[str] = set()
    for pattern in (
        "strata/**/*.py",
        "assets/**/*.py",
        "resources/**/*.py",
        "platform/*.yaml",
        "dbt/**/*.yml",
    ):
        for path in REPO.glob(pattern):
            if path.is_file() and not {"target", "logs", "dbt_packages"} & set(path.parts):
                names |= set(re.findall(r"\bSTRATA_[A-Z_]+[A-Z]\b", path.read_text()))
    return names - INTERNAL


def test_every_strata_variable_the_code_reads_is_in_a_readme_configuration_table():
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"^\| `(STRATA_[A-Z_]+)` \|", readme, flags=re.M))
    assert variables_in_code() <= documented, variables_in_code() - documented


def test_the_readme_test_command_is_what_ci_runs():
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "make test" in (REPO / "README.md").read_text()


def test_the_performance_figures_are_the_rendering_of_the_kept_bench_report():
    report = json.loads(readme.KEPT_REPORT.read_text())
    assert readme.block_of((REPO / "README.md").read_text()) == readme.render(report)
    assert all(not scenario["quick"] for scenario in report["scenarios"].values())
