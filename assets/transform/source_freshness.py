"""dbt's source freshness, evaluated: every hour `dbt source freshness` judges each bronze table, and the asset
`gold/source_freshness` keeps the verdicts (a row per table and evaluation) with one check over them.

The windows are the ones dbt/models/sources.yml declares (on `ingested_at`, the moment bronze loaded a row): a
table whose newest row is older than `warn_after` WARNs, older than `error_after` fails. This watches the rows,
where the freshness policy of a bronze asset watches its materializations (a load that found nothing new still
materializes). It is an asset of its own, not a check on each bronze asset, so that loading bronze never waits
on a dbt invocation.
"""

import shutil
import uuid
from datetime import UTC, datetime

import dagster as dg
from psycopg.types.json import Jsonb

from assets.automation.conditions import on_schedule
from assets.conventions import OWNER
from assets.transform.assets import TRANSLATOR, InterpreterDbtCliResource, scoped_environ
from assets.transform.env import dbt_env
from assets.transform.project import dbt_project
from resources import PostgresResource
from resources.postgres import serialized_ddl

KEY = dg.AssetKey(["gold", "source_freshness"])
CHECK = "bronze_sources_fresh"
CRON = "7 * * * *"

_DDL = """
CREATE SCHEMA IF NOT EXISTS gold;
CREATE TABLE IF NOT EXISTS gold.source_freshness (
    checked_at timestamptz NOT NULL,
    asset_key text NOT NULL,
    status text NOT NULL,
    max_loaded_at timestamptz,
    age_hours double precision,
    run_id text NOT NULL,
    detail jsonb NOT NULL,
    PRIMARY KEY (checked_at, asset_key)
);
"""


@dg.asset(
    key=KEY,
    group_name="observability",
    kinds={"dbt", "postgres"},
    owners=[OWNER],
    description="dbt source freshness of every bronze table (sources.yml: WARN after 4 h, fails after 24 h without "
    "a new row), evaluated every hour: a row per table and evaluation.",
    automation_condition=on_schedule(CRON),
    check_specs=[
        dg.AssetCheckSpec(
            CHECK,
            asset=KEY,
            description="Every bronze table had a new row within its dbt source freshness window: WARN past "
            "warn_after, ERROR past error_after, naming the tables.",
        )
    ],
)
def source_freshness(
    context: dg.AssetExecutionContext, dbt: InterpreterDbtCliResource, postgres: PostgresResource
) -> dg.MaterializeResult:
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
        results = invocation.get_artifact("sources.json")["results"]
    finally:
        shutil.rmtree(target, ignore_errors=True)
    sources = invocation.manifest["sources"]
    checked_at = datetime.now(UTC)
    rows = []
    for result in results:
        key = TRANSLATOR.get_asset_key(sources[result["unique_id"]]).to_user_string()
        age = result.get("max_loaded_at_time_ago_in_s")
        rows.append(
            (
                checked_at,
                key,
                result["status"],
                result.get("max_loaded_at"),
                round(age / 3600, 3) if age is not None else None,
                context.run_id,
                Jsonb({name: result[name] for name in ("error", "criteria") if result.get(name)}),
            )
        )
    with postgres.connect(autocommit=True) as conn:
        with serialized_ddl(conn, "strata.gold.source_freshness"):
            conn.execute(_DDL)
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany("INSERT INTO gold.source_freshness VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)
    by_status: dict[str, list[str]] = {}
    for _, key, status, *_ in rows:
        by_status.setdefault(status, []).append(key)
    # "runtime error": dbt could not read the table (no load has created it yet) — not late data, a WARN.
    failed = by_status.get("error", [])
    late = by_status.get("warn", []) + by_status.get("runtime error", [])
    statuses = dg.MetadataValue.json({key: status for _, key, status, *_ in rows})
    return dg.MaterializeResult(
        metadata={"tables": len(rows), "statuses": statuses},
        check_results=[
            dg.AssetCheckResult(
                check_name=CHECK,
                passed=not failed and not late,
                severity=dg.AssetCheckSeverity.ERROR if failed else dg.AssetCheckSeverity.WARN,
                metadata={
                    "past_error_after": dg.MetadataValue.json(sorted(failed)),
                    "past_warn_after": dg.MetadataValue.json(sorted(late)),
                    "statuses": statuses,
                },
            )
        ],
    )
