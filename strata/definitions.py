"""The composition root: the one `Definitions` of the code location, wiring assets to resources.

Resources take every URL through `EnvVar`, resolved when a run starts; `strata up` (and the test fixtures)
export the concrete values, so nothing here looks at the environment while the code location loads.
"""

import dagster as dg

from assets.automation import automation_sensor, reconciliation_sensor
from assets.bronze import bronze_assets, documents_assets, landing_sensor
from assets.observability.alerts import quality_alert_sensor, run_failure_alert
from assets.observability.freshness import with_default_freshness
from assets.observability.pools import pool_watch
from assets.observability.quality import check_history, data_quality_dashboard
from assets.transform import dbt_assets, dbt_resource
from assets.vector.content_index import content_index, vector_checks
from resources import (
    AlertWebhookResource,
    EmbeddingModelResource,
    LandingZoneResource,
    MongoResource,
    PostgresResource,
    QdrantResource,
)


def build_resources() -> dict[str, dg.ConfigurableResource]:
    return {
        "postgres": PostgresResource(url=dg.EnvVar("STRATA_POSTGRES_URL")),
        "mongo": MongoResource(
            url=dg.EnvVar("STRATA_MONGO_URL"), database_name=dg.EnvVar("STRATA_MONGO_DATABASE")
        ),
        "qdrant": QdrantResource(url=dg.EnvVar("STRATA_QDRANT_URL")),
        "embedder": EmbeddingModelResource(),
        "landing": LandingZoneResource(root=dg.EnvVar("STRATA_LANDING_DIR")),
        "dbt": dbt_resource(pii_salt=dg.EnvVar("STRATA_PII_SALT")),
        "alerts": AlertWebhookResource(),
    }


defs = dg.Definitions(
    assets=with_default_freshness(
        [*bronze_assets, *documents_assets, *dbt_assets, content_index, check_history, data_quality_dashboard]
    ),
    asset_checks=vector_checks,
    sensors=[
        landing_sensor,
        automation_sensor,
        reconciliation_sensor,
        run_failure_alert,
        quality_alert_sensor,
        pool_watch,
    ],
    resources=build_resources(),
    # Runs hold one step or a short chain: running its steps in the run's own process saves a subprocess start
    # (and a code-location load) per step.
    executor=dg.in_process_executor,
)
