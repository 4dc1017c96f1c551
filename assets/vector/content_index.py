"""`vector/content_index`: every post, video and tweet of silver as a point in Qdrant, kept in sync.

The documents come from `silver.content_documents` (one dbt model that composes each text and its
payload). One sync writes a collection at a time: the asset holds the pool `qdrant` (limit 1). The checks read the
index as published (resources/qdrant.py), so they need no pool and never wait for a sync.
"""

from collections.abc import Iterable, Iterator

import dagster as dg
import psycopg

from assets.automation import refresh_condition
from assets.conventions import OWNER, retry_policy
from assets.vector.search import COLLECTION
from assets.vector.sync import Document, SyncResult, sync
from resources import EmbeddingModelResource, PostgresResource, QdrantResource
from resources.qdrant import POOL
from resources.vector_store import VectorStore

KEY = dg.AssetKey(["vector", "content_index"])
DOCUMENTS = dg.AssetKey(["silver", "content_documents"])

_QUERY = """SELECT document_key, source_type, content_text, network, account_id, created_date, engagement, labels
            FROM silver.content_documents ORDER BY document_key"""


def read_documents(conn: psycopg.Connection) -> Iterator[Document]:
    with conn.cursor(name="content_documents") as cur:
        cur.itersize = 2000
        cur.execute(_QUERY)
        for *columns, labels in cur:
            yield Document(*columns, labels=tuple(labels or ()))


def sync_documents(
    store: VectorStore,
    documents: Iterable[Document],
    embedder: EmbeddingModelResource,
    *,
    model_version: str | None = None,
    log=lambda message: None,
) -> SyncResult:
    """Sync the store's collection to `documents` with the embedder's model (or another version of it)."""
    return sync(
        store,
        documents,
        encode=embedder.encode,
        dimension=embedder.dimension,
        model_name=embedder.model_name,
        model_version=model_version or embedder.model_version,
        texts_per_call=embedder.texts_per_call,
        log=log,
    )


def sync_index(
    conn: psycopg.Connection,
    store: VectorStore,
    embedder: EmbeddingModelResource,
    *,
    model_version: str | None = None,
    log=lambda message: None,
) -> SyncResult:
    """Sync the store's collection to silver.content_documents."""
    return sync_documents(store, read_documents(conn), embedder, model_version=model_version, log=log)


@dg.asset(
    key=KEY,
    deps=[DOCUMENTS],
    group_name="search",
    kinds={"qdrant"},
    owners=[OWNER],
    description="Hybrid search index of posts, videos and tweets: a dense vector (all-MiniLM-L6-v2, 384-d, cosine) "
    "and a BM25 sparse vector per document, with payload for filtered search: source type, network, account, "
    "created date, engagement, image labels, content hash, model.",
    pool=POOL,
    automation_condition=refresh_condition(partitioned=False),
    retry_policy=retry_policy(5),
)
def content_index(
    context: dg.AssetExecutionContext,
    postgres: PostgresResource,
    qdrant: QdrantResource,
    embedder: EmbeddingModelResource,
) -> dg.MaterializeResult:
    with postgres.connect() as conn, qdrant.writer(COLLECTION, log=context.log.info) as store:
        result = sync_index(conn, store, embedder, log=context.log.info)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.documents,
            "embedded": result.embedded,
            "payload_updates": result.payload_updates,
            "deleted": result.deleted,
            "unchanged": result.unchanged,
            "collection_recreated": result.recreated,
            "model": f"{embedder.model_name} ({embedder.model_version})",
            "encode_s": round(result.encode_s, 3),
            "store_wait_s": round(result.store_wait_s, 3),
            "store": dg.MetadataValue.json(store.describe()),
        }
    )


def _expected(postgres: PostgresResource) -> dict[str, str]:
    with postgres.connect() as conn:
        return {document.point_id: document.content_hash for document in read_documents(conn)}


@dg.asset_check(
    asset=KEY,
    blocking=True,
    description="Postgres ↔ Qdrant: the same ids with the same content hashes, and equal counts.",
)
def postgres_qdrant_consistent(postgres: PostgresResource, qdrant: QdrantResource) -> dg.AssetCheckResult:
    expected = _expected(postgres)
    with qdrant.reader(COLLECTION) as store:
        stored = {pid: payload.get("content_hash") for pid, payload in store.payloads().items()}
    missing = sorted(set(expected) - set(stored))
    stale = sorted(pid for pid in set(expected) & set(stored) if expected[pid] != stored[pid])
    orphans = sorted(set(stored) - set(expected))
    return dg.AssetCheckResult(
        passed=not (missing or stale or orphans),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "postgres_documents": len(expected),
            "qdrant_points": len(stored),
            "missing_points": dg.MetadataValue.json(missing[:20]),
            "stale_hashes": dg.MetadataValue.json(stale[:20]),
            "orphan_points": dg.MetadataValue.json(orphans[:20]),
        },
    )


@dg.asset_check(
    asset=KEY,
    description="Every vector has the model's dimension and every point the current model version.",
)
def vectors_match_the_model(qdrant: QdrantResource, embedder: EmbeddingModelResource) -> dg.AssetCheckResult:
    with qdrant.reader(COLLECTION) as store:
        size = store.dimension()
        versions = {payload.get("model_version") for payload in store.payloads().values()}
    return dg.AssetCheckResult(
        passed=size == embedder.dimension and versions <= {embedder.model_version},
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"dimension": size, "model_versions": dg.MetadataValue.json(sorted(map(str, versions)))},
    )


vector_checks = [postgres_qdrant_consistent, vectors_match_the_model]
