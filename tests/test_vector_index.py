"""The content index against a real Qdrant store and the real offline model: incremental by content hash,
deletes propagate, filters restrict, and the consistency check catches a point deleted behind its back.

The documents table is built here in the shape `silver.content_documents` has, so each case controls
exactly which rows change; the chain from the sample drop is covered end to end elsewhere."""

from __future__ import annotations

import os
import shutil
import uuid
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from assets.vector.content_index import content_index, postgres_qdrant_consistent, vectors_match_the_model
from assets.vector.search import COLLECTION, search
from assets.vector.sync import point_id
from resources import EmbeddingModelResource, PostgresResource, QdrantResource

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


def materialize(resources: dict) -> dict:
    result = dg.materialize([content_index], resources=resources)
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
    with index["qdrant"].client() as client:
        assert client.retrieve(COLLECTION, ids=[point_id("post:tiktok:pets0")]) == []


def test_the_consistency_check_fails_when_a_point_is_deleted_behind_its_back(index):
    from qdrant_client import models

    with index["qdrant"].client() as client:
        client.delete(
            COLLECTION,
            points_selector=models.PointIdsList(points=[point_id("post:youtube:cooking1")]),
            wait=True,
        )

    assert run_checks(index)["postgres_qdrant_consistent"] is False
    materialize(index)  # the next sync repairs it
    assert run_checks(index)["postgres_qdrant_consistent"] is True


def test_a_model_change_reembeds_every_document(index, warehouse):
    from assets.vector.content_index import sync_index

    with warehouse.connect() as conn, index["qdrant"].client() as client:
        result = sync_index(
            conn, client, index["embedder"], local=True, model_version="a-retrained-model==2.0"
        )

    assert result.embedded == result.documents == 100


@pytest.mark.skipif(
    not os.environ.get("STRATA_TEST_QDRANT_URL"),
    reason="no Qdrant server here: set STRATA_TEST_QDRANT_URL=http://host:6333 to exercise the server path",
)
def test_the_same_sync_and_search_run_against_a_qdrant_server(empty, warehouse):
    from assets.vector.content_index import sync_index

    server = QdrantResource(url=os.environ["STRATA_TEST_QDRANT_URL"])
    collection = f"strata_test_{uuid.uuid4().hex[:8]}"
    with warehouse.connect() as conn, server.client() as client:
        try:
            result = sync_index(
                conn, client, empty["embedder"], local=server.is_embedded, collection=collection
            )
            indexed = set(client.get_collection(collection).payload_schema)
        finally:
            client.delete_collection(collection)
    assert result.embedded == result.documents
    assert {"network", "account_id", "created_day", "source_type"} <= indexed


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
