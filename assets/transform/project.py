"""The dbt project of the silver and gold layers — only the `DbtProject`, so that
`dagster-dbt project prepare-and-package --file assets/transform/project.py` can prepare it (write
dbt/target/manifest.json) without importing the `@dbt_assets`, which need that manifest."""

import os
import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"

# dagster-dbt's preparer runs plain `dbt`: make the running interpreter's environment (the venv) findable
# even when it is not on PATH, as in `.venv/bin/dagster-dbt …` or `.venv/bin/pytest`.
if shutil.which("dbt") is None:
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

PARTIAL_PARSE = "partial_parse.msgpack"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` the manifest is re-parsed on load; elsewhere it must be prepared first (Makefile, tests).
dbt_project.prepare_if_dev()


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
