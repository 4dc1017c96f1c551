"""Vector index throughput (`vector_index`): Strata's sync into Qdrant Edge against raw `model.encode` and raw Edge
upserts, and the write path of both embedded engines on the same points.

On the same texts (generated social posts, composed like `silver.content_documents`), in one process with the
model already loaded, every figure is the median of three trials, the trials of the different figures alternating
(so that a neighbour's load on the machine weighs on all of them alike):

- `raw model.encode`: `SentenceTransformer.encode(all texts, batch_size=<the resource's batch size>)` — no sync.
- `raw Edge upsert`: the precomputed points (the raw encode's vectors, `bm25_document` sparse vectors, the sync's
  payloads) written with `qdrant_edge` alone: `EdgeShard.create` with the product's layout (a named cosine dense
  vector, a BM25 sparse vector with IDF, the same payload indexes, no WAL), `upsert_points` in the store's batch
  size, one `flush()` at the end. Edge at its best: the anchor of the store's write path.
- `EdgeStore upsert` and `local mode upsert`: the same points through the product's `VectorStore` interface
  (`ensure`, then `upsert` of every point): Qdrant Edge through `QdrantResource.writer` (it flushes after each
  `upsert` call, and optimizes and publishes a generation when the block ends), and `ServerStore` on
  `QdrantClient(path=…)`, qdrant-client's local mode, the embedded engine Edge replaced. Local mode writes a few
  hundred points a second, so the two engines are compared on an evenly spread subset of the points.
- `sync (full)`: `assets.vector.sync.sync` into a fresh Edge store through `QdrantResource.writer`, with the real
  `EmbeddingModelResource.encode`; its time is the whole `with writer(…)` block (diffing, encoding overlapped with
  the writes, the final count, optimizing, publishing). The sync's own clock splits it: the share of the wall
  time spent in encode calls, and the share spent waiting for the store's writes.
- `sync (unchanged)`: the same sync again; it must embed nothing and cost ≤ 5 % of the full sync.

Targets: the full sync's texts per second of wall time ≥ 0.85× the rate of raw encode plus raw Edge upsert of the
same texts done one after the other; the sync is bound by encoding (its store share ≤ its encode share); the
unchanged re-run embeds nothing and costs ≤ 5 % of the full sync.
"""

from __future__ import annotations

import shutil
import statistics
import time
import warnings
from datetime import date
from pathlib import Path

import orjson

from strata.bench.core import BenchContext, ScenarioResult
from strata.bench.data import corpus, parseable, scale_for_records

DOCUMENTS = 6_000
QUICK_DOCUMENTS = 600
# qdrant-client's local mode writes ~350 points/s: the engines are compared on this many points.
LOCAL_MODE_POINTS = 2_000
TRIALS = 3
COLLECTION = "content_index"
MIN_WHOLE_SYNC_RATIO = 0.85
MAX_STORE_TO_ENCODE_SHARE = 1.0
MAX_RERUN_FRACTION = 0.05


def documents_from_posts(path, limit: int) -> list:
    """`silver.content_documents`-shaped Documents from raw post JSON lines: title, caption/text and
    hashtags joined as the dbt model does; one document per (network, post_id), the last version wins."""
    from assets.vector.sync import Document

    by_key: dict[str, Document] = {}
    with open(path, "rb") as handle:
        for line in handle:
            post = orjson.loads(line)
            post_id = post.get("post_id") or post.get("postId")
            network = post.get("network")
            if not post_id or not network:
                continue
            tags = post.get("hashtags") or []
            text = " ".join(
                part
                for part in (
                    post.get("title"),
                    post.get("caption") or post.get("text"),
                    " ".join(f"#{t}" for t in tags if isinstance(t, str)) or None,
                )
                if isinstance(part, str) and part.strip()
            )
            if not text:
                continue
            created = str(post.get("created_at") or post.get("createdAt") or "")[:10]
            engagement = 0
            for name in ("like_count", "comment_count", "share_count"):
                value = post.get(name)
                engagement += value if isinstance(value, int) else 0
            key = f"post:{network}:{post_id}"
            by_key[key] = Document(
                key=key,
                source_type="post",
                text=text,
                network=network,
                account_id=post.get("account_id") or post.get("accountId"),
                created_date=date.fromisoformat(created) if len(created) == 10 else None,
                engagement=engagement,
            )
            if len(by_key) >= limit:
                break
    return sorted(by_key.values(), key=lambda d: d.key)


