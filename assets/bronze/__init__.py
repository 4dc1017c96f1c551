"""Bronze: landing files → ledgered, streaming loads into Postgres; the raw documents copied on into Mongo."""

import dagster as dg

from assets.bronze.documents import documents_assets
from assets.bronze.factory import bronze_assets
from assets.bronze.sensor import landing_sensor

defs = dg.Definitions(assets=[*bronze_assets, *documents_assets], sensors=[landing_sensor])

__all__ = ["bronze_assets", "defs", "documents_assets", "landing_sensor"]
