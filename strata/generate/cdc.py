"""cdc_brands: a Qlik Replicate style full load plus change files for the operational `brands` table.

The table's history is simulated as one ordered stream of changes. The first full load is taken part way
through; the change files start a little before it (overlap) and run to the end. Three keys get scripted
histories the loader must get right: deleted for good, deleted then re-inserted, and a tombstone whose
older update lands in a file that arrives after the delete.

Later, capture goes down for a while (its changes never reach a change file: one key is deleted and one
changed) and the table is reloaded: a second full load lands in a folder named for the moment it started,
`cdc/brands/<YYYYMMDD-HHMMSSmmm>/LOAD00000001.csv.gz`. Changes made while it ran are both in it and in the
change files. The change file holding the last changes before the outage lands after the reload.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random

import orjson

from strata.generate.core import Run, gzip_bytes, rng_for, write_bytes
from strata.generate.manifest import SourceReport

SOURCE = "cdc_brands"
COLUMNS = ("brand_id", "name", "category", "country", "is_active", "updated_at")
HEADERS = ("header__change_seq", "header__change_oper", "header__timestamp")
BRANDS = 50  # at scale 1
CHANGES_PER_DAY = 10  # at scale 1, after the full load
OVERLAP = 3  # changes before the full load that also appear in the change files
OUTAGE = 2  # changes while capture is down, before the reload: a delete and an update, in no change file
RELOAD_OVERLAP = 2  # changes while the reload runs: in its full load and in the change files
CHANGE_FILES = 6
SEQ_WIDTH = 35

_FIRST = (
    "Northwind",
    "Bluebird",
    "Sunpeak",
    "Ironleaf",
    "Velvet",
    "Copperline",
    "Harbor",
    "Maple",
    "Nova",
    "Atlas",
)
_SECOND = (
    "Foods",
    "Outfitters",
    "Labs",
    "Beauty",
    "Sports",
    "Audio",
    "Pet Supply",
    "Travel",
    "Capital",
    "Games",
)
_SUFFIX = ("", " Inc.", ", Ltd.", " & Co", ", LLC")
_CATEGORIES = ("food", "apparel", "beauty", "sports", "electronics", "pets", "travel", "finance", "gaming")
_COUNTRIES = ("US", "GB", "DE", "FR", "ES", "BR", "JP", "IN", "CA", "AU")


def brand_id(index: int) -> str:
    return f"B{index:05d}"


def brand_name(index: int) -> str:
    # Index-only (no seed), so tweets, ambassadors and campaigns can name brands consistently.
    return f"{_FIRST[index % 10]} {_SECOND[index // 10 % 10]}{_SUFFIX[index // 100 % 5]}"


def _seq(moment: datetime, counter: int) -> str:
    # Timestamp digits then a counter: text order equals numeric order equals change order.
    return f"{moment:%Y%m%d%H%M%S}{moment.microsecond // 1000:03d}{counter:0{SEQ_WIDTH - 17}d}"


class _Table:
    def __init__(self, rng: Random) -> None:
        self.rng = rng
        self.rows: dict[int, dict[str, str]] = {}
        self.counter = 0
        self.next_index = 0

    def _row(self, index: int, moment: datetime) -> dict[str, str]:
        return {
            "brand_id": brand_id(index),
            "name": brand_name(index),
            "category": self.rng.choice(_CATEGORIES),
            "country": self.rng.choice(_COUNTRIES),
            "is_active": "true",
            "updated_at": f"{moment:%Y-%m-%d %H:%M:%S}",
        }

    def _rows(self, moment: datetime, *images: tuple[str, dict]) -> list[list[str]]:
        """One change as CSV rows; an update's before-image shares its sequence number (Qlik style)."""
        self.counter += 1
        seq, stamp = _seq(moment, self.counter), f"{moment:%Y-%m-%d %H:%M:%S.%f}"
        return [[seq, oper, stamp, *(row[c] for c in COLUMNS)] for oper, row in images]

    def insert(self, moment: datetime, index: int | None = None) -> list[list[str]]:
        if index is None:
            index, self.next_index = self.next_index, self.next_index + 1
        self.rows[index] = self._row(index, moment)
        return self._rows(moment, ("I", self.rows[index]))

    def update(self, moment: datetime, index: int) -> list[list[str]]:
        before = self.rows[index]
        after = dict(before, updated_at=f"{moment:%Y-%m-%d %H:%M:%S}")
        column = self.rng.choice(("category", "country", "is_active"))
        if column == "is_active":
            after[column] = "false" if before[column] == "true" else "true"
        else:
            after[column] = self.rng.choice(
                [v for v in (_CATEGORIES if column == "category" else _COUNTRIES) if v != before[column]]
            )
        self.rows[index] = after
        return self._rows(moment, ("B", before), ("U", after))

    def delete(self, moment: datetime, index: int) -> list[list[str]]:
        return self._rows(moment, ("D", self.rows.pop(index)))


