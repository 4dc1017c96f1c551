"""The operational Mongo source: incremental extraction by `updated_at` watermark with a lag window."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
import pytest

from assets.bronze.factory import bronze_assets
from resources import MongoResource, PostgresResource
from strata.generate import generate

CAMPAIGNS = next(a for a in bronze_assets if a.key.path[-1] == "mongo_campaigns")


def extract(resources: dict) -> dict:
    result = dg.materialize([CAMPAIGNS], resources=resources)
    (materialization,) = result.asset_materializations_for_node(CAMPAIGNS.op.name)
    (check,) = result.get_asset_check_evaluations()
    assert check.passed, check.metadata
    return {k: v.value for k, v in materialization.metadata.items()}


@pytest.fixture(scope="module")
def campaigns(warehouse: PostgresResource, tmp_path_factory) -> tuple[dict, dict]:
    mongo = MongoResource(url=tmp_path_factory.mktemp("mongo").as_uri(), database_name="ops")
    with mongo.database() as database:
        manifest = generate(tmp_path_factory.mktemp("drop"), sources=["mongo_campaigns"], mongo_db=database)
    return manifest["sources"]["mongo_campaigns"]["expect"], {"postgres": warehouse, "mongo": mongo}


def test_first_extraction_loads_every_document_and_sets_the_watermark(campaigns, warehouse):
    expect, resources = campaigns

    first = extract(resources)

    assert (first["documents_read"], first["versions_loaded"]) == (expect["count"], expect["count"])
    assert first["watermark"].replace("+00:00", "Z") == expect["max_updated_at"]
    with warehouse.connect() as conn:
        stored = dict(
            conn.execute("SELECT campaign_id, raw->>'status' FROM bronze.mongo_campaigns").fetchall()
        )
    assert stored == {key: doc["status"] for key, doc in expect["docs"].items()}


def test_a_late_write_inside_the_lag_window_is_picked_up_exactly_once(campaigns, warehouse):
    _, resources = campaigns
    with warehouse.connect() as conn:
        (watermark,) = conn.execute(
            "SELECT watermark FROM ledger.watermarks WHERE source = 'mongo_campaigns'"
        ).fetchone()
    late = (watermark - timedelta(minutes=5)).replace(tzinfo=None)
    with resources["mongo"].database() as database:
        database.campaigns.update_one(
            {"_id": "cmp_000003"}, {"$set": {"status": "paused", "updated_at": late}}
        )

    picked_up = extract(resources)
    again = extract(resources)

    assert picked_up["versions_loaded"] == 1
    assert again["versions_loaded"] == 0 and again["already_seen"] == again["documents_read"] >= 1
    with warehouse.connect() as conn:
        versions = conn.execute(
            "SELECT raw->>'status' FROM bronze.mongo_campaigns WHERE campaign_id = 'cmp_000003' ORDER BY load_id"
        ).fetchall()
    assert versions[-1] == ("paused",) and len(versions) == 2


def test_a_document_without_updated_at_is_quarantined_with_its_reason(campaigns, warehouse):
    _, resources = campaigns
    with resources["mongo"].database() as database:
        database.campaigns.insert_one({"_id": "cmp_broken", "status": "draft"})

    result = extract(resources)
    again = extract(resources)

    assert result["quarantined_by_reason"] == {"missing_watermark": 1}
    assert again["quarantined_by_reason"] == {} and again["already_seen"] == again["documents_read"]
    with warehouse.connect() as conn:
        (detail,) = conn.execute(
            "SELECT detail FROM bronze.quarantine WHERE source = 'mongo_campaigns' AND raw_text LIKE '%cmp_broken%'"
        ).fetchone()
    assert "updated_at" in detail
