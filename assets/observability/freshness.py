"""One freshness policy for the tables users depend on, applied once in the composition root.

Windows come from STRATA_FRESHNESS_WARN_HOURS / STRATA_FRESHNESS_FAIL_HOURS (defaults 4 h and 24 h), read
when the definitions are built; an asset that sets its own policy keeps it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

# Bronze sources, gold marts and the vector index: what people query and what alerts should watch.
FRESH_LAYERS = ("bronze", "gold", "vector")


def default_freshness_policy() -> dg.FreshnessPolicy:
    warn = float(os.environ.get("STRATA_FRESHNESS_WARN_HOURS") or 4)
    fail = float(os.environ.get("STRATA_FRESHNESS_FAIL_HOURS") or 24)
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=fail), warn_window=timedelta(hours=warn)
    )


def with_default_freshness(assets: Sequence[dg.AssetsDefinition]) -> list[dg.AssetsDefinition]:
    policy = default_freshness_policy()

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.key.path[0] not in FRESH_LAYERS:
            return spec
        return dg.apply_freshness_policy(spec, policy, overwrite_existing=False)

    return dg.map_asset_specs(apply, assets)
