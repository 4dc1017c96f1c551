"""The dbt project of the silver and gold layers — only the `DbtProject`, so that
`dagster-dbt project prepare-and-package --file assets/transform/project.py` can prepare it (write
dbt/target/manifest.json) without importing the `@dbt_assets`, which need that manifest."""

import hashlib
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from dagster_dbt import DbtProject
from dagster_dbt.dbt_project import using_dagster_dev

DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"

# dagster-dbt's preparer runs plain `dbt`: make the running interpreter's environment (the venv) findable
# even when it is not on PATH, as in `.venv/bin/dagster-dbt …` or `.venv/bin/pytest`.
if shutil.which("dbt") is None:
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])

PARTIAL_PARSE = "partial_parse.msgpack"
# What profiles.yml connects with (assets.transform.env.dbt_env): dbt's parse state depends on it.
CONNECTION_VARIABLES = ("STRATA_DBT_HOST", "STRATA_DBT_PORT", "STRATA_DBT_USER", "STRATA_DBT_DBNAME")

# Folders dbt writes, not sources of the manifest.
GENERATED = ("target", "logs", "dbt_packages")

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def manifest_is_stale(project: DbtProject) -> bool:
    """The manifest is missing or older than a file of the project."""
    if not project.manifest_path.exists():
        return True
    built = project.manifest_path.stat().st_mtime
    return any(path.stat().st_mtime > built for path in _sources(project.project_dir))


def _sources(project_dir: Path) -> Iterator[Path]:
    """The project's files, without walking the folders dbt writes: runs delete their invocation folders there
    at any moment, and a walk into a folder just deleted raises (a run worker loading the code location while
    another run's dbt step ended failed that way)."""
    for top in project_dir.iterdir():
        if top.name in GENERATED:
            continue
        if top.is_dir():
            yield from (path for path in top.rglob("*") if path.is_file())
        elif top.is_file():
            yield top


# Under `dagster dev` the manifest is re-parsed on load when a model changed; elsewhere it must be prepared
# first (Makefile, tests). Not on every load, as dagster-dbt's `prepare_if_dev` does: every run worker inherits
# the dev environment and loads the code location, and would start with a whole parse of the project.
if using_dagster_dev() and manifest_is_stale(dbt_project):
    dbt_project.preparer.prepare(dbt_project)


def partial_parse_of(environment: Mapping[str, str]) -> Path:
    """Where the parse state of one warehouse is kept. dbt hashes the connection (host, port, user, database)
    into `partial_parse.msgpack` and re-parses the whole project when it differs, so
    processes building into different warehouses (the tests; a dev and a prod target) each keep their own."""
    connection = "|".join(environment.get(name, "") for name in CONNECTION_VARIABLES)
    key = hashlib.sha256(connection.encode()).hexdigest()[:16]
    return dbt_project.project_dir / dbt_project.target_path / "partial_parse" / f"{key}.msgpack"


def reuse_partial_parse(invocation_target: Path, environment: Mapping[str, str]) -> None:
    """Start an invocation from its warehouse's parse state, if one was kept (else dagster-dbt copies the
    prepared one)."""
    kept = partial_parse_of(environment)
    if kept.exists():
        invocation_target.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept, invocation_target / PARTIAL_PARSE)


def publish_partial_parse(invocation_target: Path, environment: Mapping[str, str]) -> None:
    """Keep an invocation's parse state as the one its warehouse's next invocations start from.

    dagster-dbt copies `target/partial_parse.msgpack` into each invocation's target folder, but never back,
    and that prepared file hashes the profile of the machine that prepared it. The file is replaced
    atomically: concurrent runs read either state, both valid. A read-only deployment keeps its prepared file.
    """
    source = Path(invocation_target) / PARTIAL_PARSE
    target = partial_parse_of(environment)
    if not source.exists():
        return
    staging = target.with_name(f"{target.name}.{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, staging)
        os.replace(staging, target)
    except OSError:
        staging.unlink(missing_ok=True)
