"""The embedded vector store: Qdrant Edge, Qdrant's own engine in this process, published in generations.

An Edge shard with a write-ahead log admits one process at a time, so a reader would collide with the sync. The
shards here have no WAL and their points never change once published, which lets any number of processes read them:

    <folder>/edge/<collection>/
        CURRENT            the name of the generation readers open, replaced atomically
        000007/            published generations: never changed again; the current one and the one before are kept
        .building-000008/  the writer's copy of the current generation, being changed
        .writer.lock       held (flock) by the one writer
        .files.lock        taken in turn (flock) to open, close or copy a generation

Opening and closing a shard rewrites some of its files (its trackers, flags and segment.json: Edge has no read-only
mode), so processes take turns at those moments and at the writer's copy (`.files.lock`): a copy never reads a file
another process is rewriting.

A writer copies the current generation, applies its changes, builds the segments' indexes (HNSW once a segment is
large enough), renames the copy into place and only then points CURRENT at it. Readers therefore see the last
complete index, never a partial one. A shard without a WAL is durable as of its last flush, and the writer flushes
after every batch of points: a writer killed at any moment leaves the current generation untouched, and the next
writer resumes its copy, so the work done before the kill is not done again.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

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

CURRENT = "CURRENT"
BUILDING = ".building-"
LOCK = ".writer.lock"
FILES_LOCK = ".files.lock"
SCROLL_PAGE = 2048
UPSERT_BATCH = 512


class StoreBusyError(RuntimeError):
    """Another writer holds the store."""


class NotPublishedError(RuntimeError):
    """No generation of the collection has been published yet."""


class EdgeStore:
    """One open shard of a collection (see the module docstring for how it is published).

    A writer's store reads the current generation until its first change, which moves it to its own copy
    (`_copy_on_write`): a sync that changes nothing copies and publishes nothing.
    """

    def __init__(
        self,
        shard,
        path: Path,
        *,
        generation: str | None,
        copy_on_write: Callable[[bool], Path] | None = None,
        turn: Callable[[], AbstractContextManager] = nullcontext,
    ) -> None:
        # None until `ensure` creates the collection's first generation.
        self._shard = shard
        self.path = path
        self.generation = generation
        self._copy_on_write = copy_on_write
        # Held while this store opens or closes a published generation (see the module docstring).
        self._turn = turn
        self.changed = False
        self.timings: dict[str, float] = {}
        self._description: dict | None = None

    # -- writing

    def ensure(self, dimension: int) -> bool:
        if self._shard is not None and self.dimension() == dimension and _has_sparse(self.path):
            return False

        self._writable(keep=False)
        self._shard = create_shard(self.path, dimension)
        return True

    def upsert(self, points: Sequence[Point]) -> None:
        import qdrant_edge as q

        if not points:
            return
        self._writable()
        # Flushed before returning: a sync killed after this call keeps these points (see `EdgeCollection.writer`).
        for start in range(0, len(points), UPSERT_BATCH):
            batch = [edge_point(point) for point in points[start : start + UPSERT_BATCH]]
            self._shard.update(q.UpdateOperation.upsert_points(batch))
        self._shard.flush()

    def set_payloads(self, updates: Sequence[tuple[str, dict]]) -> None:
        import qdrant_edge as q

        if updates:
            self._writable()
        for pid, payload in updates:
            self._shard.update(q.UpdateOperation.set_payload([pid], payload))

    def delete(self, ids: Sequence[str]) -> None:
        import qdrant_edge as q

        if ids:
            self._writable()
            self._shard.update(q.UpdateOperation.delete_points(list(ids)))

    def _writable(self, *, keep: bool = True) -> None:
        """Move to the writer's own copy before the first change: of the current data (`keep`), or an empty one."""
        import qdrant_edge as q

        self.changed = True
        if self._copy_on_write is not None:
            started = time.perf_counter()
            with self._turn():
                self._shard.close()
            self.path = self._copy_on_write(keep)
            self._copy_on_write = None
            self._shard = q.EdgeShard.load(str(self.path)) if keep else None
            self.timings["copy"] = time.perf_counter() - started
        elif not keep and self._shard is not None:
            self._shard.close()
            self._shard = None
            shutil.rmtree(self.path)

    # -- reading

    def dimension(self) -> int | None:
        config = _stored_config(self.path)
        return config["vectors"][DENSE]["size"] if config and DENSE in config.get("vectors", {}) else None

    def payloads(self) -> dict[str, dict]:
        import qdrant_edge as q

        if self._shard is None:
            return {}
        points: dict[str, dict] = {}
        offset = None
        while True:
            page, offset = self._shard.scroll(
                q.ScrollRequest(offset=offset, limit=SCROLL_PAGE, with_payload=True, with_vector=False)
            )
            points.update((str(record.id), record.payload or {}) for record in page)
            if offset is None:
                return points

    def count(self) -> int:
        import qdrant_edge as q

        return self._shard.count(q.CountRequest(exact=True))

    def query(self, query: Query) -> list[Match]:
        import qdrant_edge as q

        condition = _filter(query)
        dense = q.Query.Nearest(query.dense, using=DENSE) if query.dense is not None else None
        sparse = (
            q.Query.Nearest(q.SparseVector(query.sparse.indices, query.sparse.values), using=SPARSE)
            if query.sparse is not None
            else None
        )
        if query.mode is Mode.HYBRID:
            request = q.QueryRequest(
                limit=query.limit,
                prefetches=[
                    q.Prefetch(limit=query.candidates, query=dense, filter=condition),
                    q.Prefetch(limit=query.candidates, query=sparse, filter=_filter(query, min_terms=True)),
                ],
                query=q.Fusion.Rrf(k=RRF_K),
                filter=condition,
                with_payload=True,
            )
        else:
            request = q.QueryRequest(
                limit=query.limit,
                query=dense if query.mode is Mode.DENSE else sparse,
                filter=condition,
                with_payload=True,
            )
        return [
            Match(str(point.id), point.score, point.payload or {}) for point in self._shard.query(request)
        ]

    def describe(self) -> dict:
        if self._shard is None:
            held = self._description or {"engine": "qdrant-edge", "path": str(self.path.parent)}
            return {**held, "generation": self.generation}
        info = self._shard.info()
        config = _stored_config(self.path) or {}
        return {
            "engine": "qdrant-edge",
            "path": str(self.path.parent),
            "generation": self.generation,
            "points": info.points_count,
            "segments": info.segments_count,
            "indexed_vectors": info.indexed_vectors_count,
            "payload_indexes": {
                name: f"{str(index.data_type).rsplit('.', 1)[-1].lower()} ({index.points} points)"
                for name, index in info.payload_schema.items()
            },
            "vectors": config.get("vectors"),
            "sparse_vectors": config.get("sparse_vectors"),
            "hnsw": config.get("hnsw_config"),
            "disk_bytes": sum(path.stat().st_size for path in self.path.rglob("*") if path.is_file()),
            **{f"{step}_s": round(seconds, 3) for step, seconds in self.timings.items()},
        }

    def close(self) -> None:
        """Release the shard; `describe` goes on answering with what it held."""
        if self._shard is not None:
            self._description = self.describe()
            with self._turn():
                self._shard.close()
            self._shard = None


