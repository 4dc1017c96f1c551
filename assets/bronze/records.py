"""A ledgered file's records as bronze reads them, and the typed column values extracted from each.

`read_records` picks the reader for the source's format; `extractor` turns a parsed record into the values of
the source's configured fields, converted to their Postgres types (None where a value does not convert).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import orjson

from assets.bronze import ledger
from assets.bronze.readers import Record, csv_records, detect_encoding, json_document_records, jsonl_records
from assets.bronze.sources import Field, Source


def raw_json_dumps(obj) -> bytes:
    """jsonb dumper for COPY: raw JSON arrives as bytes already serialized and passes through untouched."""
    return obj if isinstance(obj, bytes) else orjson.dumps(obj)


def locate(landing_root: Path, load: ledger.Load) -> Path:
    """Where the bytes are now: archived, or still where they landed."""
    stored = landing_root / load.stored_path
    return stored if stored.exists() else landing_root / load.path


def read_records(source: Source, path: Path, details: dict) -> Iterator[Record]:
    """The file's records as its format reads them (repairs and encoding noted in `details`)."""
    if source.format == "jsonl":
        return jsonl_records(path)
    if source.format == "json":
        pages = source.embedded.embed if source.embedded else None
        records, repairs = json_document_records(path, source.record_path, pages)
        if repairs:
            details["repairs"] = repairs
        return records
    encoding = detect_encoding(path)
    details["encoding"] = encoding
    return csv_records(path, encoding)


def extractor(fields: tuple[Field, ...]) -> Callable[[dict], tuple]:
    converters = [(_CONVERT[f.pg_type], f.names, {_norm(n) for n in f.names}) for f in fields]

    def extract(obj: dict) -> tuple:
        out = []
        for convert, names, normalized in converters:
            value = None
            for name in names:
                value = obj.get(name)
                if value is not None:
                    break
            else:
                # Key names drift in case and separators (likeCount / like_count / Like_Count).
                for key, candidate in obj.items():
                    if candidate is not None and _norm(key) in normalized:
                        value = candidate
                        break
            out.append(None if value is None else convert(value))
        return tuple(out)

    return extract


def _norm(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def _to_text(value) -> str | None:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return None


def _to_int8(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            return None
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return value
    return None


def _to_float8(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _to_bool(value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    return None


def _to_timestamptz(value) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y")  # the Twitter API's created_at
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _to_date(value) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


_CONVERT = {
    "text": _to_text,
    "int8": _to_int8,
    "float8": _to_float8,
    "bool": _to_bool,
    "timestamptz": _to_timestamptz,
    "date": _to_date,
}
