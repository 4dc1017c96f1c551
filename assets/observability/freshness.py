"""One freshness policy for the tables users depend on, applied once in the composition root.

Windows come from STRATA_FRESHNESS_WARN_HOURS / STRATA_FRESHNESS_FAIL_HOURS (defaults 4 h and 24 h), read
when the definitions are built; an asset that sets its own policy keeps it.
"""

from __future__ import annotations

import os
from datetime import timedelta

import dagster as dg

# Bronze sources, gold marts and the vector index: what people query and what alerts should watch.
FRESHNESS_SELECTION = dg.AssetSelection.key_prefixes(["bronze"], ["gold"], ["vector"])


def default_freshness_policy() -> dg.FreshnessPolicy:
    warn = float(os.environ.get("STRATA_FRESHNESS_WARN_HOURS") or 4)
    fail = float(os.environ.get("STRATA_FRESHNESS_FAIL_HOURS") or 24)
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=fail), warn_window=timedelta(hours=warn)
    )


def with_default_freshness(defs: dg.Definitions) -> dg.Definitions:
    policy = default_freshness_policy()
    return defs.map_resolved_asset_specs(
        func=lambda spec: dg.apply_freshness_policy(spec, policy, overwrite_existing=False),
        selection=FRESHNESS_SELECTION,
    )
