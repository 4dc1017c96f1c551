"""Strata's bronze loader on one file, in a process of its own: `python -m strata.bench.loader_child …`.

Registers the file in the ledger (as the landing sensor would), then times exactly what the bronze asset
does with it: `assets.bronze.load.load_partition` inside one transaction, and the commit. The Mongo mirror
is off (mongo_collection=None) — the bench measures the Postgres load. Prints one JSON line with the
figures, including this process's peak RSS (getrusage(RUSAGE_SELF).ru_maxrss, which covers the whole run).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from dagster import MultiPartitionKey

from assets.bronze import ledger
from assets.bronze import load as load_module
from assets.bronze.load import load_partition
from assets.bronze.sources import SOURCES_BY_NAME
from assets.bronze.tables import ensure_tables
from strata.bench.data import sha256

SOURCE = SOURCES_BY_NAME["social_posts"]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _time_duplicate_check() -> dict[str, float]:
    """Time the loader's set-based duplicate check on its own (load_partition looks it up at call time)."""
    phases = {"duplicate_check": 0.0}
    original = load_module._quarantine_duplicates

    def timed(*args, **kwargs):
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            phases["duplicate_check"] += time.perf_counter() - started

    load_module._quarantine_duplicates = timed
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--file", required=True, type=Path)
    parser.add_argument("--date", default="2026-11-01")
    parser.add_argument("--network", default="x")
    parser.add_argument("--fresh", action="store_true", help="empty the bronze table, quarantine and ledger")
    args = parser.parse_args(argv)
    path: Path = args.file.resolve()
    partition_key = MultiPartitionKey({"date": args.date, "network": args.network})
    rss_imported = _rss_mb()
    with psycopg.connect(args.url, autocommit=True, application_name="strata-bench") as conn:
        ledger.ensure_schema(conn)
        ensure_tables(conn, SOURCE)
        if args.fresh:
            # New tables rather than TRUNCATE: a truncated table keeps statistics of its old contents, and
            # the planner then misjudged the duplicate check (see the bench report notes).
            conn.execute("DROP SCHEMA IF EXISTS bronze CASCADE")
            conn.execute("DROP SCHEMA IF EXISTS ledger CASCADE")
            ledger.ensure_schema(conn)
            ensure_tables(conn, SOURCE)
        conn.execute("CHECKPOINT")
        stat = path.stat()
        landed = ledger.LandedFile(
            path=path.name,
            partition_key=partition_key,
            size_bytes=stat.st_size,
            mtime=datetime.fromtimestamp(stat.st_mtime, UTC),
            sha256=sha256(path),
        )
        ((load, _),) = ledger.register(conn, SOURCE.name, [landed])
        ledger.mark_ingesting(conn, [load.load_id], "bench")
        rss_before = _rss_mb()
        phases = _time_duplicate_check()
        started = time.perf_counter()
        with conn.transaction():
            (outcome,) = load_partition(conn, SOURCE, partition_key, [load], landing_root=path.parent)
        seconds = time.perf_counter() - started
        rows = conn.execute(
            "SELECT count(*) FROM bronze.social_posts WHERE load_id = %s", (load.load_id,)
        ).fetchone()[0]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "duplicate_check_seconds": phases["duplicate_check"],
                "records_read": outcome.read,
                "rows_loaded": outcome.loaded,
                "rows_in_table": rows,
                "quarantined": dict(outcome.quarantined),
                "error": outcome.error,
                "bytes": stat.st_size,
                "load_id": load.load_id,
                "peak_rss_mb": _rss_mb(),
                "rss_after_imports_mb": rss_imported,
                "rss_before_load_mb": rss_before,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
