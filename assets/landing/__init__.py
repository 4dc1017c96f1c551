"""Landing: extractions that pull a source into the landing zone, where bronze loads it like any landed file."""

import dagster as dg

from assets.landing.x_recent_search import x_recent_search, x_recent_search_job, x_recent_search_schedule

defs = dg.Definitions(
    assets=[x_recent_search], jobs=[x_recent_search_job], schedules=[x_recent_search_schedule]
)

__all__ = ["defs"]
