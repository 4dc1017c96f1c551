"""Per-source bookkeeping of what was written, and the manifest file that tests and loaders trust."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict

import orjson

from strata.generate.core import GENERATOR_VERSION, Run, sha256_file


class Partition:
    """What a correct loader must end up with for one partition."""

    def __init__(self) -> None:
        self.records_read = 0
        self.bronze_rows = 0
        self.distinct_keys = 0
        self.quarantined: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        # Records a stream's dumps hand on to the partitions of their event days (read here, loaded there).
        self.split_into_days = 0

    def loaded(self, n: int = 1) -> None:
        self.records_read += n
        self.bronze_rows += n

    def quarantine(self, reason: str, n: int = 1) -> None:
        self.records_read += n
        self.quarantined[reason] += n

    def to_dict(self) -> dict:
        return {
            "records_read": self.records_read,
            "bronze_rows": self.bronze_rows,
            "quarantined": dict(self.quarantined),
            "distinct_keys": self.distinct_keys,
            "faults": {kind: n for kind, n in self.faults.items() if n},
            **({"split_into_days": self.split_into_days} if self.split_into_days else {}),
        }


def account_json_file(
    report: SourceReport, part: Partition, rel: str, kind: str | None, records: int
) -> bool:
    """Count a JSON file written with fault `kind` (None for a clean one). An unrepairable (truncated) file is
    one quarantined record; any other file loads all its records. Returns whether it loads."""
    if kind:
        part.faults[kind] += 1
    if kind == "json_truncated":
        part.quarantine("unrepairable_json")
        report.add_file(rel, 1)
        return False
    part.loaded(records)
    part.distinct_keys += records
    report.add_file(rel, records)
    return True


class SourceReport:
    def __init__(self, run: Run) -> None:
        self.run = run
        self.files: list[dict] = []
        self.duplicate_files: list[dict] = []
        self.partitions: dict[str, Partition] = {}
        self.expect: dict = {}
        # Facts a later source of the same drop builds on (the posts' media, which image_labels labels); not
        # written to the manifest.
        self.shared: dict = {}

    def partition(self, key: str) -> Partition:
        return self.partitions.setdefault(key, Partition())

    def add_file(self, rel: str, records: int, *, duplicate_of: str | None = None) -> None:
        """Record a written file. A duplicate is a byte-identical re-landing: the loader skips it by
        sha256, so it reads 0 records from it."""
        path = self.run.out / rel
        self.files.append(
            {
                "path": rel,
                "bytes": path.stat().st_size,
                "sha256": sha256_file(path),
                "records": 0 if duplicate_of else records,
            }
        )
        if duplicate_of:
            self.duplicate_files.append({"path": rel, "duplicate_of": duplicate_of})

    def to_dict(self) -> dict:
        return {
            "files": sorted(self.files, key=lambda f: f["path"]),
            "duplicate_files": sorted(self.duplicate_files, key=lambda f: f["path"]),
            "partitions": {key: part.to_dict() for key, part in sorted(self.partitions.items())},
            "expect": self.expect,
        }


def write_manifest(run: Run, reports: dict[str, SourceReport]) -> dict:
    totals: Counter[str] = Counter()
    for report in reports.values():
        for part in report.partitions.values():
            totals.update(part.faults)
    manifest = {
        "generator": GENERATOR_VERSION,
        "args": {"scale": run.scale, "days": run.days, "seed": run.seed, "start": run.start.isoformat()},
        "fault_rates": asdict(run.rates),
        "fault_totals": {kind: n for kind, n in totals.items() if n},
        "sources": {name: report.to_dict() for name, report in reports.items()},
    }
    data = orjson.dumps(manifest, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n"
    run.out.mkdir(parents=True, exist_ok=True)
    (run.out / "manifest.json").write_bytes(data)
    # Return what a reader of the file gets, so callers and the file can never disagree.
    return orjson.loads(data)
