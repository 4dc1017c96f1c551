"""The content index against a real Qdrant store and the real offline model: incremental by content hash,
deletes propagate, filters restrict, and the consistency check catches a point deleted behind its back.

The documents table is built here in the shape `silver.content_documents` has, so each case controls
exactly which rows change; the chain from the sample drop is covered end to end elsewhere."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assets.vector.content_index import content_index, postgres_qdrant_consistent, vectors_match_the_model
from assets.vector.search import COLLECTION, search
from assets.vector.sync import point_id
from resources import EmbeddingModelResource, PostgresResource, QdrantResource
from resources.vector_store import INDEXED_FIELDS

TOPICS = {
    "pets": ["my cat knocked the plant off the shelf again", "puppy training day three, he finally sits"],
    "cooking": ["slow roasted tomatoes with garlic and basil", "the perfect sourdough crumb after 48 hours"],
    "finance": ["how I paid off my student loans in two years", "index funds versus picking single stocks"],
    "fitness": ["leg day: squats, lunges and a brutal finisher", "couch to 5k week six, still running"],
}


def documents() -> list[tuple]:
    rows = []
    for t, (topic, texts) in enumerate(TOPICS.items()):
        for i in range(25):
            network = ("tiktok", "youtube")[i % 2]
            text = f"{texts[i % 2]} #{topic} {i}"
            rows.append(
                (
                    f"post:{network}:{topic}{i}",
                    "post",
                    text,
                    network,
                    f"acc{i % 5}",
                    date(2026, 11, 1) + timedelta(days=i % 7),
                    i * 10 + t,
                    labels(topic, i),
                )
            )
    return rows


def with_term(term: str) -> set[str]:
    """The keys of the documents whose text holds `term` as a word (a hashtag counts as its word)."""
    return {key for key, _, text, *_ in documents() if term in text.replace("#", " ").split()}


def labels(topic: str, i: int) -> list[str]:
    """What the vision service saw in a post's media: dogs in every other pets post, plates in every third
    cooking post."""
    if topic == "pets":
        return ["dog", "park"] if i % 2 == 0 else ["cat"]
    return ["plate"] if topic == "cooking" and i % 3 == 0 else []


@pytest.fixture(scope="module")
def model() -> EmbeddingModelResource:
    return EmbeddingModelResource(batch_size=32)


def reset_documents(warehouse: PostgresResource) -> None:
    """`silver.content_documents` holding exactly `documents()`."""
    with warehouse.connect() as conn:
        conn.execute(
            """CREATE SCHEMA IF NOT EXISTS silver;
               DROP TABLE IF EXISTS silver.content_documents;
               CREATE TABLE silver.content_documents (document_key text PRIMARY KEY, source_type text, content_text text,
                   network text, account_id text, created_date date, engagement bigint, labels text[])"""
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO silver.content_documents VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", documents()
            )


@pytest.fixture(scope="module")
def synced_store(warehouse: PostgresResource, model, tmp_path_factory) -> Path:
    """A local Qdrant store holding the index of `documents()`, built once; each test works on a copy of it."""
    reset_documents(warehouse)
    store = tmp_path_factory.mktemp("synced") / "qdrant"
    materialize({"postgres": warehouse, "qdrant": QdrantResource(url=store.as_uri()), "embedder": model})
    return store


@pytest.fixture
def empty(warehouse: PostgresResource, model, tmp_path: Path) -> dict:
    """The documents table and a Qdrant store that has never been synced."""
    reset_documents(warehouse)
    return {
        "postgres": warehouse,
        "qdrant": QdrantResource(url=(tmp_path / "qdrant").as_uri()),
        "embedder": model,
    }


@pytest.fixture
def index(warehouse: PostgresResource, model, synced_store: Path, tmp_path: Path) -> dict:
    """The documents table and a Qdrant store in sync with it: the state after a first sync, whatever ran before."""
    reset_documents(warehouse)
    shutil.copytree(synced_store, tmp_path / "qdrant")
    return {
        "postgres": warehouse,
        "qdrant": QdrantResource(url=(tmp_path / "qdrant").as_uri()),
        "embedder": model,
    }


def materialize(resources: dict, instance: dg.DagsterInstance | None = None) -> dict:
    result = dg.materialize([content_index], resources=resources, instance=instance)
    (materialization,) = result.asset_materializations_for_node(content_index.op.name)
    return {name: value.value for name, value in materialization.metadata.items()}


def run_checks(resources: dict) -> dict[str, bool]:
    result = dg.materialize(
        [content_index, postgres_qdrant_consistent, vectors_match_the_model],
        resources=resources,
        selection=dg.AssetSelection.checks(postgres_qdrant_consistent, vectors_match_the_model),
        raise_on_error=False,
    )
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_first_sync_embeds_every_document_and_a_topic_query_finds_its_topic(empty):
    first = materialize(empty)

    hits = search(empty["qdrant"], empty["embedder"], "my dog and my kitten", limit=5)

    assert (first["dagster/row_count"], first["embedded"], first["deleted"]) == (100, 100, 0)
    assert [hit.document_key.split(":")[2].rstrip("0123456789") for hit in hits] == ["pets"] * 5
    assert run_checks(empty) == {"postgres_qdrant_consistent": True, "vectors_match_the_model": True}
    store = first["store"]
    assert (store["engine"], store["generation"], store["points"]) == ("qdrant-edge", "000001", 100)
    assert store["vectors"] == {"dense": {"size": 384, "distance": "Cosine"}}
    assert store["sparse_vectors"] == {"bm25": {"modifier": "idf"}}
    assert {name: index.split(" ")[0] for name, index in store["payload_indexes"].items()} == INDEXED_FIELDS


def test_sparse_search_finds_exactly_the_documents_holding_the_term_and_hybrid_ranks_them_first(index):
    sourdough = search(index["qdrant"], index["embedder"], "sourdough", mode="sparse", limit=50)
    hashtag = search(index["qdrant"], index["embedder"], "#fitness", mode="sparse", limit=50)
    hybrid = search(index["qdrant"], index["embedder"], "sourdough", limit=5)
    meaning_only = search(index["qdrant"], index["embedder"], "my dog and my kitten", mode="sparse")

    assert len(with_term("sourdough")) == 12 and {h.document_key for h in sourdough} == with_term("sourdough")
    assert len(with_term("fitness")) == 25 and {h.document_key for h in hashtag} == with_term("fitness")
    assert {hit.document_key for hit in hybrid} <= with_term("sourdough")
    # No document holds "dog" or "kitten": exact terms alone find nothing, where meaning finds the pets.
    assert meaning_only == []


def test_filters_restrict_results_by_network_account_and_date(index):
    hits = search(
        index["qdrant"],
        index["embedder"],
        "baking bread",
        network="youtube",
        account="acc1",
        since=date(2026, 11, 4),
        limit=50,
    )

    assert hits
    assert {hit.network for hit in hits} == {"youtube"} and {hit.account_id for hit in hits} == {"acc1"}
    assert all(hit.created_date >= "2026-11-04" for hit in hits)


def test_a_label_filter_keeps_exactly_the_posts_whose_media_show_it(index):
    hits = search(index["qdrant"], index["embedder"], "an animal at home", label="dog", limit=50)

    with_dog = {key for key, *_, found in documents() if "dog" in found}
    assert len(with_dog) == 13 and {hit.document_key for hit in hits} == with_dog
    assert all(hit.labels == ["dog", "park"] for hit in hits)


def test_rematerializing_with_no_change_embeds_nothing(index):
    again = materialize(index)

    assert (again["embedded"], again["payload_updates"], again["deleted"], again["unchanged"]) == (
        0,
        0,
        0,
        100,
    )


def test_changing_one_caption_reembeds_exactly_it_and_engagement_or_labels_only_update_payload(
    index, warehouse
):
    with warehouse.connect() as conn:
        conn.execute(
            "UPDATE silver.content_documents SET content_text = 'a brand new caption about tax returns' WHERE document_key = 'post:tiktok:finance0'"
        )
        conn.execute(
            "UPDATE silver.content_documents SET engagement = engagement + 1 WHERE document_key = 'post:youtube:pets1'"
        )
        # Labels a vision model returned after the post was indexed.
        conn.execute(
            "UPDATE silver.content_documents SET labels = '{dumbbell}' WHERE document_key = 'post:youtube:fitness3'"
        )

    changed = materialize(index)

    assert (changed["embedded"], changed["payload_updates"], changed["unchanged"]) == (1, 2, 97)
    [labelled] = search(index["qdrant"], index["embedder"], "workout", label="dumbbell", limit=5)
    assert labelled.document_key == "post:youtube:fitness3"
    top = search(index["qdrant"], index["embedder"], "tax returns", limit=1)[0]
    assert top.document_key == "post:tiktok:finance0"


def test_deleting_a_document_removes_its_point(index, warehouse):
    with warehouse.connect() as conn:
        conn.execute("DELETE FROM silver.content_documents WHERE document_key = 'post:tiktok:pets0'")

    result = materialize(index)

    assert result["deleted"] == 1 and result["dagster/row_count"] == 99
    with index["qdrant"].reader(COLLECTION) as store:
        assert point_id("post:tiktok:pets0") not in store.payloads() and store.count() == 99


def test_the_consistency_check_fails_when_a_point_is_deleted_behind_its_back(index):
    with index["qdrant"].writer(COLLECTION) as store:
        store.delete([point_id("post:youtube:cooking1")])

    assert run_checks(index)["postgres_qdrant_consistent"] is False
    materialize(index)  # the next sync repairs it
    assert run_checks(index)["postgres_qdrant_consistent"] is True


def test_a_model_change_reembeds_every_document(index, warehouse):
    from assets.vector.content_index import sync_index

    with warehouse.connect() as conn, index["qdrant"].writer(COLLECTION) as store:
        result = sync_index(conn, store, index["embedder"], model_version="a-retrained-model==2.0")

    assert result.embedded == result.documents == 100


def test_searches_from_another_process_during_a_full_sync_see_the_last_complete_index(index, warehouse):
    """A full re-embed (a new model version) writes in a child process while this one searches in a loop: every
    search answers, from one whole generation — all points of the old model until the new index is published."""
    root = Path(index["qdrant"].folder) / "edge" / COLLECTION
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                from assets.vector.content_index import sync_index
                from assets.vector.search import COLLECTION
                from resources import EmbeddingModelResource, PostgresResource, QdrantResource
                with PostgresResource(url={warehouse.url!r}).connect() as conn:
                    with QdrantResource(url={index["qdrant"].url!r}).writer(COLLECTION) as store:
                        sync_index(conn, store, EmbeddingModelResource(texts_per_call=10), model_version="v2")
                """
            ),
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    seen: list[tuple[bool, int, frozenset]] = []
    while writer.poll() is None:
        writing = any(root.glob(".building-*"))
        with index["qdrant"].reader(COLLECTION) as store:
            versions = frozenset(payload["model_version"] for payload in store.payloads().values())
            seen.append((writing, store.count(), versions))
        assert search(index["qdrant"], index["embedder"], "sourdough", limit=3)
    assert writer.wait() == 0, writer.stderr.read()
    with index["qdrant"].reader(COLLECTION) as store:
        final = frozenset(payload["model_version"] for payload in store.payloads().values())

    assert any(writing for writing, _, _ in seen), "no search ran while the sync was writing"
    assert {(count, len(versions)) for _, count, versions in seen} == {(100, 1)}
    assert final == {"v2"} and not any(root.glob(".building-*"))