class EdgeCollection:
    """The published generations of one collection under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def current(self) -> str | None:
        try:
            return (self.root / CURRENT).read_text().strip() or None
        except FileNotFoundError:
            return None

    @contextmanager
    def reader(self) -> Iterator[EdgeStore]:
        import qdrant_edge as q

        # A writer may prune the generation named by CURRENT between the read and the open: read it again.
        for attempt in range(3):
            generation = self.current()
            if generation is None:
                raise NotPublishedError(f"no index has been published at {self.root} yet")
            try:
                with self._turn():
                    shard = q.EdgeShard.load(str(self.root / generation))
                break
            except Exception:  # qdrant_edge raises plain Exceptions
                if attempt == 2 or self.current() == generation:
                    raise
        store = EdgeStore(shard, self.root / generation, generation=generation, turn=self._turn)
        try:
            yield store
        finally:
            store.close()

    @contextmanager
    def writer(self, log: Callable[[str], None] = lambda message: None) -> Iterator[EdgeStore]:
        import qdrant_edge as q

        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock():
            current = self.current()
            generation = f"{int(current or 0) + 1:06d}"
            building = self.root / (BUILDING + generation)
            for leftover in self.root.glob(BUILDING + "*"):
                if leftover != building:
                    log(f"removing {leftover.name}: a copy of a generation that is no longer current")
                    shutil.rmtree(leftover)

            def copy_on_write(keep: bool) -> Path:
                if keep:
                    with self._turn():
                        shutil.copytree(self.root / current, building)
                return building

            shard = self._resume(building, log)
            if shard is not None or current is None:
                store = EdgeStore(shard, building, generation=generation)
                store.changed = shard is not None
            else:
                # Read the current generation until the first change (see `EdgeStore`).
                with self._turn():
                    shard = q.EdgeShard.load(str(self.root / current))
                store = EdgeStore(
                    shard,
                    self.root / current,
                    generation=current,
                    copy_on_write=copy_on_write,
                    turn=self._turn,
                )
            try:
                yield store
                if store.changed:
                    if store._shard is None:
                        raise NotPublishedError(
                            f"nothing to publish at {self.root}: the writer never called ensure()"
                        )
                    started = time.perf_counter()
                    store._shard.optimize()
                    store._shard.flush()
                    store.timings["optimize"] = time.perf_counter() - started
            finally:
                # On an error the copy stays, flushed up to its last write: the next writer resumes it.
                store.close()
            if store.changed:
                self._publish(building, generation)
                store.generation = generation

    @staticmethod
    def _resume(building: Path, log: Callable[[str], None]):
        """The copy a writer that did not finish left, as of its last flush; None if there is none to use."""
        import qdrant_edge as q

        if not building.exists():
            return None
        try:
            shard = q.EdgeShard.load(str(building))
        except Exception as exc:  # qdrant_edge raises plain Exceptions
            log(f"discarding {building.name}, left by a sync that did not finish and unreadable: {exc}")
            shutil.rmtree(building)
            return None
        log(f"resuming {building.name}, left by a sync that did not finish: what it wrote is kept")
        return shard

    def _publish(self, building: Path, generation: str) -> None:
        previous = self.current()
        _fsync_tree(building)
        building.rename(self.root / generation)
        pointer = self.root / (CURRENT + ".tmp")
        with pointer.open("w") as handle:
            handle.write(generation + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        pointer.replace(self.root / CURRENT)
        _fsync_dir(self.root)
        # Readers of the previous generation may still be opening it; anything older is nobody's.
        keep = {generation, previous}
        for old in self.root.iterdir():
            if old.is_dir() and old.name.isdigit() and old.name not in keep:
                shutil.rmtree(old, ignore_errors=True)

    @contextmanager
    def _turn(self) -> Iterator[None]:
        """This process's turn at the published generations' files (see the module docstring)."""
        with (self.root / FILES_LOCK).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        with (self.root / LOCK).open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreBusyError(f"another sync is writing the index at {self.root}") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def create_shard(path: Path, dimension: int):
    """A new empty shard at `path` with the collection's layout (resources/vector_store.py) and payload indexes."""
    import qdrant_edge as q

    # No WAL: a shard becomes durable at flush, before it is published, and a shard without one can be opened by
    # several processes at once.
    shard = q.EdgeShard.create(
        str(path),
        q.EdgeConfig(
            vectors={DENSE: q.EdgeVectorParams(size=dimension, distance=q.Distance.Cosine)},
            sparse_vectors={SPARSE: q.EdgeSparseVectorParams(modifier=q.Modifier.Idf)},
            wal_enabled=False,
        ),
    )
    for name, schema in INDEXED_FIELDS.items():
        shard.update(
            q.UpdateOperation.create_field_index(name, getattr(q.PayloadSchemaType, schema.capitalize()))
        )
    return shard


