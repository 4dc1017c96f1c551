"""DMAP daily files: the date is in the file name (`dmap/ad_spend/YYYYMMDD.csv`), not in a folder. Files landing
out of order each fill their own day; a day the vendor re-sends with new bytes supersedes the first version, whose
rows leave bronze and silver."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import dagster as dg
import pytest

from assets.bronze.factory import bronze_assets
from resources import LandingZoneResource, MongoResource
from strata.generate import FaultRates, dmap
from strata.generate.core import Run
from tests.conftest import PII_SALT

pytestmark = pytest.mark.slow

BRONZE = next(a for a in bronze_assets if a.key == dg.AssetKey(["bronze", "dmap_ad_spend"]))
SILVER = dg.AssetKey(["silver", "ad_spend"])
START = date(2026, 11, 1)
DAYS = [START + timedelta(days=i) for i in range(3)]


def spend(rows: list[list[str]]) -> Decimal:
    return sum((Decimal(row[5]) for row in rows), Decimal(0))


def test_days_named_in_file_names_land_out_of_order_and_a_resent_day_replaces_its_rows(
    warehouse, transform, tmp_path
):
    daily = next(a for a in transform.dbt_assets if a.op.name == "dbt_daily")
    run = Run(tmp_path / "drop", seed=5, scale=1, days=len(DAYS), start=START, rates=FaultRates())
    root = tmp_path / "landing"
    resources = {
        "postgres": warehouse,
        "mongo": MongoResource(url=(tmp_path / "mongo").as_uri()),
        "landing": LandingZoneResource(root=str(root)),
        "dbt": transform.dbt_resource(PII_SALT),
    }

    def land_and_build(day: date, revision: int = 0) -> None:
        path = root / dmap.path_for(day)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(dmap.day_csv(run, day, revision))
        key = day.isoformat()
        assert dg.materialize([BRONZE], partition_key=key, resources=resources).success
        built = dg.materialize([daily], partition_key=key, selection=[SILVER], resources=resources)
        assert built.success and all(e.passed for e in built.get_asset_check_evaluations())

    def silver_spend() -> dict[str, Decimal]:
        with warehouse.connect() as conn:
            rows = conn.execute(
                "SELECT spend_date, sum(spend_usd) FROM silver.ad_spend GROUP BY 1"
            ).fetchall()
        return {day.isoformat(): total for day, total in rows}

    for day in (DAYS[2], DAYS[0], DAYS[1]):
        land_and_build(day)

    first = {day.isoformat(): spend(dmap.day_rows(run, day)) for day in DAYS}
    assert silver_spend() == first

    # The vendor restates day 2: same file name, new bytes.
    land_and_build(DAYS[1], revision=1)

    corrected = spend(dmap.day_rows(run, DAYS[1], revision=1))
    assert corrected != first[DAYS[1].isoformat()]
    assert silver_spend() == first | {DAYS[1].isoformat(): corrected}
    with warehouse.connect() as conn:
        loads = conn.execute(
            "SELECT status, records_loaded FROM ledger.loads WHERE path = %s ORDER BY load_id",
            (dmap.path_for(DAYS[1]),),
        ).fetchall()
        in_bronze = conn.execute(
            "SELECT count(*), count(DISTINCT load_id) FROM bronze.dmap_ad_spend WHERE partition_date = %s",
            (DAYS[1],),
        ).fetchone()
    rows = len(dmap.day_rows(run, DAYS[1]))
    assert loads == [("superseded", rows), ("archived", rows)]
    assert in_bronze == (rows, 1)