def test_a_local_mode_store_is_rebuilt_into_edge_once_and_removed(empty):
    from qdrant_client import QdrantClient, models

    folder = Path(empty["qdrant"].folder)
    old = QdrantClient(path=str(folder))
    old.create_collection(
        COLLECTION, vectors_config=models.VectorParams(size=3, distance=models.Distance.COSINE)
    )
    old.close()
    instance = dg.DagsterInstance.ephemeral()

    first = materialize(empty, instance)
    again = materialize(empty, instance)

    assert (first["embedded"], first["store"]["engine"], again["embedded"]) == (100, "qdrant-edge", 0)
    assert not (folder / "meta.json").exists() and not (folder / "collection").exists()
    messages = [entry.user_message for run in instance.get_runs() for entry in instance.all_logs(run.run_id)]
    assert sum("holds a qdrant-client local-mode store" in message for message in messages) == 1


def test_the_qdrant_client_path_runs_the_same_sync_and_search(empty, warehouse):
    """The server engine's code (qdrant-client), exercised here through qdrant-client's in-memory mode, which
    speaks the same API; a real server runs the test below."""
    from qdrant_client import QdrantClient

    from assets.vector.content_index import sync_index
    from resources.server_store import ServerStore
    from resources.vector_store import Filters, Mode, Query, bm25_query

    store = ServerStore(QdrantClient(":memory:"), COLLECTION, server="memory")
    with warehouse.connect() as conn:
        first = sync_index(conn, store, empty["embedder"])
        again = sync_index(conn, store, empty["embedder"])
    sparse = store.query(Query(Mode.SPARSE, 50, Filters(), sparse=bm25_query("sourdough")))
    dense = store.query(
        Query(
            Mode.DENSE, 5, Filters(network="youtube"), dense=empty["embedder"].encode(["my dog"])[0].tolist()
        )
    )

    assert (first.embedded, again.embedded, again.unchanged) == (100, 0, 100)
    assert {match.payload["document_key"] for match in sparse} == with_term("sourdough")
    assert [match.payload["document_key"].split(":")[1:2] for match in dense] == [["youtube"]] * 5
    assert {match.payload["document_key"].split(":")[2].rstrip("0123456789") for match in dense} == {"pets"}


