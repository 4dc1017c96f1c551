"""Fault rates and the fault injectors shared by several sources.

Record-level rates are per-record probabilities. File-level rates are the fraction of candidate files
(or partitions) affected, with at least one occurrence whenever the rate is positive.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

# Kinds of broken JSON documents (tweets, ambassadors); all but json_truncated are repairable.
JSON_FILE_FAULTS = ("json_bom", "json_trailing_comma", "json_concatenated", "json_lines", "json_truncated")


@dataclass(frozen=True)
class FaultRates:
    # social posts, per record
    malformed_json: float = 0.01
    count_as_string: float = 0.02
    media_count_mismatch: float = 0.05
    media_missing_type: float = 0.02
    key_case_variant: float = 0.02
    unknown_field: float = 0.01
    rescrape_duplicate: float = 0.02
    exact_duplicate: float = 0.01
    # social posts, per (network, date) partition
    duplicate_file: float = 0.05
    truncated_gzip: float = 0.05
    empty_file: float = 0.02
    # tweets and ambassadors, per JSON file
    json_bom: float = 0.02
    json_trailing_comma: float = 0.02
    json_concatenated: float = 0.02
    json_lines: float = 0.02
    json_truncated: float = 0.02
    # CSVs
    quoted_comma: float = 0.05  # accounts rows
    embedded_newline: float = 0.01  # accounts rows
    latin1_encoding: float = 0.1  # accounts days
    header_only_csv: float = 0.1  # video session days
    completion_over_100: float = 0.02  # video sessions
    playback_no_event_time: float = 0.002  # video playback events


def count_string(rng: random.Random, value: int) -> tuple[str, int]:
    """Render a count the way scrapers see it ("1.2K", "3,400", "1.5M") and return the exact value the
    string denotes, which becomes the true count: rounding happens here, never in the loader."""
    style = rng.randrange(3)
    if value >= 1_000_000 and style == 0:
        value = (value + 50_000) // 100_000 * 100_000
        return _trim(value / 1_000_000) + "M", value
    if value >= 1_000 and style == 1:
        value = (value + 50) // 100 * 100
        return _trim(value / 1_000) + "K", value
    if value >= 1_000:
        return f"{value:,}", value
    return str(value), value


def _trim(number: float) -> str:
    return f"{number:.1f}".removesuffix(".0")


def malformed_line(rng: random.Random, line: bytes) -> bytes:
    """A broken copy of a JSON line: a partial write (any strict prefix of an object is invalid JSON)
    or a Python-repr style dump with single quotes."""
    body = line.rstrip(b"\n")
    if rng.random() < 0.7:
        return body[: rng.randrange(8, len(body) - 1)] + b"\n"
    return body.replace(b'"', b"'") + b"\n"


def truncate_gzip(rng: random.Random, compressed: bytes) -> tuple[bytes, int]:
    """Cut a gzip stream short; return the cut bytes and how many complete lines zlib can still recover.

    The cut is moved until the recoverable text ends inside a line, so the unreadable tail always starts
    with a fragment: the loader keeps complete lines and reports the rest once as `truncated_gzip`.
    """
    cut = int(len(compressed) * rng.uniform(0.45, 0.75))
    while True:
        text = zlib.decompressobj(wbits=31).decompress(compressed[:cut])
        if text and not text.endswith(b"\n"):
            return compressed[:cut], text.count(b"\n")
        cut -= 1


def render_json_file(
    rng: random.Random,
    kind: str | None,
    records: Sequence[object],
    wrap: Callable[[Sequence[object]], object],
    line_size: int,
) -> bytes:
    """Serialize `records` as one JSON document, or broken in the way `kind` says.

    `wrap` turns a list of records into a document (an API response, a bare array). JSON-lines files put
    `line_size` records per line, each wrapped; wrap must place the record array last in the document so
    that a trailing comma lands inside it.
    """
    whole = orjson.dumps(wrap(records))
    if kind is None:
        return whole
    if kind == "json_bom":
        return b"\xef\xbb\xbf" + whole
    if kind == "json_trailing_comma":
        end = whole.rindex(b"]")
        return whole[:end] + b",\n" + whole[end:]
    if kind == "json_concatenated":
        half = len(records) // 2
        return orjson.dumps(wrap(records[:half])) + orjson.dumps(wrap(records[half:]))
    if kind == "json_lines":
        chunks = [records[i : i + line_size] for i in range(0, len(records), line_size)]
        return b"".join(orjson.dumps(wrap(chunk) if line_size > 1 else chunk[0]) + b"\n" for chunk in chunks)
    if kind == "json_truncated":
        return whole[: int(len(whole) * rng.uniform(0.3, 0.8))]
    raise ValueError(f"unknown JSON file fault {kind!r}")
