"""Landing the generator's sample drop where the platform looks for it: files in the landing zone and the
operational documents in the configured Mongo database."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path

from strata import services
from strata.config import Settings


def land_sample_drop(
    settings: Settings,
    out: Path | None = None,
    *,
    scale: int = 1,
    days: int = 7,
    seed: int = 42,
    start: date = date(2026, 11, 1),
    sources: Iterable[str] | None = None,
    to_mongo: bool = True,
) -> dict:
    from resources import MongoResource
    from strata.generate import generate

    target = Path(out) if out else settings.landing_dir
    if not to_mongo:
        return generate(target, scale=scale, days=days, seed=seed, start=start, sources=sources)
    mongo = MongoResource(url=services.mongo_url(settings), database_name=settings.mongo_database)
    with mongo.database() as database:
        return generate(
            target, scale=scale, days=days, seed=seed, start=start, sources=sources, mongo_db=database
        )


def landing_is_empty(settings: Settings) -> bool:
    root = settings.landing_dir
    return not root.exists() or not any(path.is_file() for path in root.rglob("*"))
