"""The raw-document copy of a mirrored source: its records in MongoDB's `bronze` database, one document per
bronze row, as an asset of its own downstream of the bronze table (`documents/<source>`).

Bronze loads at COPY speed and never waits on the document store: a slow or unavailable Mongo fails this copy,
not the warehouse load, and the copy catches up when it can. A document holds what the sender's file held for
that record (read again from the archived file, so it is the record as parsed, not as jsonb rewrote it), keys
MongoDB forbids escaped, under `_id` = the file's content hash and the record number.

What is copied is tracked in `ledger.documents`, one row per load with the time of the bronze load it copied:
a partition's loads are compared with it, a load loaded again since (a partition reload) is copied again, one
no longer current (superseded, errored) leaves Mongo. A load's row is written only once its documents are in,
so a run killed mid-copy leaves that load to be copied again by the next run.
"""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from psycopg import sql

from assets.automation.conditions import refresh_condition
from assets.bronze import ledger
from assets.bronze.records import locate, read_records
from assets.bronze.sources import SOURCES, Source
from assets.bronze.tables import ensure_tables, table
from assets.conventions import OWNER, retry_policy
from resources import LandingZoneResource, MongoResource, PostgresResource

MONGO_BRONZE_DATABASE = "bronze"
BATCH = 1000
# MongoDB's error code for an `_id` (or unique key) already present.
DUPLICATE_KEY = 11000
MATCHES_BRONZE = "matches_bronze"
# MongoDB stores at most 100 levels of nesting and a document holds its record one level down: the bronze load
# quarantines a record of a mirrored source nested deeper than this (well inside both), so that every bronze
# row has its document.
MAX_MIRROR_DEPTH = 64


def documents_key(source: Source) -> dg.AssetKey:
    return dg.AssetKey(["documents", source.name])


@dataclass
class Copied:
    """What one partition's copy did."""

    partition_key: str | None
    loads_copied: int
    loads_removed: int
    documents_written: int
    documents: int
    bronze_rows: int


def copy_partition(conn, source: Source, partition_key: str | None, collection, landing_root: Path) -> Copied:
    """Bring the partition's documents in line with the loads bronze holds now (`conn` in autocommit)."""
    # One copier per partition, or two would delete each other's documents. A session lock: a killed run's
    # session ends, and its lock with it.
    lock = (f"documents/{source.name}", partition_key)
    conn.execute("SELECT pg_advisory_lock(hashtext(%s), hashtext(coalesce(%s, '')))", lock)
    try:
        return _copy_partition(conn, source, partition_key, collection, landing_root)
    finally:
        conn.execute("SELECT pg_advisory_unlock(hashtext(%s), hashtext(coalesce(%s, '')))", lock)


def _copy_partition(
    conn, source: Source, partition_key: str | None, collection, landing_root: Path
) -> Copied:
    current = {
        load.load_id: load
        for load in ledger.live_loads(conn, source.name, partition_key)
        if load.status == "archived"
    }
    loaded_at = dict(
        conn.execute(
            "SELECT load_id, finished_at FROM ledger.loads WHERE load_id = ANY(%s)", (list(current),)
        ).fetchall()
    )
    copied = dict(
        conn.execute(
            "SELECT load_id, loaded_at FROM ledger.documents"
            " WHERE source = %s AND partition_key IS NOT DISTINCT FROM %s",
            (source.name, partition_key),
        ).fetchall()
    )
    gone = [load_id for load_id in copied if load_id not in current]
    stale = sorted(load_id for load_id in current if copied.get(load_id) != loaded_at[load_id])
    if gone or stale:
        # The ledger forgets them before Mongo does: a run killed in between copies them again.
        conn.execute("DELETE FROM ledger.documents WHERE load_id = ANY(%s)", (gone + stale,))
        collection.delete_many({"load_id": {"$in": gone + stale}})
    written = 0
    for load_id in stale:
        written += _copy_load(conn, source, partition_key, current[load_id], collection, landing_root)
    (bronze_rows,) = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE load_id = ANY(%s)").format(table(source)), (list(current),)
    ).fetchone()
    documents = collection.count_documents({"load_id": {"$in": list(current)}}) if current else 0
    return Copied(partition_key, len(stale), len(gone), written, documents, bronze_rows)


