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

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
# Under `dagster dev` the manifest is re-parsed on load; elsewhere it must be prepared first (Makefile, tests).
dbt_project.prepare_if_dev()
