"""The columns of a dbt model's materialization: its table's columns as Postgres holds them, described by the
model's yml (`dagster/column_schema`), and where each one comes from in the model's parents
(`dagster/column_lineage`).

The lineage is dagster-dbt's own derivation (sqlglot over the compiled SQL, the columns of the model and of its
parents as the schema), fed with column types read through the warehouse connection the build already holds.
dagster-dbt's `fetch_column_metadata()` would read them through a dbt adapter built in the run process, which
this project skips to keep runs cheap (InterpreterDbtCliResource), and would look for every relation in the
database the manifest was parsed against, finding nothing in a warehouse of another name. The derivation is
private to dagster-dbt (`_build_column_lineage_metadata`): tests/test_column_lineage.py fails if an upgrade
changes it.

sqlglot re-reads the model's whole query for each of its columns: seconds per build of a wide model. The lineage
depends only on the model's SQL file and on the columns of the model and its parents, so it is derived once per
such fingerprint and kept in the Dagster instance's key-value store; every other build of the model (each
partition, each re-run) reuses it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import psycopg
from dagster._serdes import deserialize_value, serialize_value
from dagster_dbt.core.dbt_cli_event import EventHistoryMetadata, _build_column_lineage_metadata
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from psycopg import sql

# (schema, table) → {column: (type, nullable)}, in the table's column order.
Columns = dict[tuple[str, str], dict[str, tuple[str, bool]]]

_COLUMNS = """
SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull
FROM pg_attribute AS a
JOIN pg_class AS c ON c.oid = a.attrelid
JOIN pg_namespace AS n ON n.oid = c.relnamespace
JOIN unnest(%s::text[], %s::text[]) AS wanted (nspname, relname)
    ON wanted.nspname = n.nspname AND wanted.relname = c.relname
WHERE a.attnum > 0 AND NOT a.attisdropped
ORDER BY n.nspname, c.relname, a.attnum
"""


def with_column_metadata(conn: psycopg.Connection, invocation: DbtCliInvocation, event):
    """A model's materialization with the column schema of its table and, where sqlglot can read the model's
    compiled SQL, its column lineage; any other event as it is."""
    if not isinstance(event, (dg.Output, dg.AssetMaterialization)):
        return event
    manifest = invocation.manifest
    node = manifest["nodes"].get(event.metadata["unique_id"].text)
    if node is None:
        return event
    parents = [manifest["nodes"].get(uid) or manifest["sources"][uid] for uid in node["depends_on"]["nodes"]]
    columns = read_columns(conn, [node, *parents])
    own = columns.get(_table(node))
    if not own:
        return event
    metadata = {"dagster/column_schema": column_schema(node, own)}
    try:
        metadata |= _kept_lineage(conn, invocation, node, parents, columns)
    except Exception as exc:  # noqa: BLE001 — sqlglot not reading one model's SQL never fails its build
        dg.get_dagster_logger().warning(f"{node['unique_id']}: no column lineage ({exc})")
    return event.with_metadata({**event.metadata, **metadata})


def _kept_lineage(
    conn: psycopg.Connection,
    invocation: DbtCliInvocation,
    node: Mapping[str, Any],
    parents: Sequence[Mapping[str, Any]],
    columns: Columns,
) -> dict[str, Any]:
    """The model's column lineage, derived again only when its SQL file or the columns it reads or writes changed."""
    instance = invocation.context.instance if invocation.context is not None else None
    if instance is None:
        return column_lineage(conn, invocation, node, parents, columns)
    fingerprint = hashlib.sha256(
        json.dumps(
            [
                node["checksum"]["checksum"],
                sorted((list(table), list(cols.items())) for table, cols in columns.items()),
            ]
        ).encode()
    ).hexdigest()
    key = f"strata/column_lineage/{node['unique_id']}"
    kept = instance.run_storage.get_cursor_values({key}).get(key)
    if kept:
        kept_fingerprint, value = json.loads(kept)
        if kept_fingerprint == fingerprint:
            return deserialize_value(value, dict)
    lineage = column_lineage(conn, invocation, node, parents, columns)
    instance.run_storage.set_cursor_values({key: json.dumps([fingerprint, serialize_value(lineage)])})
    return lineage


def read_columns(conn: psycopg.Connection, resources: Sequence[Mapping[str, Any]]) -> Columns:
    """The columns of the tables of these dbt resources (models, sources), in one query."""
    tables = [_table(resource) for resource in resources]
    found: Columns = {}
    rows = conn.execute(_COLUMNS, ([schema for schema, _ in tables], [name for _, name in tables]))
    for schema, table, column, data_type, nullable in rows:
        found.setdefault((schema, table), {})[column] = (data_type, nullable)
    return found


def column_schema(node: Mapping[str, Any], columns: Mapping[str, tuple[str, bool]]) -> dg.TableSchema:
    """The table's columns with their Postgres types, nullability and the yml's descriptions."""
    documented = node.get("columns") or {}
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=data_type,
                description=((documented.get(name) or {}).get("description") or "").strip() or None,
                constraints=dg.TableColumnConstraints(nullable=nullable),
            )
            for name, (data_type, nullable) in columns.items()
        ]
    )


def column_lineage(
    conn: psycopg.Connection,
    invocation: DbtCliInvocation,
    node: Mapping[str, Any],
    parents: Sequence[Mapping[str, Any]],
    columns: Columns,
) -> dict[str, Any]:
    """`dagster/column_lineage` of a model: each column's source columns in its parents.

    The manifest names relations in the database it was parsed against, the compiled SQL in the database this
    build writes to (the warehouse URL's): the model and its parents are named here as built, so that the two
    meet."""
    database = conn.info.dbname

    def as_built(resource: Mapping[str, Any]) -> dict[str, Any]:
        name = sql.Identifier(database, *_table(resource)).as_string(conn)
        return {**resource, "relation_name": name}

    built_parents = {parent["unique_id"]: as_built(parent) for parent in parents}
    manifest = invocation.manifest
    manifest = {
        **manifest,
        "nodes": {**manifest["nodes"], **{k: v for k, v in built_parents.items() if k in manifest["nodes"]}},
        "sources": {
            **manifest["sources"],
            **{k: v for k, v in built_parents.items() if k in manifest["sources"]},
        },
    }
    types = {
        relation: {c: {"data_type": t} for c, (t, _) in cols.items()} for relation, cols in columns.items()
    }
    return _build_column_lineage_metadata(
        event_history_metadata=EventHistoryMetadata(
            columns=types[_table(node)],
            parents={
                parent["relation_name"]: types.get(_table(parent), {}) for parent in built_parents.values()
            },
        ),
        dbt_resource_props=as_built(node),
        manifest=manifest,
        dagster_dbt_translator=invocation.dagster_dbt_translator,
        target_path=invocation.target_path,
        project=invocation.project,
    )


def _table(resource: Mapping[str, Any]) -> tuple[str, str]:
    """(schema, table) of a dbt model or source."""
    name = resource["identifier"] if resource["resource_type"] == "source" else resource["alias"]
    return resource["schema"], name
