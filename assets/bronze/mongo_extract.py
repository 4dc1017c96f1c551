"""MongoDB collections extracted into bronze, one asset each, incrementally by an `updated_at` watermark.

Each extraction reads documents with `updated_at > watermark - lag`: the lag window re-reads the recent past so
a write that commits late with an earlier timestamp is not missed. Every document version is stored once
(unique record hash of its canonical JSON), so re-reading the window is idempotent. The watermark lives in
`ledger.watermarks` and moves in the same transaction as the rows.
"""

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import orjson
import psycopg
from psycopg import sql
from psycopg.types.json import set_json_dumps

from assets.automation.conditions import scheduled
from assets.bronze import checks, ledger
from assets.bronze.quarantine import Quarantined, write_quarantine
from assets.bronze.records import raw_json_dumps
from assets.bronze.tables import BRONZE_DDL_LOCK, QUARANTINE, SCHEMA, ensure_quarantine
from assets.conventions import OWNER, retry_policy
from resources import MongoResource, PostgresResource
from resources.postgres import serialized_ddl

MISSING_WATERMARK = "missing_watermark"


@dataclass(frozen=True)
class MongoSource:
    name: str
    domain: str
    description: str
    collection: str
    key_column: str
    watermark_field: str = "updated_at"
    lag: timedelta = timedelta(minutes=15)
    cron: str = "*/5 * * * *"

    @property
    def table(self) -> sql.Identifier:
        return sql.Identifier(SCHEMA, self.name)


MONGO_SOURCES: tuple[MongoSource, ...] = (
    MongoSource(
        name="mongo_campaigns",
        domain="operational",
        description="Marketing campaigns from the operational MongoDB, one row per document version.",
        collection="campaigns",
        key_column="campaign_id",
    ),
)


@dataclass
class Extract:
    load_id: int
    since: datetime | None
    read: int
    loaded: int
    already_seen: int
    quarantined: Counter
    watermark: datetime | None


def ensure_table(conn: psycopg.Connection, source: MongoSource) -> None:
    ensure_quarantine(conn)
    with serialized_ddl(conn, BRONZE_DDL_LOCK):
        conn.execute(
            sql.SQL(
                """CREATE TABLE IF NOT EXISTS {table} (
                    load_id bigint NOT NULL,
                    source_file text NOT NULL,
                    record_number bigint NOT NULL,
                    ingested_at timestamptz NOT NULL DEFAULT now(),
                    record_hash bytea NOT NULL,
                    {key} text NOT NULL,
                    {watermark} timestamptz NOT NULL,
                    raw jsonb NOT NULL
                )"""
            ).format(
                table=source.table,
                key=sql.Identifier(source.key_column),
                watermark=sql.Identifier(source.watermark_field),
            )
        )
        conn.execute(
            sql.SQL("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (record_hash)").format(
                sql.Identifier(f"{source.name}_record_hash_key"), source.table
            )
        )


def extract(conn: psycopg.Connection, source: MongoSource, database, *, run_id: str) -> Extract:
    """One incremental extraction of `source` from `database` (a pymongo-compatible Database)."""
    watermark = ledger.watermark(conn, source.name)
    since = watermark - source.lag if watermark else None
    origin = f"mongodb:{database.name}.{source.collection}"
    window = f"{source.watermark_field}>{since.isoformat() if since else '-'}"
    load_id = ledger.start_extract(
        conn, source=source.name, path=f"{origin}?{window}#run={run_id}", run_id=run_id
    )
    # Documents without a usable watermark would never match `$gt`: read them too, to quarantine them.
    unstamped = [{source.watermark_field: {"$exists": False}}, {source.watermark_field: None}]
    query = (
        {"$or": [{source.watermark_field: {"$gt": since.astimezone(UTC).replace(tzinfo=None)}}, *unstamped]}
        if since
        else {}
    )
    documents = database[source.collection].find(query).sort([(source.watermark_field, 1), ("_id", 1)])

    rows, rejected = [], []
    newest = watermark
    for number, document in enumerate(documents, start=1):
        raw = orjson.dumps(
            document,
            default=_bson_default,
            option=orjson.OPT_SORT_KEYS | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z,
        )
        stamp = document.get(source.watermark_field)
        key = document.get("_id")
        if not isinstance(stamp, datetime) or key is None:
            rejected.append((number, raw, f"no {source.watermark_field} datetime or no _id"))
            continue
        stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
        newest = max(newest, stamp) if newest else stamp
        rows.append((load_id, origin, number, hashlib.md5(raw).digest(), str(key), stamp, raw))

    set_json_dumps(raw_json_dumps, context=conn)
    with conn.transaction():
        staged = _stage(conn, source, rows)
        inserted = conn.execute(
            sql.SQL(
                """INSERT INTO {table} (load_id, source_file, record_number, record_hash, {key}, {watermark}, raw)
                   SELECT load_id, source_file, record_number, record_hash, key, stamp, raw FROM {staged}
                   ON CONFLICT (record_hash) DO NOTHING"""
            ).format(
                table=source.table,
                key=sql.Identifier(source.key_column),
                watermark=sql.Identifier(source.watermark_field),
                staged=staged,
            )
        ).rowcount
        # A broken document is read again by every extraction until fixed; quarantine each version once.
        known = _quarantined_already(conn, source, [raw for _, raw, _ in rejected])
        entries = []
        for number, raw, detail in rejected:
            if raw not in known:
                known.add(raw)
                entries.append(Quarantined(load_id, origin, number, MISSING_WATERMARK, detail, raw))
        written = write_quarantine(conn, source.name, None, entries)
        quarantined = Counter({MISSING_WATERMARK: written} if written else {})
        read = len(rows) + len(rejected)
        already = read - inserted - sum(quarantined.values())
        ledger.mark_done(
            conn,
            load_id,
            status="archived",
            read=read,
            loaded=inserted,
            quarantined=dict(quarantined),
            stored_path=origin,
            details={"already_seen": already, "since": since.isoformat() if since else None},
        )
        if newest:
            ledger.set_watermark(conn, source.name, newest, run_id)
    return Extract(load_id, since, read, inserted, already, quarantined, newest)