def _rate(count: int, seconds: float | None) -> float | None:
    return count / seconds if count and seconds else None


def _raw_edge_upsert(folder: Path, points: list, dimension: int) -> float:
    """Seconds to write `points` into a fresh shard with qdrant_edge alone, flushed once at the end. Building the
    `qdrant_edge.Point`s is timed: that is where Edge takes in the Python vectors and payloads, half its cost."""
    import qdrant_edge as q

    from resources.edge_store import UPSERT_BATCH, create_shard, edge_point

    shutil.rmtree(folder, ignore_errors=True)
    shard = create_shard(folder, dimension)
    try:
        started = time.perf_counter()
        for start in range(0, len(points), UPSERT_BATCH):
            batch = [edge_point(point) for point in points[start : start + UPSERT_BATCH]]
            shard.update(q.UpdateOperation.upsert_points(batch))
        shard.flush()
        return time.perf_counter() - started
    finally:
        shard.close()


def _same_layout(raw: Path, store: Path) -> None:
    """The anchor must write the collection the product writes, or its rate says nothing about the store's."""
    configs = [orjson.loads((path / "edge_config.json").read_bytes()) for path in (raw, store)]
    if configs[0] != configs[1]:
        raise RuntimeError(f"the raw Edge shard's configuration differs from the store's: {configs}")


def _edge_store_upsert(folder: Path, points: list, dimension: int) -> tuple[float, float, dict]:
    """(seconds in `upsert`, seconds of the whole writer block, the store's description) for a fresh Edge store."""
    from resources.qdrant import QdrantResource

    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    with QdrantResource(url=folder.as_uri()).writer(COLLECTION) as store:
        store.ensure(dimension)
        began = time.perf_counter()
        store.upsert(points)
        upsert_s = time.perf_counter() - began
    return upsert_s, time.perf_counter() - started, store.describe()


def _local_mode_upsert(folder: Path, points: list, dimension: int) -> tuple[float, float]:
    """(seconds in `upsert`, seconds from opening the client to closing it) for a fresh local-mode store."""
    from qdrant_client import QdrantClient

    from resources.server_store import ServerStore

    shutil.rmtree(folder, ignore_errors=True)
    started = time.perf_counter()
    client = QdrantClient(path=str(folder))
    try:
        store = ServerStore(client, COLLECTION, server=f"local mode {folder}")
        with warnings.catch_warnings():
            # Local mode has no payload indexes and warns at each of the store's create_payload_index calls.
            warnings.simplefilter("ignore", UserWarning)
            store.ensure(dimension)
        began = time.perf_counter()
        store.upsert(points)
        upsert_s = time.perf_counter() - began
    finally:
        client.close()
    return upsert_s, time.perf_counter() - started


def _sync(folder: Path, documents: list, embedder) -> tuple[object, float, dict]:
    """(SyncResult, seconds of the whole writer block, the store's description after it) of Strata's sync."""
    from assets.vector.content_index import sync_documents
    from resources.qdrant import QdrantResource

    started = time.perf_counter()
    with QdrantResource(url=folder.as_uri()).writer(COLLECTION) as store:
        result = sync_documents(store, documents, embedder)
    return result, time.perf_counter() - started, store.describe()