def edge_point(point: Point):
    import qdrant_edge as q

    return q.Point(
        id=point.id,
        vector={DENSE: point.dense, SPARSE: q.SparseVector(point.sparse.indices, point.sparse.values)},
        payload=point.payload,
    )


def _filter(query: Query, *, min_terms: bool = False):
    """The query's filters; `min_terms`: also its minimum-should-match on BM25 terms (see vector_store)."""
    import qdrant_edge as q

    must = [q.FieldCondition(key=name, match=q.MatchValue(value)) for name, value in query.filters.matches()]
    if query.filters.since_day is not None:
        must.append(q.FieldCondition(key="created_day", range=q.RangeFloat(gte=query.filters.since_day)))
    min_should = None
    if min_terms:
        terms = [q.FieldCondition(key=TERMS, match=q.MatchValue(term)) for term in query.terms]
        min_should = q.MinShould(conditions=terms, min_count=query.min_terms)
    return q.Filter(must=must, min_should=min_should) if must or min_should else None


def _stored_config(path: Path) -> dict | None:
    try:
        return json.loads((path / "edge_config.json").read_text())
    except FileNotFoundError:
        return None


def _has_sparse(path: Path) -> bool:
    return SPARSE in ((_stored_config(path) or {}).get("sparse_vectors") or {})


def _fsync_tree(root: Path) -> None:
    for folder, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                os.fsync(handle.fileno())
        _fsync_dir(Path(folder))


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
