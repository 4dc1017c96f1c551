"""dbt's source freshness, evaluated: `dbt source freshness` on a schedule, each bronze table's verdict recorded as
its `source_freshness` check.

The windows are the ones dbt/models/sources.yml declares (on `ingested_at`, the moment bronze loaded a row): a
source whose newest row is older than `warn_after` WARNs, older than `error_after` fails. This measures the data
itself, where the freshness policy of a bronze asset measures its materializations (a load that found nothing
new still materializes).
"""

import shutil
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
import orjson

from assets.transform.assets import TRANSLATOR, InterpreterDbtCliResource, scoped_environ
from assets.transform.env import dbt_env
from assets.transform.project import dbt_project
from resources import PostgresResource

CHECK = "source_freshness"
_SEVERITY = {"pass": dg.AssetCheckSeverity.WARN, "warn": dg.AssetCheckSeverity.WARN}

# Each dbt source table by unique id: its bronze asset and the windows sources.yml declares for it.
SOURCES: dict[str, Mapping[str, Any]] = orjson.loads(dbt_project.manifest_path.read_bytes())["sources"]


def _windows(props: Mapping[str, Any]) -> str:
    freshness = props.get("freshness") or {}
    said = [
        f"{verdict} after {window['count']} {window['period']}s"
        for verdict, window in (
            ("WARN", freshness.get("warn_after")),
            ("fails", freshness.get("error_after")),
        )
        if window and window.get("count")
    ]
    return ", ".join(said) or "no window declared"


@dg.multi_asset_check(
    name="dbt_source_freshness",
    specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset=TRANSLATOR.get_asset_key(props),
            description=f"dbt source freshness of the newest {props.get('loaded_at_field')}: {_windows(props)}.",
        )
        for props in SOURCES.values()
    ],
    can_subset=True,
)
def dbt_source_freshness(
    context: dg.AssetCheckExecutionContext, dbt: InterpreterDbtCliResource, postgres: PostgresResource
) -> Iterator[dg.AssetCheckResult]:
    environment = dbt_env(postgres.url, dbt.pii_salt) | {"DBT_LOG_LEVEL_FILE": "none"}
    target = dbt_project.project_dir / dbt_project.target_path / f"source_freshness-{uuid.uuid4().hex[:7]}"
    with scoped_environ(environment):
        invocation = dbt.cli(
            ["source", "freshness"],
            raise_on_error=False,
            manifest=dbt_project.manifest_path,
            dagster_dbt_translator=TRANSLATOR,
            target_path=target,
        )
    try:
        invocation.wait()
        results = {
            result["unique_id"]: result for result in invocation.get_artifact("sources.json")["results"]
        }
    finally:
        shutil.rmtree(target, ignore_errors=True)
    wanted = {check.asset_key for check in context.selected_asset_check_keys}
    for unique_id, props in SOURCES.items():
        key = TRANSLATOR.get_asset_key(props)
        if key not in wanted:
            continue
        result = results.get(unique_id, {"status": "runtime error", "error": "dbt reported no result"})
        status = result["status"]
        age = result.get("max_loaded_at_time_ago_in_s")
        yield dg.AssetCheckResult(
            asset_key=key,
            check_name=CHECK,
            passed=status == "pass",
            severity=_SEVERITY.get(status, dg.AssetCheckSeverity.ERROR),
            metadata={
                "status": status,
                **(
                    {"newest_row_age_hours": dg.MetadataValue.float(round(age / 3600, 3))}
                    if age is not None
                    else {}
                ),
                **({"max_loaded_at": result["max_loaded_at"]} if result.get("max_loaded_at") else {}),
                **({"error": result["error"]} if result.get("error") else {}),
            },
        )


source_freshness_job = dg.define_asset_job(
    "source_freshness", selection=dg.AssetSelection.checks(dbt_source_freshness)
)

source_freshness_schedule = dg.ScheduleDefinition(
    name="source_freshness_hourly",
    job=source_freshness_job,
    cron_schedule="7 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="dbt source freshness of every bronze table, at 7 past each hour.",
)
