"""One freshness policy for every asset of every layer, applied once in the composition root.

Windows come from the settings (`freshness_warn_hours`, `freshness_fail_hours`: 4 h and 24 h unless configured),
read when the definitions are built. An asset that sets its own policy keeps it: a source whose data comes once
a day (`Source.freshness_hours`), a dbt model through `meta.dagster.freshness` (assets.transform.translator).
"""

from __future__ import annotations

import dagster as dg

from assets.conventions import freshness_policy
from strata.config import Settings


def default_freshness_policy() -> dg.FreshnessPolicy:
    settings = Settings.from_env()
    return freshness_policy(settings.freshness_warn_hours, settings.freshness_fail_hours)


def with_default_freshness(defs: dg.Definitions) -> dg.Definitions:
    policy = default_freshness_policy()

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        return dg.apply_freshness_policy(spec, policy, overwrite_existing=False)

    return defs.map_asset_specs(func=apply)
