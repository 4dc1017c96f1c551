"""mongo_campaigns: campaign documents upserted into a Mongo database, some updated a second time.

Each document's two versions derive from (seed, index), so both passes regenerate them instead of
holding the collection in memory.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo import ReplaceOne

from strata.generate.cdc import brand_id
from strata.generate.core import Run, rng_for
from strata.generate.manifest import SourceReport

SOURCE = "mongo_campaigns"
COLLECTION = "campaigns"
CAMPAIGNS = 40  # at scale 1
UPDATED_SHARE = 0.3
BATCH = 1000
_STATUSES = ("draft", "scheduled", "active", "paused", "completed")
_THEMES = (
    "Holiday Glow",
    "Summer Drop",
    "Back to School",
    "Game Night",
    "Fresh Start",
    "Weekend Escape",
    "Pet Parade",
)


def _versions(run: Run, index: int) -> list[dict]:
    rng = rng_for(run.seed, SOURCE, index)
    midnight = datetime(run.start.year, run.start.month, run.start.day, tzinfo=UTC)
    begins = run.start + timedelta(days=rng.randrange(-20, 30))
    first = {
        "_id": f"cmp_{index:06d}",
        "campaign_id": f"cmp_{index:06d}",
        "brand_id": brand_id(rng.randrange(50 * run.scale)),
        "name": f"{rng.choice(_THEMES)} {run.start.year} #{index}",
        "status": rng.choice(_STATUSES[:3]),
        "budget": rng.randrange(500_000, 50_000_000) / 100,
        "start_date": begins.isoformat(),
        "end_date": (begins + timedelta(days=rng.randrange(7, 90))).isoformat(),
        "updated_at": midnight - timedelta(seconds=rng.randrange(30 * 86400)),
    }
    if rng.random() >= UPDATED_SHARE:
        return [first]
    second = dict(
        first,
        status=rng.choice([s for s in _STATUSES if s != first["status"]]),
        budget=round(first["budget"] * rng.uniform(0.8, 1.5), 2),
        updated_at=midnight + timedelta(seconds=rng.randrange(run.days * 86400)),
    )
    return [first, second]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(run: Run, db=None) -> SourceReport:
    """Upsert by _id: first every first version, then the later versions, as an application would."""
    report = SourceReport(run)
    part = report.partition("all")
    count = CAMPAIGNS * run.scale
    docs: dict[str, dict] = {}
    writes = updated = 0
    latest = None
    for version in (0, 1):
        batch = []
        for index in range(count):
            versions = _versions(run, index)
            if version >= len(versions):
                continue
            doc = versions[version]
            if db is not None:
                batch.append(ReplaceOne({"_id": doc["_id"]}, doc, upsert=True))
            writes += 1
            updated += version
            if version == len(versions) - 1:
                latest = max(latest or doc["updated_at"], doc["updated_at"])
                if run.small:
                    docs[doc["_id"]] = {"updated_at": _iso(doc["updated_at"]), "status": doc["status"]}
            if len(batch) >= BATCH:
                db[COLLECTION].bulk_write(batch, ordered=True)
                batch = []
        if batch:
            db[COLLECTION].bulk_write(batch, ordered=True)
    part.loaded(count)
    part.distinct_keys = count
    part.faults["late_update"] = updated
    report.expect = {
        "collection": COLLECTION,
        "count": count,
        "writes": writes,
        "updated": updated,
        "max_updated_at": _iso(latest),
    }
    if run.small:
        report.expect["docs"] = dict(sorted(docs.items()))
    return report
