"""Bronze: landing files → ledgered, streaming loads into Postgres; the raw documents copied on into Mongo."""

from assets.bronze.documents import documents_assets
from assets.bronze.factory import bronze_assets
from assets.bronze.sensor import landing_sensor

__all__ = ["bronze_assets", "documents_assets", "landing_sensor"]
