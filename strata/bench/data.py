"""Bench data: social-post JSON lines from the deterministic generator, concatenated into plain files.

`strata.generate` writes one (network, date) partition per folder, in part files (some gzipped). The bench
wants single big files, so the parts are decompressed and concatenated in path order into one `.jsonl`
(a "corpus"), and the files a scenario loads are line prefixes of a corpus. Everything is cached under
`$STRATA_HOME/bench/data` and reused while the generator arguments (recorded in the manifest) match.

The generator's record-level faults stay in at their default rates (malformed lines, byte-identical duplicates,
schema drift: counts as strings, camelCase keys, unknown fields, network-specific fields, re-scraped versions):
Strata's bronze asset loads the file as it would land. Its per-partition file faults (truncated gzip parts,
empty and re-sent files) are off: a corpus is one concatenated file. Loaders that stop at the first bad line
(the anchors, the vector scenario's document reader) get `parseable(…)`: the same file without its malformed
lines, made outside every timing.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from strata.generate import FaultRates, generate

POSTS_PER_SCALE = 1440 * 1.02  # posts a day at scale 1, plus ~2% re-scraped versions
BYTES_PER_POST = 700  # a little under the measured ~726 B, so a corpus sized by it is never too small
FAULTS = FaultRates(
    duplicate_file=0.0,
    truncated_gzip=0.0,
    empty_file=0.0,
)
SEED = 42
_COPY = 8 << 20


@dataclass(frozen=True)
class BenchFile:
    path: Path
    records: int
    bytes: int

    @property
    def mb(self) -> float:
        return self.bytes / 1e6


def data_dir(home: Path) -> Path:
    return home / "bench" / "data"


def scale_for_records(records: int) -> int:
    return max(1, math.ceil(records / POSTS_PER_SCALE))


def scale_for_bytes(size: int) -> int:
    return max(1, math.ceil(size / BYTES_PER_POST / POSTS_PER_SCALE))


def corpus(home: Path, scale: int, log=print) -> BenchFile:
    """All posts of one generated day at `scale`, as one plain JSONL file (generated once, then cached)."""
    root = data_dir(home)
    gen = root / f"gen-s{scale}"
    out = root / f"posts-s{scale}.jsonl"
    meta = out.with_suffix(".meta.json")
    args = {"scale": scale, "days": 1, "seed": SEED, "faults": _faults_key()}
    if out.exists() and meta.exists():
        cached = json.loads(meta.read_text())
        if cached.get("args") == args and out.stat().st_size == cached["bytes"]:
            return BenchFile(out, cached["records"], cached["bytes"])
    manifest_path = gen / "manifest.json"
    manifest = orjson.loads(manifest_path.read_bytes()) if manifest_path.exists() else None
    if not _manifest_matches(manifest, scale):
        log(f"generating social posts at scale {scale} into {gen} (cached for later runs)")
        shutil.rmtree(gen, ignore_errors=True)
        manifest = generate(gen, scale=scale, days=1, seed=SEED, faults=FAULTS, sources=["social_posts"])
    files = sorted(manifest["sources"]["social_posts"]["files"], key=lambda f: f["path"])
    expected = sum(f["records"] for f in files)
    tmp = out.with_suffix(".jsonl.tmp")
    with tmp.open("wb") as sink:
        for entry in files:
            if entry["records"] == 0:
                continue
            path = gen / entry["path"]
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rb") as source:
                shutil.copyfileobj(source, sink, _COPY)
    records = _count_lines(tmp)
    if records != expected:
        raise RuntimeError(f"{out}: {records} lines where the manifest states {expected}")
    tmp.replace(out)
    size = out.stat().st_size
    meta.write_text(json.dumps({"args": args, "records": records, "bytes": size}))
    return BenchFile(out, records, size)


def prefix(source: BenchFile, *, records: int | None = None, size: int | None = None) -> BenchFile:
    """The first `records` lines (or the whole lines within the first `size` bytes) of a corpus, as a file
    of its own next to it (cached). Asking for more than the corpus holds gives the whole corpus."""
    if records is not None and records >= source.records or size is not None and size >= source.bytes:
        return source

    def head(lines: Iterator[bytes]) -> Iterator[bytes]:
        count = written = 0
        for line in lines:
            if records is not None and count >= records or size is not None and written + len(line) > size:
                return
            count += 1
            written += len(line)
            yield line

    tag = f"{records}r" if records is not None else f"{size}b"
    return _derived(source, tag, {"records": records, "size": size}, head)


def parseable(source: BenchFile) -> BenchFile:
    """`source` without the lines that are not JSON objects (cached next to it)."""

    def objects(lines: Iterator[bytes]) -> Iterator[bytes]:
        for line in lines:
            try:
                if isinstance(orjson.loads(line), dict):
                    yield line
            except orjson.JSONDecodeError:
                continue

    return _derived(source, "parseable", {}, objects)


def _derived(
    source: BenchFile, tag: str, args: dict, keep: Callable[[Iterator[bytes]], Iterator[bytes]]
) -> BenchFile:
    """The lines of `source` that `keep` yields, as `<stem>-<tag>.jsonl` next to it; reused while the source
    and `args` are the same."""
    out = source.path.with_name(f"{source.path.stem}-{tag}.jsonl")
    meta = out.with_suffix(".meta.json")
    key = {"source": source.path.name, "source_bytes": source.bytes, **args}
    if out.exists() and meta.exists():
        cached = json.loads(meta.read_text())
        if cached.get("key") == key and out.stat().st_size == cached["bytes"]:
            return BenchFile(out, cached["records"], cached["bytes"])
    count = written = 0
    tmp = out.with_suffix(".jsonl.tmp")
    with source.path.open("rb") as src, tmp.open("wb", buffering=_COPY) as sink:
        for line in keep(src):
            sink.write(line)
            count += 1
            written += len(line)
    tmp.replace(out)
    meta.write_text(json.dumps({"key": key, "records": count, "bytes": written}))
    return BenchFile(out, count, written)


def column_plan(source: BenchFile) -> dict:
    """What a careful pandas/arrow user loads from these posts: one column per top-level field (camelCase
    variants folded into their snake_case column), nested values as JSON text, and a type per column from
    the values seen (text where the values disagree, e.g. counts that are sometimes "1.2K"). Computed once
    per file, outside every timing, and handed to the anchor scripts."""
    plan_path = source.path.with_suffix(".columns.json")
    if plan_path.exists():
        plan = json.loads(plan_path.read_text())
        if plan.get("bytes") == source.bytes:
            return plan
    kinds: dict[str, set[str]] = {}
    renames: dict[str, str] = {}
    with source.path.open("rb") as handle:
        for line in handle:
            for key, value in orjson.loads(line).items():
                column = renames.get(key)
                if column is None:
                    column = renames[key] = snake_case(key)
                kinds.setdefault(column, set()).add(_kind(value))
    columns = [{"name": name, "type": _column_type(seen)} for name, seen in kinds.items()]
    plan = {"bytes": source.bytes, "columns": columns, "renames": renames}
    plan_path.write_text(json.dumps(plan, indent=1))
    return plan


def snake_case(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return "json"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "text"


def _column_type(seen: set[str]) -> str:
    seen = seen - {"null"}
    if seen == {"json"}:
        return "json"
    if seen and seen <= {"int"}:
        return "int"
    if seen and seen <= {"int", "float"}:
        return "float"
    if seen == {"bool"}:
        return "bool"
    return "text"


def _manifest_matches(manifest: dict | None, scale: int) -> bool:
    if not manifest:
        return False
    args = manifest.get("args", {})
    return (
        args.get("scale") == scale
        and args.get("days") == 1
        and args.get("seed") == SEED
        and set(manifest.get("sources", {})) == {"social_posts"}
        and all(manifest.get("fault_rates", {}).get(k) == v for k, v in _faults_key().items())
    )


def _faults_key() -> dict[str, float]:
    return {
        k: getattr(FAULTS, k)
        for k in ("malformed_json", "exact_duplicate", "duplicate_file", "truncated_gzip", "empty_file")
    }


def _count_lines(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        while block := handle.read(_COPY):
            count += block.count(b"\n")
    return count