@pytest.mark.skipif(
    not os.environ.get("STRATA_TEST_QDRANT_URL"),
    reason="no Qdrant server here: set STRATA_TEST_QDRANT_URL=http://host:6333 to exercise the server path",
)
def test_the_same_sync_and_search_run_against_a_qdrant_server(empty, warehouse):
    from assets.vector.content_index import sync_index

    server = QdrantResource(url=os.environ["STRATA_TEST_QDRANT_URL"])
    collection = f"strata_test_{uuid.uuid4().hex[:8]}"
    try:
        with warehouse.connect() as conn, server.writer(collection) as store:
            result = sync_index(conn, store, empty["embedder"])
            indexed = set(store.describe()["payload_indexes"])
        hits = search(server, empty["embedder"], "sourdough", mode="sparse", limit=50, collection=collection)
    finally:
        from qdrant_client import QdrantClient

        QdrantClient(url=server.url).delete_collection(collection)
    assert result.embedded == result.documents
    assert {"network", "account_id", "created_day", "source_type", "labels"} == indexed
    assert {hit.document_key for hit in hits} == with_term("sourdough")


def test_strata_search_prints_ranked_json_results(index):
    import json
    import subprocess
    import sys

    env = {**os.environ, "STRATA_QDRANT_URL": index["qdrant"].url}
    strata = str(Path(sys.executable).with_name("strata"))
    out = subprocess.run(
        [
            strata,
            "search",
            "sourdough bread recipe",
            "--network",
            "youtube",
            "--label",
            "plate",
            "--limit",
            "3",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout

    document = json.loads(out)
    assert document["query"] == "sourdough bread recipe"
    assert (document["filters"]["network"], document["filters"]["label"]) == ("youtube", "plate")
    assert [hit["rank"] for hit in document["results"]] == [1, 2, 3]
    assert {hit["network"] for hit in document["results"]} == {"youtube"}
    assert {tuple(hit["labels"]) for hit in document["results"]} == {("plate",)}
    assert document["results"][0]["score"] >= document["results"][-1]["score"]


def test_the_hybrid_sparse_side_needs_three_quarters_of_the_query_terms_rounded_down():
    from resources.vector_store import Filters, Mode, Query, SparseVector

    def needed(terms: int) -> int:
        sparse = SparseVector(list(range(terms)), [1.0] * terms)
        return Query(Mode.HYBRID, 10, Filters(), sparse=sparse).min_terms

    # A hashtag or a brand of two words needs one term; a sentence of six needs four.
    assert [needed(n) for n in range(1, 7)] == [1, 1, 2, 3, 3, 4]