def build_mongo_asset(source: MongoSource) -> dg.AssetsDefinition:
    key = dg.AssetKey(["bronze", source.name])

    @dg.asset(
        key=key,
        group_name=source.domain,
        kinds={"mongodb", "postgres"},
        owners=[OWNER],
        description=f"{source.description} Extracted every run since the `{source.watermark_field}` watermark "
        f"minus a {source.lag} lag window.",
        automation_condition=scheduled(source.cron),
        check_specs=[
            dg.AssetCheckSpec(
                checks.ACCOUNTED,
                asset=key,
                blocking=True,
                description="Documents read = new versions loaded + quarantined + already seen by an earlier extraction.",
            )
        ],
        retry_policy=retry_policy(2),
        metadata={"dagster/table_name": f"{SCHEMA}.{source.name}", "collection": source.collection},
    )
    def mongo_asset(
        context: dg.AssetExecutionContext, postgres: PostgresResource, mongo: MongoResource
    ) -> dg.MaterializeResult:
        with postgres.connect(autocommit=True) as conn:
            ledger.ensure_schema(conn)
            ensure_table(conn, source)
            with mongo.database() as database:
                result = extract(conn, source, database, run_id=context.run_id)
            rows = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(source.table)).fetchone()[0]
        accounted = result.read == result.loaded + result.already_seen + sum(result.quarantined.values())
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "documents_read": result.read,
                "versions_loaded": result.loaded,
                "already_seen": result.already_seen,
                "quarantined_by_reason": dg.MetadataValue.json(dict(result.quarantined)),
                "watermark": result.watermark.isoformat() if result.watermark else "",
                "extracted_since": result.since.isoformat() if result.since else "(full extraction)",
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=checks.ACCOUNTED,
                    passed=accounted,
                    severity=dg.AssetCheckSeverity.ERROR,
                    metadata={
                        "read": result.read,
                        "loaded": result.loaded,
                        "already_seen": result.already_seen,
                    },
                )
            ],
        )

    return mongo_asset


def _quarantined_already(conn: psycopg.Connection, source: MongoSource, raws: list[bytes]) -> set[bytes]:
    if not raws:
        return set()
    rows = conn.execute(
        sql.SQL("SELECT raw_bytes FROM {} WHERE source = %s AND raw_bytes = ANY(%s)").format(QUARANTINE),
        (source.name, raws),
    ).fetchall()
    return {raw for (raw,) in rows}


def _stage(conn: psycopg.Connection, source: MongoSource, rows: list[tuple]) -> sql.Identifier:
    staged = sql.Identifier("mongo_extract_rows")
    conn.execute(
        sql.SQL(
            """CREATE TEMP TABLE {} (load_id bigint, source_file text, record_number bigint, record_hash bytea,
                   key text, stamp timestamptz, raw jsonb) ON COMMIT DROP"""
        ).format(staged)
    )
    with conn.cursor() as cur, cur.copy(sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(staged)) as copy:
        copy.set_types(["int8", "text", "int8", "bytea", "text", "timestamptz", "jsonb"])
        for row in rows:
            copy.write_row(row)
    return staged


def _bson_default(value):
    """ObjectId, Decimal128 and friends serialize as their string form."""
    return str(value)