def _landed_at(path: Path, moment: datetime) -> None:
    # mtime follows the landing time, so "newest file wins" is as wrong by mtime as by name.
    stamp = moment.replace(tzinfo=UTC).timestamp()
    os.utime(path, (stamp, stamp))


def _csv(header: tuple[str, ...], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return gzip_bytes(buffer.getvalue().encode())


def generate(run: Run) -> SourceReport:
    report = SourceReport(run)
    part = report.partition("all")
    rng = rng_for(run.seed, SOURCE, "all")
    table = _Table(rng)
    brands = BRANDS * run.scale
    snapshot_at = datetime(run.start.year, run.start.month, run.start.day) - timedelta(days=1)
    born = snapshot_at - timedelta(days=1)
    for i in range(brands):
        table.insert(born + timedelta(seconds=30 * i))
    before = max(OVERLAP, brands // 5)  # updates between the initial load and the full load
    after = max(15, CHANGES_PER_DAY * run.days * run.scale)
    stream_len = OVERLAP + after  # changes that reach the change files
    per_file = -(-stream_len // CHANGE_FILES)
    deleted, reinserted, tombstone, gone, changed = rng.sample(range(brands), 5)
    outage = range(4 * per_file, 4 * per_file + OUTAGE)
    reload_at = outage.stop  # the position of the first change made while the reload runs
    assert reload_at + RELOAD_OVERLAP < stream_len - 1, "too few changes for the scripted history"
    scripted = {
        OVERLAP + 1: ("D", deleted),
        OVERLAP + 2: ("D", reinserted),
        stream_len - 1: ("I", reinserted),
        3 * per_file - 1: ("U", tombstone),  # last change of the third file, which lands late...
        3 * per_file: ("D", tombstone),  # ...after the fourth file, which starts with the delete
        # Captured just before the outage, then deleted and changed while capture is down: only the reload
        # knows.
        outage.start - 2: ("U", changed),
        outage.start - 1: ("U", gone),
        outage.start: ("D", gone),
        outage.start + 1: ("U", changed),
    }
    protected = {deleted, reinserted, tombstone, gone, changed}
    changes: list[list[list[str]]] = []
    times: list[datetime] = []
    step = timedelta(seconds=run.days * 86400 / (after + 1))
    previous = born
    for i in range(before + after):
        moment = (
            snapshot_at - timedelta(minutes=10 * (before - i))
            if i < before
            else snapshot_at + step * (i - before + 1)
        )
        moment += timedelta(milliseconds=rng.randrange(1000))
        if i == before:
            snapshot = [dict(table.rows[k]) for k in sorted(table.rows)]
        position = i - (before - OVERLAP)
        if position == reload_at:
            reload_started = previous + (moment - previous) / 2
        if position == reload_at + RELOAD_OVERLAP:
            reloaded = [dict(table.rows[k]) for k in sorted(table.rows)]
        previous = moment
        oper, index = scripted.get(position, (None, None))
        if oper == "I":
            change = table.insert(moment, index)
        elif oper == "U":
            change = table.update(moment, index)
        elif oper == "D":
            change = table.delete(moment, index)
        else:
            roll = rng.random()
            candidates = sorted(set(table.rows) - protected)
            if i >= before and roll < 0.15:
                change = table.insert(moment)
            elif i >= before and roll < 0.27:
                change = table.delete(moment, rng.choice(candidates))
            else:
                change = table.update(moment, rng.choice(candidates))
        if position >= 0:
            changes.append([] if position in outage else change)
            times.append(moment)

    snapshot_rel = "cdc/brands/LOAD00000001.csv.gz"
    write_bytes(run.out / snapshot_rel, _csv(COLUMNS, [[row[c] for c in COLUMNS] for row in snapshot]))
    report.add_file(snapshot_rel, len(snapshot))
    part.loaded(len(snapshot))
    reload_folder = f"{reload_started:%Y%m%d-%H%M%S}{reload_started.microsecond // 1000:03d}"
    reload_rel = f"cdc/brands/{reload_folder}/LOAD00000001.csv.gz"
    write_bytes(run.out / reload_rel, _csv(COLUMNS, [[row[c] for c in COLUMNS] for row in reloaded]))
    reload_landed = times[reload_at + RELOAD_OVERLAP - 1] + timedelta(minutes=2)
    _landed_at(run.out / reload_rel, reload_landed)
    report.add_file(reload_rel, len(reloaded))
    part.loaded(len(reloaded))
    keys = {row["brand_id"] for row in snapshot + reloaded}
    opers = dict.fromkeys("IUDB", 0)
    landings = [
        times[min(len(times), start + per_file) - 1] + timedelta(minutes=2)
        for start in range(0, len(changes), per_file)
    ]
    # The fourth file, with the last changes captured before the outage, lands once the reload has.
    landings[3] = max(landings[3], reload_landed + timedelta(minutes=1))
    landings[2] = landings[3] + timedelta(minutes=7)
    assert len(set(landings)) == len(landings), "two change files would land under one name"
    files = []
    for f, start in enumerate(range(0, len(changes), per_file)):
        rows = [row for change in changes[start : start + per_file] for row in change]
        landed = landings[f]
        rel = f"cdc/brands__ct/{landed:%Y%m%d-%H%M%S}{landed.microsecond // 1000:03d}.csv.gz"
        write_bytes(run.out / rel, _csv(HEADERS + COLUMNS, rows))
        _landed_at(run.out / rel, landed)
        report.add_file(rel, len(rows))
        part.loaded(len(rows))
        for row in rows:
            opers[row[1]] += 1
            keys.add(row[3])
        files.append(rel)
    part.distinct_keys = len(keys)
    part.faults.update(
        {
            "cdc_overlap": OVERLAP,
            "cdc_out_of_order_file": 1,
            "cdc_tombstone": 1,
            "cdc_delete_reinsert": 1,
            "cdc_reload": 1,
            "cdc_outage_changes": OUTAGE,
        }
    )

    final = [dict(table.rows[k]) for k in sorted(table.rows)]
    report.expect = {
        "events": opers,
        "snapshot_rows": len(snapshot),
        "reload": {
            "path": reload_rel,
            "rows": len(reloaded),
            "started": f"{reload_started:%Y-%m-%d %H:%M:%S.%f}",
            "lands_before": files[3],
            "deleted_while_capture_was_down": brand_id(gone),
            "changed_while_capture_was_down": brand_id(changed),
        },
        "final_count": len(final),
        "final_state_sha256": hashlib.sha256(orjson.dumps(final, option=orjson.OPT_SORT_KEYS)).hexdigest(),
        "scripted_keys": {
            "deleted": brand_id(deleted),
            "deleted_reinserted": brand_id(reinserted),
            "tombstone": brand_id(tombstone),
        },
        "late_file": {"path": files[2], "lands_after": files[3]},
    }
    if run.small:
        report.expect["final_state"] = final
    return report