def vector_index(ctx: BenchContext) -> ScenarioResult:
    from resources.edge_store import UPSERT_BATCH
    from resources.embeddings import EmbeddingModelResource
    from resources.vector_store import TERMS, Point, bm25_document

    result = ScenarioResult(
        "vector_index",
        "vector index sync (embed + Qdrant Edge) vs raw model.encode and raw Edge upserts; Edge vs qdrant-client "
        "local mode through the store interface, same points",
        columns=[
            ("texts/points", "count", ",d"),
            ("seconds", "seconds", ",.2f"),
            ("per s", "per_s", ",.0f"),
            ("block s", "block_seconds", ",.2f"),
            ("block per s", "block_per_s", ",.0f"),
            ("encode share", "encode_share", ".1%"),
            ("store share", "store_share", ".1%"),
            ("copy s", "copy_seconds", ",.2f"),
            ("optimize s", "optimize_seconds", ",.2f"),
            ("trials", "trials", "d"),
        ],
    )
    wanted = QUICK_DOCUMENTS if ctx.quick else DOCUMENTS
    source = parseable(corpus(ctx.home, scale_for_records(int(wanted * 1.1)), log=ctx.log))
    documents = documents_from_posts(source.path, wanted)
    texts = [d.text for d in documents]
    ctx.log(f"vector_index: {len(documents):,} documents from {source.path.name}")

    embedder = EmbeddingModelResource()
    batch = embedder.batch_size
    model = embedder.model()
    with embedder.autocast():
        model.encode(
            texts[:batch], batch_size=batch, normalize_embeddings=True, show_progress_bar=False
        )  # warm-up

    work = ctx.work_dir / "vector-bench"
    raw_folder, store_folder = work / "raw-edge", work / "edge-store"
    subset_folder, local_folder, sync_folder = work / "edge-subset", work / "local-mode", work / "sync"
    points: list[Point] = []
    subset: list[Point] = []
    times: dict[str, list[float]] = {}
    syncs: list[tuple[object, float, dict]] = []
    stores: list[dict] = []

    def timed(name: str, seconds: float) -> None:
        times.setdefault(name, []).append(seconds)

    try:
        for trial in range(1, TRIALS + 1):
            # Raw encode: the model alone on every text, the resource's batch size, at its best precision on this
            # CPU (bfloat16 autocast where the CPU computes it natively, as the resource encodes).
            ctx.log(f"vector_index: trial {trial}/{TRIALS}: raw model.encode")
            started = time.perf_counter()
            with embedder.autocast():
                vectors = model.encode(
                    texts,
                    batch_size=batch,
                    normalize_embeddings=True,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
            timed("encode", time.perf_counter() - started)
            if not points:
                # The points as the sync builds them: its payload plus the BM25 term ids.
                for d, v in zip(documents, vectors, strict=True):
                    sparse = bm25_document(d.text)
                    payload = {
                        **d.payload(embedder.model_name, embedder.model_version),
                        TERMS: sorted(set(sparse.indices)),
                    }
                    points.append(Point(id=d.point_id, dense=v.tolist(), sparse=sparse, payload=payload))
                subset = points[:: max(1, len(points) // LOCAL_MODE_POINTS)][:LOCAL_MODE_POINTS]

            ctx.log(
                f"vector_index: trial {trial}/{TRIALS}: raw Edge upsert, EdgeStore and local-mode upserts"
            )
            timed("raw edge", _raw_edge_upsert(raw_folder, points, embedder.dimension))
            upsert_s, block_s, described = _edge_store_upsert(store_folder, points, embedder.dimension)
            _same_layout(raw_folder, store_folder / "edge" / COLLECTION / described["generation"])
            timed("store", upsert_s)
            timed("store block", block_s)
            stores.append(described)
            upsert_s, block_s, _ = _edge_store_upsert(subset_folder, subset, embedder.dimension)
            timed("subset", upsert_s)
            timed("subset block", block_s)
            upsert_s, block_s = _local_mode_upsert(local_folder, subset, embedder.dimension)
            timed("local", upsert_s)
            timed("local block", block_s)

            ctx.log(f"vector_index: trial {trial}/{TRIALS}: Strata's sync, full")
            shutil.rmtree(sync_folder, ignore_errors=True)
            syncs.append(_sync(sync_folder, documents, embedder))

        ctx.log("vector_index: Strata's sync, nothing changed")
        reruns = [_sync(sync_folder, documents, embedder) for _ in range(TRIALS)]
    finally:
        shutil.rmtree(work, ignore_errors=True)

    encode_s, raw_edge_s = statistics.median(times["encode"]), statistics.median(times["raw edge"])
    result.figures["raw model.encode"] = {
        "label": f"SentenceTransformer.encode(all texts, batch_size={batch}, normalize_embeddings=True, "
        f"{'bfloat16 autocast' if embedder.uses_bfloat16() else 'float32'})",
        "count": len(texts),
        "seconds": encode_s,
        "per_s": _rate(len(texts), encode_s),
        "trials": TRIALS,
    }
    result.figures["raw Edge upsert"] = {
        "label": f"qdrant_edge alone: EdgeShard.create (the product's layout, no WAL), upsert_points in batches of "
        f"{UPSERT_BATCH}, one flush()",
        "count": len(points),
        "seconds": raw_edge_s,
        "per_s": _rate(len(points), raw_edge_s),
        "trials": TRIALS,
    }

    def store_figure(label: str, count: int, upsert: str, block: str, **extra) -> dict:
        upsert_s, block_s = statistics.median(times[upsert]), statistics.median(times[block])
        return {
            "label": label,
            "count": count,
            "seconds": upsert_s,
            "per_s": _rate(count, upsert_s),
            "block_seconds": block_s,
            "block_per_s": _rate(count, block_s),
            **extra,
            "trials": TRIALS,
        }

    result.figures["EdgeStore upsert"] = store_figure(
        "EdgeStore through QdrantResource.writer: ensure, upsert (flushed); block: + optimize, publish",
        len(points),
        "store",
        "store block",
        optimize_seconds=statistics.median([d.get("optimize_s") or 0.0 for d in stores]),
    )
    result.figures["EdgeStore upsert (subset)"] = store_figure(
        f"the same, on the subset of {len(subset):,} points", len(subset), "subset", "subset block"
    )
    result.figures["local mode upsert (subset)"] = store_figure(
        f"ServerStore on QdrantClient(path=…), qdrant-client local mode: ensure, upsert (batches of 256, "
        f"wait=True), on the subset of {len(subset):,} points; block: from opening the client to closing it",
        len(subset),
        "local",
        "local block",
    )
    raw_whole_s = encode_s + raw_edge_s
    result.figures["raw encode + raw Edge upsert"] = {
        "label": "raw model.encode of every text, then raw Edge upsert of every point (sum of the medians)",
        "count": len(texts),
        "seconds": raw_whole_s,
        "per_s": _rate(len(texts), raw_whole_s),
    }
    full_s = statistics.median([wall for _, wall, _ in syncs])
    full = syncs[-1][0]
    encode_share = statistics.median([r.encode_s / wall for r, wall, _ in syncs])
    store_share = statistics.median([r.store_wait_s / wall for r, wall, _ in syncs])
    result.figures["sync (full)"] = {
        "label": "assets.vector.sync.sync into a fresh Edge store, the whole QdrantResource.writer block",
        "count": full.embedded,
        "documents": full.documents,
        "seconds": full_s,
        "per_s": _rate(full.embedded, full_s),
        "encode_share": encode_share,
        "store_share": store_share,
        "encode_seconds": statistics.median([r.encode_s for r, _, _ in syncs]),
        "store_wait_seconds": statistics.median([r.store_wait_s for r, _, _ in syncs]),
        "optimize_seconds": statistics.median([d.get("optimize_s") or 0.0 for _, _, d in syncs]),
        "copy_seconds": statistics.median([d.get("copy_s") or 0.0 for _, _, d in syncs]),
        "trials": TRIALS,
    }
    rerun = reruns[-1][0]
    rerun_s = statistics.median([wall for _, wall, _ in reruns])
    result.figures["sync (unchanged)"] = {
        "label": "the same sync again, nothing changed",
        "count": max(r.embedded for r, _, _ in reruns),
        "documents": rerun.documents,
        "unchanged": rerun.unchanged,
        "seconds": rerun_s,
        "trials": TRIALS,
    }

    result.ratio(
        "EdgeStore/raw Edge upsert (points/s)",
        result.figures["EdgeStore upsert"]["per_s"],
        result.figures["raw Edge upsert"]["per_s"],
    )
    result.ratio(
        "Edge/local mode (upsert points/s, subset)",
        result.figures["EdgeStore upsert (subset)"]["per_s"],
        result.figures["local mode upsert (subset)"]["per_s"],
    )
    result.ratio(
        "Edge/local mode (whole write block, subset)",
        result.figures["EdgeStore upsert (subset)"]["block_per_s"],
        result.figures["local mode upsert (subset)"]["block_per_s"],
    )
    whole_ratio = result.ratio(
        "full sync/(raw encode + raw Edge upsert)",
        result.figures["sync (full)"]["per_s"],
        _rate(len(texts), raw_whole_s),
    )
    result.ratio(
        "sync encode/raw encode (texts/s)",
        _rate(full.embedded, result.figures["sync (full)"]["encode_seconds"]),
        result.figures["raw model.encode"]["per_s"],
    )
    share_ratio = result.ratio("sync store share/encode share", store_share, encode_share)
    rerun_fraction = result.ratio("unchanged re-run/full sync", rerun_s, full_s)
    result.target("full sync/(raw encode + raw Edge upsert)", whole_ratio, ">=", MIN_WHOLE_SYNC_RATIO, "×")
    result.target("sync store share/encode share", share_ratio, "<=", MAX_STORE_TO_ENCODE_SHARE, "×")
    result.target(
        "texts embedded by the unchanged re-run", float(result.figures["sync (unchanged)"]["count"]), "<=", 0
    )
    result.target("unchanged re-run/full sync", rerun_fraction, "<=", MAX_RERUN_FRACTION, "×")
    result.notes.append(
        "the throughput target is on whole-sync figures: texts / wall time of the whole writer block of the full "
        f"sync (reading the store, payloads, encoding {embedder.texts_per_call} texts per call with "
        f"batch_size={batch} while the previous call's points are written, the final count, optimizing, "
        "publishing) against texts / (raw encode + raw Edge upsert of the same texts and points); the points' "
        "BM25 vectors and payloads are built outside the raw timings and inside the sync's"
    )
    result.notes.append(
        "encode share and store share: the sync's own clock (SyncResult.encode_s, .store_wait_s) over the wall "
        "time of the block; the store share is the time the encoder waited for the previous call's writes, so "
        "a share near 0 means the writes hid behind encoding. copy s and optimize s: the writer's own timings "
        "(store.describe()); a fresh store has no published generation to copy"
    )
    result.notes.append(
        f"Edge vs local mode on the same {len(subset):,} of the {len(points):,} points (one in "
        f"{max(1, len(points) // LOCAL_MODE_POINTS)}): local mode writes too slowly for all of them. Local mode "
        "ignores the payload indexes the store asks for (Edge builds them), and has no optimize or publish step"
    )
    result.notes.append(
        f"medians of {TRIALS} alternating trials; stores on disk under {work}, a fresh folder for each full write"
    )
    if full.embedded != len(documents):
        result.notes.append(f"the full sync embedded {full.embedded} of {len(documents)} documents")
    return result
