"""The dbt project of the silver and gold layers — only the `DbtProject`, so that
`dagster-dbt project prepare-and-package --file assets/transform/project.py` can prepare it (write
dbt/target/manifest.json) without importing the `@dbt_assets`, which need that manifest."""

import os
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtProject
from dagster_dbt.dbt_project import using_dagster_dev

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"

# dagster-dbt's preparer runs plain `dbt`: make the running interpreter's environment (the venv) findable
# even when it is not on PATH, as in `.venv/bin/dagster-dbt …` or `.venv/bin/pytest`.
if shutil.which("dbt") is None:
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

PARTIAL_PARSE = "partial_parse.msgpack"

# Folders dbt writes, not sources of the manifest.
GENERATED = ("target", "logs", "dbt_packages")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def manifest_is_stale(project: DbtProject) -> bool:
    """The manifest is missing or older than a file of the project."""
    if not project.manifest_path.exists():
        return True
    built = project.manifest_path.stat().st_mtime
    return any(
        path.stat().st_mtime > built
        for path in project.project_dir.rglob("*")
        if path.is_file() and path.relative_to(project.project_dir).parts[0] not in GENERATED
    )


# Under `dagster dev` the manifest is re-parsed on load when a model changed; elsewhere it must be prepared
# first (Makefile, tests). Not on every load, as dagster-dbt's `prepare_if_dev` does: every run worker inherits
# the dev environment and loads the code location, and a parse added 8 s to the start of each run on 2 cores.
if using_dagster_dev() and manifest_is_stale(dbt_project):
    dbt_project.preparer.prepare(dbt_project)


def publish_partial_parse(invocation_target: Path) -> None:
    """Make an invocation's parse state the one the next invocations start from.

    dagster-dbt copies `target/partial_parse.msgpack` into each invocation's target folder, but never back.
    The prepared file hashes the profile of the machine that prepared it (host, port), so under another
    warehouse every run would re-parse the whole project. The file is replaced atomically: concurrent runs read
    either state, both valid. A read-only deployment keeps its prepared file.
    """
    source = Path(invocation_target) / PARTIAL_PARSE
    target = dbt_project.project_dir / dbt_project.target_path / PARTIAL_PARSE
    if not source.exists():
        return
    staging = target.with_name(f"{PARTIAL_PARSE}.{os.getpid()}")
    try:
        shutil.copyfile(source, staging)
        os.replace(staging, target)
    except OSError:
        staging.unlink(missing_ok=True)
