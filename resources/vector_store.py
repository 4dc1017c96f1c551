"""What a vector index asks of its store, whichever engine holds it: Qdrant Edge in this process, or a Qdrant server.

Both engines store the same layout — a dense vector named `dense` (cosine) and a BM25 sparse vector named `bm25`
(IDF computed by the engine) per point, and the same payload indexes — so the sync, the checks and search run one
code path. The sparse vectors come from Qdrant Edge's BM25 tokenizer on both engines, so a document and a query are
always cut into the same terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Protocol

DENSE = "dense"
SPARSE = "bm25"
# The payload field holding a point's BM25 term ids (its sparse vector's indices), for the hybrid query's
# minimum-should-match.
TERMS = "terms"
# Payload fields that filters use; both engines index them.
INDEXED_FIELDS = {
    "source_type": "keyword",
    "network": "keyword",
    "account_id": "keyword",
    "created_day": "integer",
    "labels": "keyword",
    TERMS: "integer",
}
# BM25's expected document length in terms after stop words. The generated drop's posts hold 18.6 distinct terms
# on average (videos with a description more); BM25's default (256, for web pages) would leave every document
# "short" and long ones unpenalized.
BM25_AVG_LEN = 24.0
# Hybrid search fuses the dense and the sparse ranking by reciprocal rank (k: the usual 60). Its sparse side only
# brings documents holding at least this share of the query's terms (rounded down, at least one): Lucene's
# "minimum should match". A word or two of a sentence-long query ("last night's big game") must not pull in
# every document that shares that word; a one- or two-term query (a hashtag, a brand) is unaffected.
RRF_K = 60
MIN_SHOULD_MATCH = 0.75


class Mode(StrEnum):
    DENSE = "dense"
    SPARSE = "sparse"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class Point:
    id: str
    dense: list[float]
    sparse: SparseVector
    payload: dict


@dataclass(frozen=True)
class Filters:
    network: str | None = None
    account_id: str | None = None
    source_type: str | None = None
    label: str | None = None
    since_day: int | None = None  # YYYYMMDD

    def matches(self) -> list[tuple[str, str]]:
        """(payload field, value) pairs that must match exactly."""
        pairs = (
            ("network", self.network),
            ("account_id", self.account_id),
            ("source_type", self.source_type),
            ("labels", self.label),
        )
        return [(name, value) for name, value in pairs if value]


@dataclass(frozen=True)
class Match:
    id: str
    score: float
    payload: dict


@dataclass(frozen=True)
class Query:
    """A search: the dense vector for `dense`/`hybrid`, the sparse one for `sparse`/`hybrid`."""

    mode: Mode
    limit: int
    filters: Filters
    dense: list[float] | None = None
    sparse: SparseVector | None = None

    @property
    def terms(self) -> list[int]:
        return sorted(set(self.sparse.indices)) if self.sparse is not None else []

    @property
    def min_terms(self) -> int:
        """How many of the query's terms a document must hold to come from the hybrid query's sparse side."""
        return max(1, int(MIN_SHOULD_MATCH * len(self.terms)))

    @property
    def candidates(self) -> int:
        """How many each side of a hybrid query brings to the fusion: enough that a document ranked well by
        only one side still reaches the top `limit`."""
        return max(4 * self.limit, 40)


class VectorStore(Protocol):
    """One collection of one engine. A writer's changes become visible to readers when its `writer()` ends."""

    def ensure(self, dimension: int) -> bool:
        """Make the collection hold this layout with dense vectors of `dimension`; True if it was (re)created."""

    def dimension(self) -> int | None: ...

    def payloads(self) -> dict[str, dict]:
        """Every point's payload by id."""

    def upsert(self, points: Sequence[Point]) -> None: ...

    def set_payloads(self, updates: Sequence[tuple[str, dict]]) -> None:
        """Set these payload fields of existing points, keeping their vectors and other fields."""

    def delete(self, ids: Sequence[str]) -> None: ...

    def count(self) -> int: ...

    def query(self, query: Query) -> list[Match]: ...

    def describe(self) -> dict:
        """The engine, where it lives, and the collection's configuration and indexes, for the asset's metadata."""


@cache
def _bm25():
    import qdrant_edge

    return qdrant_edge.Bm25(qdrant_edge.Bm25Config(avg_len=BM25_AVG_LEN, language="english"))


def bm25_document(text: str) -> SparseVector:
    vector = _bm25().embed_document(text)
    return SparseVector(list(vector.indices), list(vector.values))


def bm25_query(text: str) -> SparseVector:
    vector = _bm25().embed_query(text)
    return SparseVector(list(vector.indices), list(vector.values))
