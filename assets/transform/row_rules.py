"""What a model's row rules (macros/row_rules.sql) did in one build, as materialization metadata: the rows each
rule dropped or warned about — zero included, so every materialization shows every rule — and the table holding
those rows."""

from __future__ import annotations

import dagster as dg
import psycopg
from psycopg import sql

FAILURES_SCHEMA = "dq_failures"


def rules_of(node: dict) -> list[dict]:
    return (node["config"].get("meta") or {}).get("row_rules") or []


def row_rule_metadata(conn: psycopg.Connection, node: dict, build_id: str) -> dict[str, dg.MetadataValue]:
    """`row_rules/<rule>` = rows the rule set aside (drop) or flagged (warn) in build `build_id`, the total
    dropped, and `row_rules_table`. Empty for a model without rules."""
    rules = rules_of(node)
    if not rules:
        return {}
    counts = dict(
        conn.execute(
            sql.SQL("SELECT rule, count(*) FROM {} WHERE build_id = %s GROUP BY rule").format(
                sql.Identifier(FAILURES_SCHEMA, node["alias"])
            ),
            (build_id,),
        ).fetchall()
    )
    metadata: dict[str, dg.MetadataValue] = {
        f"row_rules/{rule['name']} ({rule['action']})": dg.MetadataValue.int(counts.get(rule["name"], 0))
        for rule in rules
        if rule["action"] != "fail"  # a broken fail rule leaves no materialization to describe
    }
    dropped = sum(counts.get(rule["name"], 0) for rule in rules if rule["action"] == "drop")
    metadata["rows_dropped_by_rules"] = dg.MetadataValue.int(dropped)
    metadata["row_rules_table"] = dg.MetadataValue.text(f"{FAILURES_SCHEMA}.{node['alias']}")
    return metadata
