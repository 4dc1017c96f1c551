"""Silver and gold: the dbt project (dbt/) as Dagster assets, partitioned like bronze, tests as asset checks, and
dbt's source freshness of bronze evaluated every hour.

Importing this package needs dbt/target/manifest.json (`dagster-dbt project prepare-and-package --file
assets/transform/project.py`, or `dagster dev`, which prepares it).
"""

import dagster as dg

from assets.transform.assets import dbt_assets_list, dbt_resource
from assets.transform.source_freshness import (
    dbt_source_freshness,
    source_freshness_job,
    source_freshness_schedule,
)

dbt_assets: list[dg.AssetsDefinition] = dbt_assets_list

defs = dg.Definitions(
    assets=dbt_assets,
    asset_checks=[dbt_source_freshness],
    jobs=[source_freshness_job],
    schedules=[source_freshness_schedule],
)

__all__ = ["dbt_assets", "dbt_resource", "defs"]
