"""Small Dagster resources, the same code against embedded and real servers. They know nothing of assets."""

from resources.alerts import AlertWebhookResource
from resources.embeddings import EmbeddingModelResource
from resources.landing import LandingZoneResource
from resources.mongo import MongoResource
from resources.postgres import PostgresResource
from resources.qdrant import QdrantResource
from resources.x_api import RecentSearchResource

__all__ = [
    "AlertWebhookResource",
    "EmbeddingModelResource",
    "LandingZoneResource",
    "MongoResource",
    "PostgresResource",
    "QdrantResource",
    "RecentSearchResource",
]
