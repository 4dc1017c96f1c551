"""Silver and gold: the dbt project (dbt/) as Dagster assets, partitioned like bronze, tests as asset checks, a
volume check on every partitioned model, and dbt's source freshness of bronze evaluated every hour.

Importing this package needs dbt/target/manifest.json (`dagster-dbt project prepare-and-package --file
assets/transform/project.py`, or `dagster dev`, which prepares it).
"""

import dagster as dg

from assets.transform.assets import dbt_assets_list, dbt_resource
from assets.transform.source_freshness import source_freshness
from assets.transform.volume import volume_checks

dbt_assets: list[dg.AssetsDefinition] = dbt_assets_list

defs = dg.Definitions(assets=[*dbt_assets, source_freshness], asset_checks=volume_checks(dbt_assets))

__all__ = ["dbt_assets", "dbt_resource", "defs"]
