"""The CDC contract of cdc_brands, replayed from the files alone (independently of dbt and of the generator's
simulation): what silver.brands must hold once a given set of files has landed."""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

COLUMNS = ("brand_id", "name", "category", "country", "is_active", "updated_at")
RELOAD = re.compile(r"cdc/brands/(\d{8})-(\d{9})/LOAD[^/]*$")


def rows(path: Path) -> list[dict]:
    data = path.read_bytes()
    text = (gzip.decompress(data) if path.name.endswith(".gz") else data).decode()
    return list(csv.DictReader(io.StringIO(text, newline="")))


def snapshot_start(relative: str) -> str:
    """Where a full load starts on the header__change_seq scale: the first (at the folder's root) before every
    change, a reload at the moment its folder is named for."""
    found = RELOAD.fullmatch(relative)
    return (found.group(1) + found.group(2)).ljust(35, "0") if found else ""


def replay(out: Path, landed: list[str]) -> list[dict]:
    """The full load that started last is the snapshot; its rows are the oldest events of their keys. Of the I/U/D
    change rows (B before-images never apply), those from the snapshot's start on count and the highest
    header__change_seq wins; a winning D means no row."""
    loads = [relative for relative in landed if "/LOAD" in relative]
    current = max((snapshot_start(relative) for relative in loads), default="")
    winner: dict[str, tuple[str, str, dict]] = {}
    for relative in landed:
        is_load = relative in loads
        if is_load and snapshot_start(relative) != current:
            continue
        for row in rows(out / relative):
            seq, oper = row.get("header__change_seq", ""), row.get("header__change_oper", "L")
            if oper == "B" or (not is_load and seq < current):
                continue
            if row["brand_id"] not in winner or seq > winner[row["brand_id"]][0]:
                winner[row["brand_id"]] = (seq, oper, {c: row[c] for c in COLUMNS})
    return [row for _, (_, oper, row) in sorted(winner.items()) if oper != "D"]
