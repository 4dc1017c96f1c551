"""A collection on a Qdrant server, through qdrant-client: the same layout and payload indexes as the embedded store.

A server serves readers while it writes, so there are no generations here: every write waits for the server's
confirmation, and readers see each write as it is confirmed.
"""

from __future__ import annotations

from collections.abc import Sequence

from resources.vector_store import (
    DENSE,
    INDEXED_FIELDS,
    RRF_K,
    SPARSE,
    TERMS,
    Match,
    Mode,
    Point,
    Query,
)

SCROLL_PAGE = 1024
UPSERT_BATCH = 256


class ServerStore:
    def __init__(self, client, collection: str, *, server: str) -> None:
        self._client = client
        self.collection = collection
        self.server = server

    def ensure(self, dimension: int) -> bool:
        from qdrant_client import models

        if self._client.collection_exists(self.collection):
            if self.dimension() == dimension and SPARSE in (self._params().sparse_vectors or {}):
                return False
            self._client.delete_collection(self.collection)
        self._client.create_collection(
            self.collection,
            vectors_config={DENSE: models.VectorParams(size=dimension, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        for name, schema in INDEXED_FIELDS.items():
            self._client.create_payload_index(
                self.collection, field_name=name, field_schema=models.PayloadSchemaType(schema), wait=True
            )
        return True

    def dimension(self) -> int | None:
        if not self._client.collection_exists(self.collection):
            return None
        vectors = self._params().vectors
        return vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None

    def payloads(self) -> dict[str, dict]:
        points: dict[str, dict] = {}
        offset = None
        while True:
            page, offset = self._client.scroll(
                self.collection, limit=SCROLL_PAGE, offset=offset, with_payload=True, with_vectors=False
            )
            points.update((str(point.id), point.payload or {}) for point in page)
            if offset is None:
                return points

    def upsert(self, points: Sequence[Point]) -> None:
        from qdrant_client import models

        for start in range(0, len(points), UPSERT_BATCH):
            batch = [
                models.PointStruct(
                    id=point.id,
                    vector={
                        DENSE: point.dense,
                        SPARSE: models.SparseVector(indices=point.sparse.indices, values=point.sparse.values),
                    },
                    payload=point.payload,
                )
                for point in points[start : start + UPSERT_BATCH]
            ]
            self._client.upsert(self.collection, points=batch, wait=True)

    def set_payloads(self, updates: Sequence[tuple[str, dict]]) -> None:
        from qdrant_client import models

        operations = [
            models.OverwritePayloadOperation(
                overwrite_payload=models.SetPayload(payload=payload, points=[pid])
            )
            for pid, payload in updates
        ]
        for start in range(0, len(operations), UPSERT_BATCH):
            self._client.batch_update_points(
                self.collection, update_operations=operations[start : start + UPSERT_BATCH], wait=True
            )

    def delete(self, ids: Sequence[str]) -> None:
        from qdrant_client import models

        for start in range(0, len(ids), UPSERT_BATCH):
            self._client.delete(
                self.collection,
                points_selector=models.PointIdsList(points=list(ids[start : start + UPSERT_BATCH])),
                wait=True,
            )

    def count(self) -> int:
        return self._client.count(self.collection, exact=True).count

    def query(self, query: Query) -> list[Match]:
        from qdrant_client import models

        condition = _filter(query)
        sparse = (
            models.SparseVector(indices=query.sparse.indices, values=query.sparse.values)
            if query.sparse is not None
            else None
        )
        if query.mode is Mode.HYBRID:
            response = self._client.query_points(
                self.collection,
                prefetch=[
                    models.Prefetch(query=query.dense, using=DENSE, limit=query.candidates, filter=condition),
                    models.Prefetch(
                        query=sparse,
                        using=SPARSE,
                        limit=query.candidates,
                        filter=_filter(query, min_terms=True),
                    ),
                ],
                query=models.RrfQuery(rrf=models.Rrf(k=RRF_K)),
                query_filter=condition,
                limit=query.limit,
                with_payload=True,
            )
        else:
            response = self._client.query_points(
                self.collection,
                query=query.dense if query.mode is Mode.DENSE else sparse,
                using=DENSE if query.mode is Mode.DENSE else SPARSE,
                query_filter=condition,
                limit=query.limit,
                with_payload=True,
            )
        return [Match(str(point.id), point.score, point.payload or {}) for point in response.points]

    def describe(self) -> dict:
        info = self._client.get_collection(self.collection)
        params = info.config.params
        return {
            "engine": "qdrant-server",
            "path": f"{self.server}/collections/{self.collection}",
            "points": info.points_count,
            "segments": info.segments_count,
            "indexed_vectors": info.indexed_vectors_count,
            "payload_indexes": {name: str(index.data_type) for name, index in info.payload_schema.items()},
            "vectors": {
                name: params.model_dump(mode="json") for name, params in (params.vectors or {}).items()
            },
            "sparse_vectors": {
                name: params.model_dump(mode="json") for name, params in (params.sparse_vectors or {}).items()
            },
            "hnsw": info.config.hnsw_config.model_dump(mode="json"),
        }

    def _params(self):
        return self._client.get_collection(self.collection).config.params


def _filter(query: Query, *, min_terms: bool = False):
    """The query's filters; `min_terms`: also its minimum-should-match on BM25 terms (see vector_store)."""
    from qdrant_client import models

    must: list = [
        models.FieldCondition(key=name, match=models.MatchValue(value=value))
        for name, value in query.filters.matches()
    ]
    if query.filters.since_day is not None:
        must.append(models.FieldCondition(key="created_day", range=models.Range(gte=query.filters.since_day)))
    min_should = None
    if min_terms:
        terms = [
            models.FieldCondition(key=TERMS, match=models.MatchValue(value=term)) for term in query.terms
        ]
        min_should = models.MinShould(conditions=terms, min_count=query.min_terms)
    return models.Filter(must=must, min_should=min_should) if must or min_should else None
