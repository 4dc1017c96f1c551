"""How dbt resources become Dagster assets: everything is read from the dbt config, never from a model list.

- key: `<schema>/<model>` (silver/posts, gold/account_daily_engagement); sources keep dagster-dbt's
  `<source>/<table>` (bronze/social_posts), which are the bronze assets' keys.
- group: `meta.dagster.group`, else the model's domain folder (models/<layer>/<domain>/…), matching bronze's
  groups (social, video, …).
- owners: `meta.dagster.owners`, else team:data-platform.
- automation: `meta.dagster.automation_condition` ("eager" or "none"), else eager for the silver and gold layers;
  "eager" is the layer's refresh condition for the model's partitioning (assets.automation.conditions).
- partitioning (used by assets.py to split the `@dbt_assets`): `meta.dagster.partitioning`.
- freshness: `meta.dagster.freshness` (`{warn_hours: …, fail_hours: …}`), else the default every asset gets
  (assets.observability.freshness).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator

from assets.automation import refresh_condition
from assets.conventions import OWNER, freshness_policy
from assets.partitions import PARTITIONINGS, Partitioning

AUTOMATED_LAYERS = ("silver", "gold")
_MODEL_TYPES = ("model", "snapshot", "seed")


def dagster_meta(props: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = (props.get("config") or {}).get("meta") or props.get("meta") or {}
    return meta.get("dagster") or {}


def layer(props: Mapping[str, Any]) -> str | None:
    return dagster_meta(props).get("layer") or (props.get("config") or {}).get("schema")


def partitioning(props: Mapping[str, Any]) -> Partitioning:
    value = dagster_meta(props).get("partitioning", "none")
    if value not in PARTITIONINGS:
        raise ValueError(
            f"{props.get('unique_id')}: meta.dagster.partitioning must be one of {PARTITIONINGS}"
        )
    return value


class StrataDbtTranslator(DagsterDbtTranslator):
    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        window = dagster_meta(self.get_resource_props(manifest, unique_id)).get("freshness")
        if not window:
            return spec
        try:
            policy = freshness_policy(float(window["warn_hours"]), float(window["fail_hours"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"{unique_id}: meta.dagster.freshness must be {{warn_hours: <hours>, fail_hours: <hours>}}"
            ) from exc
        return dg.apply_freshness_policy(spec, policy, overwrite_existing=True)

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in _MODEL_TYPES:
            schema = (dbt_resource_props.get("config") or {}).get("schema") or dbt_resource_props["schema"]
            return dg.AssetKey([schema, dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] not in _MODEL_TYPES:
            return super().get_group_name(dbt_resource_props)
        group = dagster_meta(dbt_resource_props).get("group")
        if group:
            return group
        fqn = dbt_resource_props.get("fqn") or []
        # fqn = [project, layer, domain, …, model]
        return fqn[2] if len(fqn) > 3 else layer(dbt_resource_props)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> Sequence[str] | None:
        if dbt_resource_props["resource_type"] not in _MODEL_TYPES:
            return super().get_owners(dbt_resource_props)
        return list(dagster_meta(dbt_resource_props).get("owners") or [OWNER])

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> dg.AutomationCondition | None:
        if dbt_resource_props["resource_type"] not in _MODEL_TYPES:
            return None
        setting = dagster_meta(dbt_resource_props).get("automation_condition")
        if setting is None:
            setting = "eager" if layer(dbt_resource_props) in AUTOMATED_LAYERS else "none"
        if setting == "eager":
            return refresh_condition(partitioned=partitioning(dbt_resource_props) != "none")
        if setting == "none":
            return None
        raise ValueError(
            f"{dbt_resource_props['unique_id']}: meta.dagster.automation_condition must be 'eager' or 'none'"
        )
