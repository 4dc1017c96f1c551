"""The load ledger (schema `ledger`): one row per landed file or extract, with its status lifecycle.

    ready → ingesting → archived | errored          (and terminal: duplicate, superseded)

Keyed by (source, path, sha256): the same bytes are never loaded twice. A renamed copy of loaded bytes is
recorded as `duplicate` of the first (a stream's dumps are compared with dumps, files with files). A path whose bytes change after loading gets a new row that
`supersedes` the old one; loading it replaces the old rows in the same transaction and marks the old
row `superseded` — the documented policy for changed files.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from resources.postgres import serialized_ddl

DDL = """
CREATE SCHEMA IF NOT EXISTS ledger;
CREATE TABLE IF NOT EXISTS ledger.loads (
    load_id bigserial PRIMARY KEY,
    source text NOT NULL,
    path text NOT NULL,
    stored_path text NOT NULL,
    partition_key text,
    size_bytes bigint NOT NULL,
    mtime timestamptz,
    sha256 text NOT NULL,
    status text NOT NULL DEFAULT 'ready'
        CHECK (status IN ('ready', 'ingesting', 'archived', 'errored', 'duplicate', 'superseded')),
    duplicate_of bigint REFERENCES ledger.loads (load_id),
    supersedes bigint REFERENCES ledger.loads (load_id),
    error text,
    records_read bigint,
    records_loaded bigint,
    records_quarantined bigint,
    quarantined_by_reason jsonb,
    details jsonb,
    registered_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz,
    run_id text,
    attempts integer NOT NULL DEFAULT 0,
    UNIQUE (source, path, sha256)
);
CREATE INDEX IF NOT EXISTS loads_source_sha_idx ON ledger.loads (source, sha256);
CREATE INDEX IF NOT EXISTS loads_source_partition_idx ON ledger.loads (source, partition_key, status);
-- The known schema of a source (or of a source's network: `source` is the scope), one row per path and JSON type
-- its loaded records carried (assets.bronze.contracts); `field` is the top-level key the path lies under.
CREATE TABLE IF NOT EXISTS ledger.source_fields (
    source text NOT NULL,
    field text NOT NULL,
    path text NOT NULL,
    json_type text NOT NULL,
    first_load_id bigint NOT NULL,
    last_load_id bigint NOT NULL,
    PRIMARY KEY (source, path, json_type)
);
-- A ledger made before paths and types: its top-level names stay known, of no type yet (as a field seen only null).
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM information_schema.columns
        WHERE table_schema = 'ledger' AND table_name = 'source_fields' AND column_name = 'path'
    ) THEN
        ALTER TABLE ledger.source_fields ADD COLUMN path text, ADD COLUMN json_type text NOT NULL DEFAULT 'null';
        UPDATE ledger.source_fields SET path = '$.' || CASE
            WHEN field ~ '^[A-Za-z_][A-Za-z0-9_]*$' THEN field ELSE to_json(field)::text END;
        ALTER TABLE ledger.source_fields
            ALTER COLUMN path SET NOT NULL,
            ALTER COLUMN json_type DROP DEFAULT,
            DROP CONSTRAINT source_fields_pkey,
            ADD PRIMARY KEY (source, path, json_type);
    END IF;
END $$;
-- What the raw-document copy holds (assets.bronze.documents): per load, the bronze load it copied.
CREATE TABLE IF NOT EXISTS ledger.documents (
    load_id bigint PRIMARY KEY REFERENCES ledger.loads (load_id),
    source text NOT NULL,
    partition_key text,
    loaded_at timestamptz NOT NULL,
    documents bigint NOT NULL,
    copied_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS documents_source_partition_idx ON ledger.documents (source, partition_key);
-- How far an extraction has read: a source's one watermark (partition_key ''), or one cursor per partition (an API
-- searched day by day: the window's end covered and the newest id landed).
CREATE TABLE IF NOT EXISTS ledger.watermarks (
    source text NOT NULL,
    partition_key text NOT NULL DEFAULT '',
    watermark timestamptz NOT NULL,
    since_id text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    run_id text,
    PRIMARY KEY (source, partition_key)
);
-- A ledger made before per-partition cursors.
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT FROM information_schema.columns
        WHERE table_schema = 'ledger' AND table_name = 'watermarks' AND column_name = 'partition_key'
    ) THEN
        ALTER TABLE ledger.watermarks
            ADD COLUMN partition_key text NOT NULL DEFAULT '',
            ADD COLUMN since_id text,
            DROP CONSTRAINT watermarks_pkey,
            ADD PRIMARY KEY (source, partition_key);
    END IF;
