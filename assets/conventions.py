"""Conventions every asset and sensor follows, said once: who owns it, how a transient failure is retried, how
often the sensors that carry data tick, how a freshness window is written.

The retry delays scale with `Settings.retry_delay_scale`, read when the definitions are built.
"""

from datetime import timedelta

import dagster as dg

from strata.config import Settings

OWNER = "team:data-platform"
# Tags an asset whose data may never come (a source pulled only where its endpoint is configured): what is built
# from it refreshes on its other upstreams' data instead of waiting for its first.
MAY_STAY_EMPTY = "strata/may_stay_empty"
RETRIES = 3

# Dagster's daemons evaluate sensors in loops. A sensor whose minimum interval equals the loop's length skips
# every other loop whenever a loop starts a hair early, so the sensors that move data ask for less than a loop,
# which means every loop.
EVERY_DAEMON_LOOP_SECONDS = 1


def retry_policy(first_delay_seconds: float) -> dg.RetryPolicy:
    """Three retries, waits growing exponentially from `first_delay_seconds`, with jitter."""
    return dg.RetryPolicy(
        max_retries=RETRIES,
        delay=first_delay_seconds * Settings.from_env().retry_delay_scale,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


def freshness_policy(warn_hours: float, fail_hours: float) -> dg.FreshnessPolicy:
    """Stale (WARN) once nothing has materialized for `warn_hours`, failed (FAIL) after `fail_hours`."""
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=fail_hours), warn_window=timedelta(hours=warn_hours)
    )