def _copy_load(
    conn, source: Source, partition_key: str | None, load: ledger.Load, collection, landing_root: Path
) -> int:
    """Insert the documents of the records bronze kept from `load`'s file and record the copy; returns how many.

    The file's records come in record-number order, as bronze's rows do from its (load_id, record_number) index:
    the two are merged as they stream, so memory stays flat whatever the file's size. The bronze load's time and
    its rows are read in one snapshot: if bronze loads the file again meanwhile, the recorded time is the older
    one and the next run copies the load again."""
    path = locate(landing_root, load)
    if not path.exists():
        raise dg.Failure(
            description=f"documents/{source.name}: {load.path} (load {load.load_id}) is neither archived at "
            f"{load.stored_path} nor in the landing zone; its documents cannot be copied"
        )
    count = 0
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        (loaded_at,) = conn.execute(
            "SELECT finished_at FROM ledger.loads WHERE load_id = %s", (load.load_id,)
        ).fetchone()
        with conn.cursor(name=f"documents_{load.load_id}") as kept_rows:
            kept_rows.itersize = 10_000
            kept_rows.execute(
                sql.SQL("SELECT record_number FROM {} WHERE load_id = %s ORDER BY record_number").format(
                    table(source)
                ),
                (load.load_id,),
            )
            numbers = iter(kept_rows)
            kept = next(numbers, None)
            batch: list[dict] = []
            for record in read_records(source, path, {}):
                while kept is not None and kept[0] < record.number:
                    kept = next(numbers, None)
                if kept is None:
                    break
                if kept[0] != record.number:
                    continue
                batch.append(
                    {
                        "_id": document_id(load.sha256, record.number),
                        "load_id": load.load_id,
                        "source_file": load.path,
                        "record_number": record.number,
                        "record": escape_keys(record.obj),
                    }
                )
                if len(batch) >= BATCH:
                    _insert(collection, batch)
                    count += len(batch)
                    batch = []
            if batch:
                _insert(collection, batch)
                count += len(batch)
        conn.execute(
            "INSERT INTO ledger.documents (load_id, source, partition_key, loaded_at, documents)"
            " VALUES (%s, %s, %s, %s, %s)",
            (load.load_id, source.name, partition_key, loaded_at, count),
        )
    return count


def document_id(sha256: str, record_number: int) -> str:
    return f"{sha256[:16]}:{record_number}"


def _insert(collection, documents: list[dict]) -> None:
    """Insert the batch: the load's earlier documents were deleted first, so an `_id` is new unless another
    writer put it there meanwhile — those few are replaced. (Plain inserts cost the embedded engine half of
    what upserts do.)"""
    from pymongo import ReplaceOne
    from pymongo.errors import BulkWriteError

    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if not errors or any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        collection.bulk_write(
            [ReplaceOne({"_id": e["op"]["_id"]}, e["op"], upsert=True) for e in errors], ordered=False
        )


def escape_keys(value):
    """Mongo forbids `$` and `.` in keys: percent-encode them (and `%` itself, so it reverses exactly); an integer
    beyond BSON's becomes a Decimal128. (Records nested deeper than MongoDB holds never reach bronze.)"""
    if isinstance(value, dict):
        return {_escape_key(k): escape_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_keys(v) for v in value]
    if type(value) is int and not -(2**63) <= value < 2**63:
        # BSON integers are signed 64-bit; orjson reads integers up to 2**64. Decimal128 keeps them exact.
        from bson.decimal128 import Decimal128

        return Decimal128(str(value))
    return value


def too_deep(raw: bytes, obj) -> bool:
    """Whether the record nests containers deeper than `MAX_MIRROR_DEPTH` (the record itself is level 1). Counting
    brackets in the bytes runs at C speed; only a record with that many is walked."""
    if raw.count(b"{") + raw.count(b"[") <= MAX_MIRROR_DEPTH:
        return False
    level, frontier = 1, [obj]
    while frontier:
        children = []
        for value in frontier:
            children.extend(
                v
                for v in (value.values() if isinstance(value, dict) else value)
                if isinstance(v, dict | list)
            )
        if not children:
            return False
        level += 1
        if level > MAX_MIRROR_DEPTH:
            return True
        frontier = children
    return False


