"""Conventions every asset follows, said once: who owns it and how a transient failure is retried.

The retry delays scale with `STRATA_RETRY_DELAY_SCALE` (default 1, read when the definitions are built): the
test suite sets it near zero and still asserts how many retries happened.
"""

import os

import dagster as dg

OWNER = "team:data-platform"
RETRY_DELAY_SCALE_ENV = "STRATA_RETRY_DELAY_SCALE"
RETRIES = 3


def retry_policy(first_delay_seconds: float) -> dg.RetryPolicy:
    """Three retries, waits growing exponentially from `first_delay_seconds`, with jitter."""
    scale = float(os.environ.get(RETRY_DELAY_SCALE_ENV) or 1)
    return dg.RetryPolicy(
        max_retries=RETRIES,
        delay=first_delay_seconds * scale,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )
