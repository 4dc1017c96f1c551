"""Incremental sync of searchable documents into a vector store (resources/vector_store.py).

A document becomes one point whose id is uuid5 of its key, with a dense vector from the embedding model and a BM25
sparse vector of the same text. Only new text, or text whose content hash or embedding model changed, is embedded;
a changed payload alone (e.g. engagement) is updated without re-embedding; points whose document left silver are
deleted. The sync ends by checking that the store holds exactly the expected ids.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date

from resources.vector_store import TERMS, Point, VectorStore, bm25_document

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://strata.example/vector/content_index")


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
    # Wall seconds spent in the model's encode calls, and waiting for the store's writes after them.
    encode_s: float = 0.0
    store_wait_s: float = 0.0


def sync(
    store: VectorStore,
    documents: Iterable[Document],
    *,
    encode: Callable[[Sequence[str]], Sequence[Sequence[float]]],
    dimension: int,
    model_name: str,
    model_version: str,
    texts_per_call: int,
    log: Callable[[str], None] = lambda message: None,
) -> SyncResult:
    result = SyncResult(recreated=store.ensure(dimension))
    existing = store.payloads()
    seen: set[str] = set()
    to_embed: list[tuple[str, Document]] = []
    payload_updates: list[tuple[str, dict]] = []
    for document in documents:
        pid = document.point_id
        seen.add(pid)
        result.documents += 1
        payload = document.payload(model_name, model_version)
        stored = existing.get(pid)
        if stored is not None:
            # The terms follow the text, which the content hash already compares.
            stored = {name: value for name, value in stored.items() if name != TERMS}
        if (
            stored is None
            or stored.get("content_hash") != payload["content_hash"]
            or stored.get("model_version") != model_version
        ):
            to_embed.append((pid, document))
        elif stored != payload:
            payload_updates.append((pid, payload))
        else:
            result.unchanged += 1

    store.set_payloads(payload_updates)
    result.payload_updates = len(payload_updates)
    _embed_and_upsert(store, to_embed, encode, texts_per_call, model_name, model_version, log, result)

    stale = sorted(set(existing) - seen)
    store.delete(stale)
    result.deleted = len(stale)

    count = store.count()
    if count != len(seen):
        raise RuntimeError(f"the vector store holds {count} points after the sync, expected {len(seen)}")
    return result


def _embed_and_upsert(
    store: VectorStore, to_embed, encode, texts_per_call, model_name, model_version, log, result: SyncResult
) -> None:
    """Encode call N+1 while the points of call N are written: the model and the store's writes overlap. Texts go
    in length order, since the model pads each of its batches to the longest text."""
    ordered = sorted(to_embed, key=lambda item: len(item[1].text))
    pending: Future | None = None
    with ThreadPoolExecutor(max_workers=1) as writer:
        for batch in _chunks(ordered, texts_per_call):
            started = time.perf_counter()
            vectors = encode([document.text for _, document in batch])
            result.encode_s += time.perf_counter() - started
            points = []
            for (pid, document), vector in zip(batch, vectors, strict=True):
                sparse = bm25_document(document.text)
                payload = {**document.payload(model_name, model_version), TERMS: sorted(set(sparse.indices))}
                points.append(Point(id=pid, dense=vector.tolist(), sparse=sparse, payload=payload))
            started = time.perf_counter()
            if pending:
                pending.result()
            result.store_wait_s += time.perf_counter() - started
            pending = writer.submit(store.upsert, points)
            result.embedded += len(points)
            log(f"embedded {result.embedded}/{len(to_embed)}")
        started = time.perf_counter()
        if pending:
            pending.result()
        result.store_wait_s += time.perf_counter() - started


def _chunks(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
