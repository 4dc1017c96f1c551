"""Search over the content index — the function behind `strata search`.

`hybrid` (the default) fuses the dense ranking (meaning: "a dog at the park" finds "puppy training") with the BM25
ranking (exact terms: a brand, a hashtag, a rare word) by reciprocal rank; `dense` and `sparse` run one side alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

from resources import EmbeddingModelResource, QdrantResource
from resources.vector_store import Filters, Mode, Query, bm25_query

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
    mode: Mode | str = Mode.HYBRID,
    network: str | None = None,
    since: date | None = None,
    account: str | None = None,
    source_type: str | None = None,
    label: str | None = None,
    limit: int = 10,
    collection: str = COLLECTION,
) -> list[Hit]:
    """The `limit` documents that best match `text`, restricted by the given filters (`label`: posts whose media
    show it)."""
    mode = Mode(mode)
    query = Query(
        mode=mode,
        limit=limit,
        filters=Filters(
            network=network,
            account_id=account,
            source_type=source_type,
            label=label,
            since_day=int(since.strftime("%Y%m%d")) if since else None,
        ),
        # A sparse-only search never loads the model.
        dense=embedder.encode([text])[0].tolist() if mode is not Mode.SPARSE else None,
        sparse=bm25_query(text) if mode is not Mode.DENSE else None,
    )
    with qdrant.reader(collection) as store:
        matches = store.query(query)
    return [
        Hit(
            rank=rank,
            score=round(match.score, 4),
            document_key=match.payload["document_key"],
            source_type=match.payload["source_type"],
            network=match.payload.get("network"),
            account_id=match.payload.get("account_id"),
            created_date=match.payload.get("created_date"),
            engagement=match.payload.get("engagement"),
            labels=match.payload.get("labels") or [],
            text=match.payload.get("text", ""),
        )
        for rank, match in enumerate(matches, start=1)
    ]
