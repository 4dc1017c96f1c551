"""dmap_ad_spend: a vendor's daily report of paid-media spend, fetched once a day and dropped with the date in the
file name, not in a folder (`dmap/ad_spend/YYYYMMDD.csv`), as the DMAP fetcher does. A vendor re-sends a day
with corrected figures now and then: `day_csv(run, day, revision=1)` writes that correction (same name, new
bytes), for the tests that land it."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal

from strata.generate.core import Run, rng_for, write_bytes
from strata.generate.manifest import SourceReport
from strata.generate.networks import NETWORKS

SOURCE = "dmap_ad_spend"
HEADER = ("report_date", "campaign_id", "network", "impressions", "clicks", "spend_usd")
CAMPAIGNS = 8  # at scale 1; each runs on a few networks a day


def path_for(day: date) -> str:
    return f"dmap/ad_spend/{day:%Y%m%d}.csv"


def day_rows(run: Run, day: date, revision: int = 0) -> list[list[str]]:
    """The day's report; a later revision corrects the figures of the same rows (the vendor's restatement)."""
    rng = rng_for(run.seed, SOURCE, day.isoformat())
    rows = []
    for campaign in range(CAMPAIGNS * run.scale):
        for network in sorted(rng.sample(sorted(NETWORKS), 3)):
            impressions = rng.randrange(1_000, 200_000)
            clicks = rng.randrange(0, impressions // 50 + 1)
            spend = Decimal(impressions) * Decimal(rng.randrange(200, 900)) / Decimal(100_000)
            if revision:
                spend = spend * Decimal(100 + 7 * revision) / Decimal(100)
            rows.append(
                [
                    day.isoformat(),
                    f"CMP-{campaign:04d}",
                    network,
                    str(impressions),
                    str(clicks),
                    f"{spend:.2f}",
                ]
            )
    return rows


def day_csv(run: Run, day: date, revision: int = 0) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(day_rows(run, day, revision))
    return buffer.getvalue().encode()


def generate(run: Run) -> SourceReport:
    report = SourceReport(run)
    spend = {}
    for day in run.dates:
        part = report.partition(day.isoformat())
        rows = day_rows(run, day)
        write_bytes(run.out / path_for(day), day_csv(run, day))
        part.loaded(len(rows))
        part.distinct_keys = len(rows)
        report.add_file(path_for(day), len(rows))
        spend[day.isoformat()] = f"{sum(Decimal(row[5]) for row in rows):.2f}"
    report.expect = {"spend_usd_per_day": spend}
    return report
