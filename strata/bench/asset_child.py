"""The bronze asset as production runs it, on one landed file, in a process of its own:
`python -m strata.bench.asset_child --url URL --file F --work DIR`.

The file is linked into a fresh landing zone under the social-posts contract (`network=x/date=…`), the bronze and
ledger schemas and the Mongo store start empty, and the clock covers one materialization of `bronze/social_posts`
for that partition, through Dagster with the in-process executor the run workers use: discovery (hashing and
ledger registration, as a run started by hand does), the COPY with its duplicate screen and quarantine, the
four checks, the metadata, and the move of the file to the archive. A second clock covers the materialization of
`documents/social_posts` that follows it in production: the raw-document copy into the embedded Mongo engine
(the source mirrors to Mongo; the default engine is the embedded one) with its check.

Memory: the peak RSS of this process (the kernel's high-water mark, VmHWM) plus its children's, sampled every
50 ms, over both materializations; the figures are the RSS just before them, the peak once bronze is loaded and the
peak over both. Prints one JSON line with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psutil
import psycopg

from assets.bronze.documents import MONGO_BRONZE_DATABASE, documents_assets, documents_key
from assets.bronze.factory import bronze_assets
from assets.bronze.sources import SOURCES_BY_NAME
from assets.partitions import key_for
from resources import LandingZoneResource, MongoResource, PostgresResource

SOURCE = SOURCES_BY_NAME["social_posts"]
NETWORK = "x"
SAMPLE_EVERY_S = 0.05
CHILDREN_EVERY_S = 1.0


def _high_water_mark() -> int:
    """This process's peak RSS in bytes: VmHWM belongs to the process's own memory map. (ru_maxrss does not: a
    child spawned with vfork, as subprocess does, inherits the parent's peak through exec.)"""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # reported in kB
    raise RuntimeError("no VmHWM in /proc/self/status")


class TreeRss:
    """The peak RSS (MB) of this process plus its children while `with` runs: this process's own peak from the
    kernel (VmHWM), its children's RSS sampled (the list of children refreshed every second, since walking
    /proc for them is what costs)."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = 0.0
        self._children: list[psutil.Process] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def now(self) -> float:
        return (self.process.memory_info().rss + self._children_rss()) / 1e6

    def _children_rss(self) -> int:
        total = 0
        for child in self._children:
            try:
                total += child.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def _sample(self) -> None:
        refreshed = 0.0
        while not self._stop.is_set():
            if time.monotonic() - refreshed >= CHILDREN_EVERY_S:
                self._children, refreshed = self.process.children(recursive=True), time.monotonic()
            own_peak = _high_water_mark()
            self.peak = max(self.peak, (own_peak + self._children_rss()) / 1e6)
            self._stop.wait(SAMPLE_EVERY_S)

    def __enter__(self) -> TreeRss:
        self.peak = self.now()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def prepare(url: str, file: Path, work: Path, day: str) -> tuple[Path, Path]:
    """A fresh landing zone holding `file` as the partition's one file, a fresh Mongo store, empty schemas."""
    landing, mongo = work / "landing", work / "mongo"
    shutil.rmtree(landing, ignore_errors=True)
    shutil.rmtree(mongo, ignore_errors=True)
    folder = landing / "social" / "posts" / f"network={NETWORK}" / f"date={day}"
    folder.mkdir(parents=True)
    try:
        os.link(file, folder / "posts.jsonl")  # the asset moves it to the archive: a link leaves the corpus
    except OSError:
        shutil.copyfile(file, folder / "posts.jsonl")
    with psycopg.connect(url, autocommit=True) as conn:
        # New tables rather than TRUNCATE: a truncated table keeps the statistics of its old contents.
        conn.execute("DROP SCHEMA IF EXISTS bronze CASCADE")
        conn.execute("DROP SCHEMA IF EXISTS ledger CASCADE")
        conn.execute("CHECKPOINT")
    return landing, mongo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--file", required=True, type=Path)
    parser.add_argument(
        "--work", required=True, type=Path, help="a folder for the landing zone and Mongo store"
    )
    args = parser.parse_args(argv)
    day = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    landing, mongo = prepare(args.url, args.file.resolve(), args.work, day)
    [asset] = [a for a in bronze_assets if a.key == SOURCE.asset_key]
    [documents_asset] = [a for a in documents_assets if a.key == documents_key(SOURCE)]
    resources = {
        "postgres": PostgresResource(url=args.url, application_name="strata-bench"),
        "mongo": MongoResource(url=mongo.as_uri()),
        "landing": LandingZoneResource(root=str(landing)),
    }
    partition_key = key_for("date_network", day, NETWORK)
    instance = dg.DagsterInstance.ephemeral()
    with TreeRss() as rss:
        rss_before = rss.now()
        started = time.perf_counter()
        result = dg.materialize(
            [asset], partition_key=partition_key, resources=resources, instance=instance, raise_on_error=False
        )
        seconds = time.perf_counter() - started
        # The kernel's peak only rises: read now, it is the bronze materialization's own.
        bronze_peak = max(rss.peak, rss.now())
        if result.success:
            started = time.perf_counter()
            copied = dg.materialize(
                [documents_asset],
                partition_key=partition_key,
                resources=resources,
                instance=instance,
                raise_on_error=False,
            )
            documents_seconds = time.perf_counter() - started
    for run in (result, copied) if result.success else (result,):
        if not run.success:
            failure = next((e for e in run.all_events if e.is_step_failure), None)
            print(f"the materialization failed: {failure.event_specific_data.error if failure else run}")
            return 1
    (materialization,) = result.asset_materializations_for_node(asset.op.name)
    metadata = materialization.metadata
    with psycopg.connect(args.url) as conn:
        rows = conn.execute("SELECT count(*) FROM bronze.social_posts").fetchone()[0]
        in_quarantine = conn.execute("SELECT count(*) FROM bronze.quarantine").fetchone()[0]
    with MongoResource(url=mongo.as_uri()).database(MONGO_BRONZE_DATABASE) as database:
        documents = database[SOURCE.name].count_documents({})
    print(
        json.dumps(
            {
                "seconds": seconds,
                "documents_seconds": documents_seconds,
                "records_read": metadata["records_read"].value,
                "rows_loaded": metadata["rows_loaded"].value,
                "rows_in_table": rows,
                "rows_in_quarantine": in_quarantine,
                "mongo_documents": documents,
                "quarantined": metadata["quarantined_by_reason"].value,
                "checks": {
                    e.check_name: e.passed
                    for run in (result, copied)
                    for e in run.get_asset_check_evaluations()
                },
                "bytes": metadata["bytes"].value,
                "rss_before_load_mb": rss_before,
                "bronze_peak_rss_mb": bronze_peak,
                "peak_rss_mb": rss.peak,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
