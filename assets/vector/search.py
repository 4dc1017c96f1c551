"""Filtered semantic search over the content index — the function behind `strata search`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from resources import EmbeddingModelResource, QdrantResource

COLLECTION = "content_index"


@dataclass(frozen=True)
class Hit:
    rank: int
    score: float
    document_key: str
    source_type: str
    network: str | None
    account_id: str | None
    created_date: str | None
    engagement: int | None
    labels: list[str]
    text: str

    def as_dict(self) -> dict:
        return asdict(self)


def search(
    qdrant: QdrantResource,
    embedder: EmbeddingModelResource,
    text: str,
    *,
    network: str | None = None,
    since: date | None = None,
    account: str | None = None,
    source_type: str | None = None,
    label: str | None = None,
    limit: int = 10,
) -> list[Hit]:
    """The `limit` documents closest in meaning to `text`, restricted by the given filters (`label`: posts whose
    media show it)."""
    from qdrant_client import models

    must: list = []
    filters = (("network", network), ("account_id", account), ("source_type", source_type), ("labels", label))
    for name, value in filters:
        if value:
            must.append(models.FieldCondition(key=name, match=models.MatchValue(value=value)))
    if since:
        must.append(
            models.FieldCondition(key="created_day", range=models.Range(gte=int(since.strftime("%Y%m%d"))))
        )
    vector = embedder.encode([text])[0].tolist()
    with qdrant.client() as client:
        points = client.query_points(
            COLLECTION,
            query=vector,
            query_filter=models.Filter(must=must) if must else None,
            limit=limit,
            with_payload=True,
        ).points
    return [
        Hit(
            rank=rank,
            score=round(point.score, 4),
            document_key=point.payload["document_key"],
            source_type=point.payload["source_type"],
            network=point.payload.get("network"),
            account_id=point.payload.get("account_id"),
            created_date=point.payload.get("created_date"),
            engagement=point.payload.get("engagement"),
            labels=point.payload.get("labels") or [],
            text=point.payload.get("text", ""),
        )
        for rank, point in enumerate(points, start=1)
    ]
