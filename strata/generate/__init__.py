"""Deterministic sample data for every Strata source, with injected faults and a manifest of truths.

`generate` writes a landing drop (layout: README, "The landing contract") and `manifest.json`, which states exactly
what a correct loader must read, load, quarantine and deduplicate. Same arguments, same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

from strata.generate import accounts, ambassadors, cdc, dmap, labels, mongo, playback, posts, tweets, video
from strata.generate.core import Run
from strata.generate.faults import FaultRates
from strata.generate.manifest import SourceReport, write_manifest

__all__ = ["SOURCES", "FaultRates", "generate"]

_BUILDERS: dict[str, Callable[[Run], SourceReport]] = {
    "social_posts": posts.generate,
    "image_labels": labels.generate,
    "social_accounts": accounts.generate,
    "tweets": tweets.generate,
    "ambassadors": ambassadors.generate,
    "video_users": video.generate_users,
    "video_sessions": video.generate_sessions,
    "video_content": video.generate_content,
    "video_playback": playback.generate,
    "cdc_brands": cdc.generate,
    "dmap_ad_spend": dmap.generate,
    "mongo_campaigns": mongo.generate,
}
SOURCES: tuple[str, ...] = tuple(_BUILDERS)


def generate(
    out: Path,
    *,
    scale: int = 1,
    days: int = 7,
    seed: int = 42,
    start: date = date(2026, 11, 1),
    faults: FaultRates | None = None,
    mongo_db=None,
    sources: Iterable[str] | None = None,
) -> dict:
    """Write the drop under `out` (the landing root) plus out/manifest.json; return the manifest.

    `mongo_db` is a pymongo-compatible Database; without one, the Mongo expectations are still in the
    manifest. `sources` restricts generation to some of SOURCES.
    """
    selected = SOURCES if sources is None else tuple(sources)
    unknown = sorted(set(selected) - set(SOURCES))
    if unknown:
        raise ValueError(f"unknown sources {unknown}; choose from {list(SOURCES)}")
    if scale < 1 or days < 1:
        raise ValueError("scale and days must be at least 1")
    if "image_labels" in selected and "social_posts" not in selected:
        raise ValueError("image_labels labels the media of social_posts: generate both")
    run = Run(Path(out), seed, scale, days, start, faults or FaultRates())
    reports = {}
    for name in SOURCES:
        if name not in selected:
            continue
        if name == "mongo_campaigns":
            reports[name] = mongo.generate(run, mongo_db)
        elif name == "image_labels":
            reports[name] = labels.generate(run, reports["social_posts"])
        else:
            reports[name] = _BUILDERS[name](run)
    return write_manifest(run, reports)
