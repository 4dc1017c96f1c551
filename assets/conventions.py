"""Conventions every asset and sensor follows, said once: who owns it, how a transient failure is retried, how
often the sensors that carry data tick.

The retry delays scale with `STRATA_RETRY_DELAY_SCALE` (default 1, read when the definitions are built): the
test suite sets it near zero and still asserts how many retries happened.
"""

import os

import dagster as dg

OWNER = "team:data-platform"
RETRY_DELAY_SCALE_ENV = "STRATA_RETRY_DELAY_SCALE"
RETRIES = 3

# Dagster's daemons evaluate sensors in loops of at least 5 s. A sensor whose minimum interval is exactly 5 s
# skips every other loop whenever a loop starts a hair early (measured: half the landing sensor's gaps were
# 10 s), so the sensors that move data ask for less, which means every loop.
EVERY_DAEMON_LOOP_SECONDS = 1


def retry_policy(first_delay_seconds: float) -> dg.RetryPolicy:
    """Three retries, waits growing exponentially from `first_delay_seconds`, with jitter."""
    scale = float(os.environ.get(RETRY_DELAY_SCALE_ENV) or 1)
    return dg.RetryPolicy(
        max_retries=RETRIES,
        delay=first_delay_seconds * scale,
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )
