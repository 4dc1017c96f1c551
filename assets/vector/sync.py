"""Incremental sync of searchable documents into a Qdrant collection.

A document becomes one point whose id is uuid5 of its key. Only new text, or text whose content hash or
embedding model changed, is embedded; a changed payload alone (e.g. engagement) is updated without
re-embedding; points whose document left silver are deleted. Every write waits for Qdrant's confirmation,
and the sync ends by checking that Qdrant holds exactly the expected ids.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://strata.example/vector/content_index")
# Filter fields; payload indexes are created where the server supports them (local mode ignores them).
INDEXED_FIELDS = {
    "source_type": "keyword",
    "network": "keyword",
    "account_id": "keyword",
    "created_day": "integer",
    "labels": "keyword",
}
SCROLL_PAGE = 1024
UPSERT_BATCH = 256


@dataclass(frozen=True)
class Document:
    key: str
    source_type: str
    text: str
    network: str | None
    account_id: str | None
    created_date: date | None
    engagement: int | None
    # What the vision service saw in a post's media (silver.image_labels): a filter, not embedded text.
    labels: tuple[str, ...] = ()

    @property
    def point_id(self) -> str:
        return point_id(self.key)

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def payload(self, model_name: str, model_version: str) -> dict:
        return {
            "document_key": self.key,
            "source_type": self.source_type,
            "network": self.network,
            "account_id": self.account_id,
            "created_date": self.created_date.isoformat() if self.created_date else None,
            "created_day": int(self.created_date.strftime("%Y%m%d")) if self.created_date else None,
            "engagement": self.engagement,
            "labels": list(self.labels),
            "content_hash": self.content_hash,
            "model_name": model_name,
            "model_version": model_version,
            "text": self.text,
        }


def point_id(document_key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, document_key))


@dataclass
class SyncResult:
    documents: int = 0
    embedded: int = 0
    payload_updates: int = 0
    deleted: int = 0
    unchanged: int = 0
    recreated: bool = False
    orphans_before: list[str] = field(default_factory=list)


def ensure_collection(client: QdrantClient, collection: str, dimension: int, *, local: bool) -> bool:
    """Create the collection (cosine, `dimension`) if missing or of another dimension; True if (re)created."""
    from qdrant_client import models

    if client.collection_exists(collection):
        info = client.get_collection(collection)
        if info.config.params.vectors.size == dimension:
            return False
        client.delete_collection(collection)
    client.create_collection(
        collection, vectors_config=models.VectorParams(size=dimension, distance=models.Distance.COSINE)
    )
    if not local:
        for name, schema in INDEXED_FIELDS.items():
            client.create_payload_index(
                collection, field_name=name, field_schema=models.PayloadSchemaType(schema), wait=True
            )
    return True


def stored_points(client: QdrantClient, collection: str) -> dict[str, dict]:
    """Every point's payload by id (no vectors)."""
    points: dict[str, dict] = {}
    offset = None
    while True:
        page, offset = client.scroll(
            collection, limit=SCROLL_PAGE, offset=offset, with_payload=True, with_vectors=False
        )
        points.update((str(p.id), p.payload or {}) for p in page)
        if offset is None:
            return points


def sync(
    client: QdrantClient,
    collection: str,
    documents: Iterable[Document],
    *,
    encode: Callable[[Sequence[str]], Sequence[Sequence[float]]],
    dimension: int,
    model_name: str,
    model_version: str,
    local: bool,
    texts_per_call: int,
    log: Callable[[str], None] = lambda message: None,
) -> SyncResult:
    from qdrant_client import models

    result = SyncResult(recreated=ensure_collection(client, collection, dimension, local=local))
    existing = stored_points(client, collection)
    seen: set[str] = set()
    to_embed: list[tuple[str, Document]] = []
    payload_updates: list[models.SetPayloadOperation] = []
    for document in documents:
        pid = document.point_id
        seen.add(pid)
        result.documents += 1
        payload = document.payload(model_name, model_version)
        stored = existing.get(pid)
        if (
            stored is None
            or stored.get("content_hash") != payload["content_hash"]
            or stored.get("model_version") != model_version
        ):
            to_embed.append((pid, document))
        elif stored != payload:
            payload_updates.append(
                models.SetPayloadOperation(set_payload=models.SetPayload(payload=payload, points=[pid]))
            )
        else:
            result.unchanged += 1

    for batch in _chunks(payload_updates, UPSERT_BATCH):
        client.batch_update_points(collection, update_operations=batch, wait=True)
    result.payload_updates = len(payload_updates)
    result.embedded = _embed_and_upsert(
        client, collection, to_embed, encode, texts_per_call, model_name, model_version, log
    )

    stale = sorted(set(existing) - seen)
    for batch in _chunks(stale, UPSERT_BATCH):
        client.delete(collection, points_selector=models.PointIdsList(points=batch), wait=True)
    result.deleted = len(stale)

    count = client.count(collection, exact=True).count
    if count != len(seen):
        raise RuntimeError(f"Qdrant holds {count} points after the sync, expected {len(seen)}")
    return result


def _embed_and_upsert(
    client, collection, to_embed, encode, texts_per_call, model_name, model_version, log
) -> int:
    """Encode call N+1 while the points of call N are written: the model and Qdrant's writes overlap. Texts go in
    length order, since the model pads each of its batches to the longest text."""
    from qdrant_client import models

    ordered = sorted(to_embed, key=lambda item: len(item[1].text))
    pending: Future | None = None
    done = 0
    with ThreadPoolExecutor(max_workers=1) as writer:
        for batch in _chunks(ordered, texts_per_call):
            vectors = encode([document.text for _, document in batch])
            points = [
                models.PointStruct(
                    id=pid, vector=vector.tolist(), payload=document.payload(model_name, model_version)
                )
                for (pid, document), vector in zip(batch, vectors, strict=True)
            ]
            if pending:
                pending.result()
            pending = writer.submit(_write, client, collection, points)
            done += len(points)
            log(f"embedded {done}/{len(to_embed)}")
        if pending:
            pending.result()
    return done


def _write(client, collection: str, points: list) -> None:
    for batch in _chunks(points, UPSERT_BATCH):
        client.upsert(collection, points=batch, wait=True)


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
