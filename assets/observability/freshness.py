"""One freshness policy for the tables users depend on, applied once in the composition root.

Windows come from the settings (`freshness_warn_hours`, `freshness_fail_hours`: 4 h and 24 h unless configured),
read when the definitions are built; an asset that sets its own policy keeps it.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from strata.config import Settings

# Bronze sources, gold marts and the vector index: what people query and what alerts should watch.
FRESH_LAYERS = ("bronze", "gold", "vector")


def default_freshness_policy() -> dg.FreshnessPolicy:
    settings = Settings.from_env()
    return dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=settings.freshness_fail_hours),
        warn_window=timedelta(hours=settings.freshness_warn_hours),
    )


def with_default_freshness(defs: dg.Definitions) -> dg.Definitions:
    policy = default_freshness_policy()

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        if spec.key.path[0] not in FRESH_LAYERS:
            return spec
        return dg.apply_freshness_policy(spec, policy, overwrite_existing=False)

    return defs.map_asset_specs(func=apply)
