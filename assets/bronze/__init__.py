"""Bronze: landing files → ledgered, streaming loads into Postgres (and raw documents into Mongo)."""

from assets.bronze.factory import bronze_assets
from assets.bronze.sensor import landing_sensor

__all__ = ["bronze_assets", "landing_sensor"]
