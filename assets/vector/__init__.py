"""The vector index: searchable documents from silver, embedded offline, kept in sync in Qdrant."""

import dagster as dg

from assets.vector.content_index import content_index, vector_checks

defs = dg.Definitions(assets=[content_index], asset_checks=vector_checks)

__all__ = ["defs"]
