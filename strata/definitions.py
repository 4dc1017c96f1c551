"""The composition root: the one `Definitions` of the code location. Each area of `assets` exports its own
definitions; this module merges them with the resources and applies the defaults, once.

Resources take every URL through `EnvVar`, resolved when a run starts; `strata up` (and the test fixtures)
export the concrete values, so nothing here looks at the environment while the code location loads.
"""

import dagster as dg

from assets import automation, bronze, landing, observability, transform, vector
from assets.observability import with_default_freshness
from assets.transform import dbt_resource
from resources import (
    AlertWebhookResource,
    EmbeddingModelResource,
    LandingZoneResource,
    MongoResource,
    PostgresResource,
    QdrantResource,
    RecentSearchResource,
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
        "tweets_api": RecentSearchResource(),
    }


defs = with_default_freshness(
    dg.Definitions.merge(
        landing.defs,
        bronze.defs,
        transform.defs,
        vector.defs,
        observability.defs,
        automation.defs,
        dg.Definitions(
            resources=build_resources(),
            # Runs hold one step or a short chain: running its steps in the run's own process saves a subprocess
            # start (and a code-location load) per step.
            executor=dg.in_process_executor,
        ),
    )
)