END $$;
"""

# Loads that count as the current content of their path.
LIVE_STATUSES = ("ready", "ingesting", "archived", "errored")


@dataclass
class Load:
    load_id: int
    source: str
    path: str
    stored_path: str
    partition_key: str | None
    size_bytes: int
    sha256: str
    status: str
    supersedes: int | None
    duplicate_of: int | None
    mtime: datetime | None = None
    run_id: str | None = None
    attempts: int = 0


_LOAD_COLUMNS = sql.SQL(", ").join(map(sql.Identifier, Load.__dataclass_fields__))


def _q(template: str) -> sql.Composed:
    return sql.SQL(template).format(columns=_LOAD_COLUMNS)


def ensure_schema(conn: psycopg.Connection) -> None:
    """Idempotent DDL; an advisory lock keeps concurrent runs from racing on CREATE IF NOT EXISTS."""
    with serialized_ddl(conn, "strata.ledger.ddl"):
        conn.execute(DDL)


@dataclass(frozen=True)
class LandedFile:
    path: str
    partition_key: str | None
    size_bytes: int
    mtime: datetime | None
    sha256: str


def register(conn: psycopg.Connection, source: str, files: list[LandedFile]) -> list[tuple[Load, bool]]:
    """Record landed files, in order, in one transaction; returns (load, whether the row is new) per file.
    Same path and bytes → the existing row; same bytes under another path (also earlier in `files`) → a new
    `duplicate` row; same path, new bytes → a new row that supersedes the previous one."""
    if not files:
        return []
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('strata.ledger.register'), hashtext(%s))", (source,)
        )
        cur = conn.cursor(row_factory=class_row(Load))
        paths = [f.path for f in files]
        shas = [f.sha256 for f in files]
        existing = {
            (row.path, row.sha256): row
            for row in cur.execute(
                _q("""SELECT {columns} FROM ledger.loads
                      WHERE source = %s AND (path, sha256) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"""),
                (source, paths, shas),
            )
        }
        # A stream's dump (no partition) and its part of a single day may hold the same bytes: a file repeats
        # another only if both have a partition or neither does.
        originals = {
            (row.sha256, row.partition_key is None): row
            for row in cur.execute(
                _q("""SELECT DISTINCT ON (sha256, partition_key IS NULL) {columns} FROM ledger.loads
                      WHERE source = %s AND sha256 = ANY(%s) AND status NOT IN ('duplicate', 'superseded')
                      ORDER BY sha256, partition_key IS NULL, load_id"""),
                (source, shas),
            )
        }
        previous = {
            row.path: row
            for row in cur.execute(
                _q("""SELECT DISTINCT ON (path) {columns} FROM ledger.loads
                      WHERE source = %s AND path = ANY(%s) AND status = ANY(%s) ORDER BY path, load_id DESC"""),
                (source, paths, list(LIVE_STATUSES)),
            )
        }
        results = []
        for landed in files:
            found = existing.get((landed.path, landed.sha256))
            if found:
                results.append((found, False))
                continue
            original = originals.get((landed.sha256, landed.partition_key is None))
            superseded = previous.get(landed.path)
            load = cur.execute(
                _q("""INSERT INTO ledger.loads
                        (source, path, stored_path, partition_key, size_bytes, mtime, sha256, status,
                         duplicate_of, supersedes, error)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    RETURNING {columns}"""),
                (
                    source,
                    landed.path,
                    landed.path,
                    landed.partition_key,
                    landed.size_bytes,
                    landed.mtime,
                    landed.sha256,
                    "duplicate" if original else "ready",
                    original.load_id if original else None,
                    superseded.load_id if superseded and not original else None,
                    f"same bytes as load {original.load_id} ({original.path})" if original else None,
                ),
            ).fetchone()
            existing[(landed.path, landed.sha256)] = load
            originals.setdefault((landed.sha256, landed.partition_key is None), load)
            results.append((load, True))
        return results


def record_error(
    conn: psycopg.Connection,
    *,
    source: str,
    path: str,
    partition_key: str | None,
    size_bytes: int,
    mtime: datetime | None,
    error: str,
) -> None:
    """A landed file that cannot even be registered as a load of its source (e.g. its path breaks the landing
    contract) is still recorded, as an errored load, so nothing disappears silently."""
    with conn.transaction():
        conn.execute(
            """INSERT INTO ledger.loads
                   (source, path, stored_path, partition_key, size_bytes, mtime, sha256, status, error)
               VALUES (%s, %s, %s, %s, %s, %s, '', 'errored', %s)
               ON CONFLICT (source, path, sha256) DO UPDATE SET
                   error = EXCLUDED.error, size_bytes = EXCLUDED.size_bytes, mtime = EXCLUDED.mtime""",
            (source, path, path, partition_key, size_bytes, mtime, error),
        )


def live_loads(conn: psycopg.Connection, source: str, partition_key: str | None) -> list[Load]:
    """The current load of every path of a partition (what a full reload of the partition reads): of a path
    re-sent with new bytes, only the newest load, which supersedes the others."""
    return _current_loads(
        conn, sql.SQL("source = %s AND partition_key IS NOT DISTINCT FROM %s"), (source, partition_key)
    )


def all_live_loads(conn: psycopg.Connection, source: str) -> list[Load]:
    """The current load of every path of a source (see `live_loads`)."""
    return _current_loads(conn, sql.SQL("source = %s"), (source,))


def _current_loads(conn: psycopg.Connection, where: sql.Composable, params: tuple) -> list[Load]:
    query = sql.SQL(
        """SELECT * FROM (
             SELECT DISTINCT ON (path) {columns} FROM ledger.loads
             WHERE {where} AND status = ANY(%s) AND sha256 <> ''
             ORDER BY path, load_id DESC
           ) AS current ORDER BY load_id"""
    ).format(columns=_LOAD_COLUMNS, where=where)
    return conn.cursor(row_factory=class_row(Load)).execute(query, (*params, list(LIVE_STATUSES))).fetchall()


def is_pending(load: Load) -> bool:
    """Registered and not loaded yet: ready, left `ingesting` by a run that died, or `errored` by a failed
    transaction (its file still where it landed; an unreadable file has moved to error/ and is done)."""
    return load.status in ("ready", "ingesting") or (
        load.status == "errored" and load.stored_path == load.path
    )


def pending_loads(conn: psycopg.Connection, source: str) -> list[Load]:
    """The loads of a source that `is_pending`."""
    cur = conn.cursor(row_factory=class_row(Load))
    return cur.execute(
        _q("""SELECT {columns} FROM ledger.loads
            WHERE source = %s AND sha256 <> ''
              AND (status IN ('ready', 'ingesting') OR (status = 'errored' AND stored_path = path))
            ORDER BY load_id"""),
        (source,),
    ).fetchall()


def known_paths(
    conn: psycopg.Connection, source: str, folders: tuple[str, ...] | None = None
) -> dict[str, Load]:
    """The latest ledger row of every path of a source, or of the paths under `folders` (for the change
    detection of discovery)."""
    cur = conn.cursor(row_factory=class_row(Load))
    prefixes = [folder.rstrip("/") + "/" for folder in folders] if folders else [""]
    rows = cur.execute(
        _q("""SELECT DISTINCT ON (path) {columns} FROM ledger.loads
            WHERE source = %s AND path ^@ ANY(%s) ORDER BY path, load_id DESC"""),
        (source, prefixes),
    ).fetchall()
    return {row.path: row for row in rows}


def mark_ingesting(conn: psycopg.Connection, load_ids: list[int], run_id: str) -> None:
    """Committed before the data transaction starts, so a killed load leaves `ingesting` + its run id."""
    with conn.transaction():
        conn.execute(
            """UPDATE ledger.loads SET status = 'ingesting', started_at = now(), run_id = %s,
                   attempts = attempts + 1, error = NULL
               WHERE load_id = ANY(%s)""",
            (run_id, load_ids),
        )


def mark_done(
    conn: psycopg.Connection,
    load_id: int,
    *,
    status: str,
    read: int,
    loaded: int,
    quarantined: dict[str, int],
    stored_path: str,
    error: str | None = None,
    details: dict | None = None,
) -> None:
    conn.execute(
        """UPDATE ledger.loads SET status = %s, records_read = %s, records_loaded = %s,
               records_quarantined = %s, quarantined_by_reason = %s, stored_path = %s, error = %s,
               details = %s, finished_at = %s
           WHERE load_id = %s""",
        (
            status,
            read,
            loaded,
            sum(quarantined.values()),
            Jsonb(quarantined),
            stored_path,
            error,
            Jsonb(details or {}),
            datetime.now(UTC),
            load_id,
        ),
    )


def set_stored_path(conn: psycopg.Connection, load_id: int, stored_path: str) -> None:
    with conn.transaction():
        conn.execute("UPDATE ledger.loads SET stored_path = %s WHERE load_id = %s", (stored_path, load_id))


def mark_superseded(conn: psycopg.Connection, load_ids: list[int]) -> None:
    conn.execute("UPDATE ledger.loads SET status = 'superseded' WHERE load_id = ANY(%s)", (load_ids,))


def mark_failed(conn: psycopg.Connection, load_ids: list[int], error: str) -> None:
    """After a failed data transaction: the loads are errored with the reason (a re-run retries them)."""
    with conn.transaction():
        conn.execute(
            "UPDATE ledger.loads SET status = 'errored', error = %s, finished_at = now() WHERE load_id = ANY(%s)",
            (error, load_ids),
        )


def known_schema(conn: psycopg.Connection, scope: str) -> list[tuple[str, str, str, int]]:
    """Every (field, path, JSON type, first load) `scope` (a source, or a source's network) has recorded."""
    return conn.execute(
        "SELECT field, path, json_type, first_load_id FROM ledger.source_fields WHERE source = %s", (scope,)
    ).fetchall()


def record_schema(
    conn: psycopg.Connection, scope: str, pairs_by_load: dict[int, set[tuple[str, str, str]]]
) -> None:
    """Add the (field, path, JSON type) pairs each load carried to the scope's known schema."""
    # In one order whatever the loads, so that two partitions of a scope loading at once lock rows alike.
    rows = sorted(
        (scope, *pair, load_id, load_id) for load_id, pairs in pairs_by_load.items() for pair in pairs
    )
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO ledger.source_fields (source, field, path, json_type, first_load_id, last_load_id)
               VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (source, path, json_type) DO UPDATE SET
                   first_load_id = least(ledger.source_fields.first_load_id, EXCLUDED.first_load_id),
                   last_load_id = greatest(ledger.source_fields.last_load_id, EXCLUDED.last_load_id)""",
            rows,
        )


def start_extract(conn: psycopg.Connection, *, source: str, path: str, run_id: str) -> int:
    """A load for an extraction from a database (no file): registered directly as `ingesting`. `path` names the
    query and the run, so a retried run reuses its row and every other extraction gets its own."""
    with conn.transaction():
        return conn.execute(
            """INSERT INTO ledger.loads (source, path, stored_path, size_bytes, sha256, status, started_at, run_id,
                                        attempts)
               VALUES (%s, %s, %s, 0, '', 'ingesting', now(), %s, 1)
               ON CONFLICT (source, path, sha256) DO UPDATE SET status = 'ingesting', started_at = now(),
                   attempts = ledger.loads.attempts + 1
               RETURNING load_id""",
            (source, path, path, run_id),
        ).fetchone()[0]


def watermark(conn: psycopg.Connection, source: str) -> datetime | None:
    cursor = partition_cursor(conn, source, "")
    return cursor.watermark if cursor else None


def set_watermark(conn: psycopg.Connection, source: str, value: datetime, run_id: str) -> None:
    advance_cursor(conn, source, "", Cursor(value), run_id)


@dataclass(frozen=True)
class Cursor:
    watermark: datetime
    since_id: str | None = None


def partition_cursor(conn: psycopg.Connection, source: str, partition_key: str) -> Cursor | None:
    row = conn.execute(
        "SELECT watermark, since_id FROM ledger.watermarks WHERE source = %s AND partition_key = %s",
        (source, partition_key),
    ).fetchone()
    return Cursor(*row) if row else None


def advance_cursor(
    conn: psycopg.Connection, source: str, partition_key: str, cursor: Cursor, run_id: str
) -> None:
    """Move a cursor forward, never back (ids compare as numbers: they outgrow any fixed width of text)."""
    conn.execute(
        """INSERT INTO ledger.watermarks (source, partition_key, watermark, since_id, run_id)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (source, partition_key) DO UPDATE SET
               watermark = greatest(ledger.watermarks.watermark, EXCLUDED.watermark),
               since_id = CASE WHEN ledger.watermarks.since_id IS NULL
                   OR EXCLUDED.since_id::numeric > ledger.watermarks.since_id::numeric
                   THEN EXCLUDED.since_id ELSE ledger.watermarks.since_id END,
               updated_at = now(), run_id = EXCLUDED.run_id""",
        (source, partition_key, cursor.watermark, cursor.since_id, run_id),
    )