def unescape_key(key: str) -> str:
    return key.replace("%2E", ".").replace("%24", "$").replace("%25", "%")


def _escape_key(key: str) -> str:
    if "%" in key or "$" in key or "." in key:
        return key.replace("%", "%25").replace("$", "%24").replace(".", "%2E")
    return key


def build_documents_asset(source: Source) -> dg.AssetsDefinition:
    key = documents_key(source)

    @dg.asset(
        key=key,
        deps=[source.asset_key],
        group_name=source.domain,
        kinds={"mongodb"},
        owners=[OWNER],
        description=f"The raw records of {source.asset_key.to_user_string()}, one document per bronze row in "
        f"MongoDB's `{MONGO_BRONZE_DATABASE}` database (collection `{source.name}`): the replayable copy of "
        "what the senders sent, as their files held it.",
        partitions_def=source.partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run() if source.partitions_def else None,
        automation_condition=refresh_condition(partitioned=source.partitions_def is not None),
        check_specs=[
            dg.AssetCheckSpec(
                MATCHES_BRONZE,
                asset=key,
                description="One document per bronze row of the partition's current loads, and no other.",
            )
        ],
        retry_policy=retry_policy(2),
        metadata={"mongo_database": MONGO_BRONZE_DATABASE, "mongo_collection": source.name},
    )
    def documents_asset(
        context: dg.AssetExecutionContext,
        postgres: PostgresResource,
        mongo: MongoResource,
        landing: LandingZoneResource,
    ):
        # pymongo loads with the copy, not with the code location.
        from pymongo.errors import PyMongoError

        partition_keys = list(context.partition_keys) if source.partitions_def else [None]
        root = Path(landing.root_path)
        try:
            with postgres.connect(autocommit=True) as conn, mongo.database(MONGO_BRONZE_DATABASE) as database:
                ledger.ensure_schema(conn)
                ensure_tables(conn, source)
                collection = database[source.name]
                # Without the index a MongoDB server scans the whole collection per load.
                collection.create_index("load_id")
                done = [copy_partition(conn, source, p, collection, root) for p in partition_keys]
        except PyMongoError as exc:
            raise dg.Failure(
                description=f"MongoDB unavailable for the raw-document copy of {source.name}: "
                f"{type(exc).__name__}: {exc}. Bronze is loaded; the copy runs again."
            ) from exc
        per_partition = {
            str(c.partition_key): {
                "loads_copied": c.loads_copied,
                "loads_removed": c.loads_removed,
                "documents_written": c.documents_written,
                "documents": c.documents,
                "bronze_rows": c.bronze_rows,
            }
            for c in done
        }
        mismatched = [str(c.partition_key) for c in done if c.documents != c.bronze_rows]
        if len(done) > 1:
            # A run over a range: each partition keeps its own figures.
            for c in done:
                context.add_asset_metadata(
                    {"dagster/row_count": c.documents, **per_partition[str(c.partition_key)]},
                    partition_key=c.partition_key,
                )
        return dg.MaterializeResult(
            metadata={
                **({"dagster/row_count": done[0].documents} if len(done) == 1 else {}),
                "loads_copied": sum(c.loads_copied for c in done),
                "loads_removed": sum(c.loads_removed for c in done),
                "documents_written": sum(c.documents_written for c in done),
                "per_partition": dg.MetadataValue.json(per_partition),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=MATCHES_BRONZE,
                    passed=not mismatched,
                    metadata={
                        "documents": sum(c.documents for c in done),
                        "bronze_rows": sum(c.bronze_rows for c in done),
                        "mismatched_partitions": dg.MetadataValue.json(mismatched),
                    },
                )
            ],
        )

    return documents_asset


documents_assets = [build_documents_asset(source) for source in SOURCES if source.mirror_to_mongo]
