"""Reading landed files as a stream of records, with memory flat in file size (gzip included).

Every reader yields `Record`s numbered from 1 in file order. A record either parsed (`obj` set) or carries
the reason it goes to quarantine; nothing read is dropped. Blank lines are not records.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import orjson

from assets.bronze.repair import JsonRepairError, parse_json_document

CHUNK = 1 << 20
# A gzip member may expand this much (beyond a floor) before the file is treated as a decompression bomb.
MAX_EXPANSION_RATIO = 200
EXPANSION_FLOOR = 256 << 20
# One JSON document file is parsed whole; larger ones must arrive as JSON lines.
MAX_JSON_DOCUMENT_BYTES = 512 << 20
# An escaped NUL (jsonb cannot store U+0000): `\u0000` after an even run of backslashes. After an odd run
# (`\\u0000`) it is a literal backslash followed by the text u0000, which jsonb stores like any text.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_NUL_DETAIL = "\\u0000 cannot be stored in jsonb"
# Byte-order marks of the wide encodings (UTF-32 first: its little-endian mark starts with UTF-16's).
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class Record(NamedTuple):
    number: int
    raw: bytes
    obj: dict | None = None
    reason: str | None = None
    detail: str | None = None


# NamedTuple's generated __new__ is Python code; the per-line hot path builds the tuple directly.
_record = tuple.__new__


class FileError(Exception):
    """The file as a whole cannot be read (it becomes one quarantine entry and an errored load)."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _Truncated(Exception):
    pass


def _has_nul_escape(raw: bytes) -> bool:
    return b"\\u0000" in raw and _NUL_ESCAPE.search(raw) is not None


def _wide_encoding(head: bytes) -> str | None:
    """The UTF-16/32 encoding whose byte-order mark `head` starts with, if any."""
    return next((encoding for bom, encoding in _WIDE_BOMS if head.startswith(bom)), None)


def _refuse_wide(head: bytes) -> None:
    """JSON must be UTF-8 (RFC 8259). Read as UTF-8, a UTF-16/32 file splits at every 0x0A byte into
    garbage records; refused whole, the ledger says why."""
    wide = _wide_encoding(head)
    if wide:
        raise FileError("unsupported_encoding", f"a {wide.upper()} byte-order mark: JSON must be UTF-8")


def _chunks(path: Path) -> Iterator[bytes]:
    """The file's bytes, decompressed if gzip (multi-member too). Raises `_Truncated` after yielding all that
    could be decompressed when the stream ends early, and `FileError` on corrupt or over-expanding input."""
    with path.open("rb") as handle:
        if not path.name.endswith(".gz"):
            while chunk := handle.read(CHUNK):
                yield chunk
            return
        limit = max(EXPANSION_FLOOR, path.stat().st_size * MAX_EXPANSION_RATIO)
        produced = 0
        decompressor = zlib.decompressobj(wbits=31)
        data = handle.read(CHUNK)
        if not data:
            return  # an empty file holds no records, compressed or not
        while data:
            try:
                out = decompressor.decompress(data, CHUNK)
            except zlib.error as exc:
                raise FileError("corrupt_gzip", str(exc)) from exc
            produced += len(out)
            if produced > limit:
                raise FileError(
                    "decompression_limit",
                    f"gzip expands beyond {limit} bytes ({MAX_EXPANSION_RATIO}x its size): refused as a bomb",
                )
            if out:
                yield out
            data = decompressor.unconsumed_tail
            if decompressor.eof:
                # Another gzip member may follow: concatenated .gz files are valid gzip.
                data = decompressor.unused_data
                decompressor = zlib.decompressobj(wbits=31)
                if not data and not (data := handle.read(CHUNK)):
                    return
            elif not data:
                data = handle.read(CHUNK)
        raise _Truncated


def jsonl_records(path: Path) -> Iterator[Record]:
    number = 0
    carry = b""
    first = True
    loads, decode_error, new = orjson.loads, orjson.JSONDecodeError, _record
    try:
        for chunk in _chunks(path):
            if first:
                _refuse_wide(chunk)
                chunk = chunk.removeprefix(codecs.BOM_UTF8)
                first = False
            lines = (carry + chunk).split(b"\n") if carry else chunk.split(b"\n")
            carry = lines.pop()
            for line in lines:
                if line.endswith(b"\r"):
                    line = line[:-1]
                if not line or line.isspace():
                    continue
                number += 1
                # The good line inline (this loop runs for every line of every file); a bad one is parsed
                # again by _json_line, which names the reason.
                try:
                    obj = loads(line)
                except decode_error:
                    obj = None
                if type(obj) is dict and b"\\u0000" not in line:
                    yield new(Record, (number, line, obj, None, None))
                else:
                    yield _json_line(number, line)
    except _Truncated:
        yield Record(
            number + 1, carry, reason="truncated_gzip", detail="gzip stream ends before its end marker"
        )
        return
    last = carry.rstrip(b"\r")
    if last and not last.isspace():
        yield _json_line(number + 1, last)


def _json_line(number: int, line: bytes) -> Record:
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return Record(number, line, reason="malformed_json", detail=str(exc))
    if not isinstance(obj, dict):
        return Record(
            number, line, reason="not_an_object", detail=f"a JSON {type(obj).__name__}, not an object"
        )
    if _has_nul_escape(line):
        return Record(number, line, reason="unsupported_json", detail=_NUL_DETAIL)
    return Record(number, line, obj)


def json_document_records(
    path: Path, record_path: str, pages: Callable[[dict, list], list] | None = None
) -> tuple[Iterator[Record], list[str]]:
    """Records of a whole-JSON file and the repairs it needed. Raises `FileError` when no repair applies.

    With `pages`, each document is an API page: its records are those under `record_path` (none when the page has
    no such key), passed with the page to `pages`, which returns them as stored."""
    size = path.stat().st_size
    if size > MAX_JSON_DOCUMENT_BYTES:
        raise FileError(
            "file_too_large", f"{size} bytes: JSON documents above {MAX_JSON_DOCUMENT_BYTES} are refused"
        )
    try:
        data = b"".join(_chunks(path))
    except _Truncated as exc:
        raise FileError("truncated_gzip", "gzip stream ends before its end marker") from exc
    _refuse_wide(data)
    try:
        documents, repairs = parse_json_document(data)
    except JsonRepairError as exc:
        raise FileError("unrepairable_json", str(exc)) from exc

    def records() -> Iterator[Record]:
        number = 0
        for document in documents:
            if pages is None:
                items = _records_of(document, record_path)
            elif isinstance(document, dict):
                items = pages(document, _as_list(document.get(record_path, [])))
            else:
                items = [document]
            for item in items:
                number += 1
                if not isinstance(item, dict):
                    raw = orjson.dumps(item)
                    yield Record(number, raw, reason="not_an_object", detail=f"a JSON {type(item).__name__}")
                    continue
                try:
                    raw = orjson.dumps(item)
                except orjson.JSONEncodeError as exc:
                    # Parsed, but not writable as JSON again: nested deeper than orjson writes (254 levels),
                    # or an integer beyond 64 bits read exactly by the repair parser. No bytes of it can be
                    # kept (its text would need the same serialization); the archived file has them.
                    yield Record(number, b"", reason="unsupported_json", detail=f"cannot be stored: {exc}")
                    continue
                if _has_nul_escape(raw):
                    yield Record(number, raw, reason="unsupported_json", detail=_NUL_DETAIL)
                    continue
                yield Record(number, raw, item)

    return records(), repairs


def _records_of(document: object, record_path: str) -> list:
    if isinstance(document, list):
        if record_path and all(isinstance(d, dict) and record_path in d for d in document):
            return [item for d in document for item in _as_list(d[record_path])]
        return document
    if record_path and isinstance(document, dict) and record_path in document:
        return _as_list(document[record_path])
    return [document]


def _as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


class _ChunkReader(io.RawIOBase):
    """A file-like view of `_chunks`, so csv can read gzip with the same truncation and bomb handling."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target) -> int:
        while not self._buffer:
            self._buffer = next(self._chunks, b"")
            if not self._buffer:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def detect_encoding(path: Path) -> str:
    """The encoding a UTF-16/32 byte-order mark names if the file decodes with it (read as cp1252 instead,
    every other byte would be a NUL), else utf-8 (BOM or not) if every byte decodes, else cp1252 if it does,
    else latin-1 (total). One streaming pass per candidate; the decision is recorded in the ledger."""
    wide = _wide_encoding(_head(path))
    for encoding in ([wide] if wide else []) + ["utf-8-sig", "cp1252"]:
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            for chunk in _chunks(path):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
        except _Truncated:
            return encoding
    return "latin-1"


def _head(path: Path) -> bytes:
    """The first chunk of the file's (decompressed) bytes."""
    chunks = _chunks(path)
    try:
        return next(chunks, b"")
    except _Truncated:
        return b""
    finally:
        chunks.close()


def csv_records(path: Path, encoding: str) -> Iterator[Record]:
    text = io.TextIOWrapper(io.BufferedReader(_ChunkReader(_chunks(path))), encoding=encoding, newline="")
    # Strict: a quote left open (or text after a closing quote) refuses the file, naming the record. Lenient,
    # an unclosed quote silently swallows every later row into one field of one record.
    reader = csv.reader(text, strict=True)
    number = 0
    try:
        header = next(reader, None)
        if header is None:
            return
        width = len(header)
        # Columns sharing a name: a row is one JSON object only if they hold the same value.
        repeated = {
            name: [i for i, n in enumerate(header) if n == name] for name in header if header.count(name) > 1
        }
        for row in reader:
            if not row:
                continue
            number += 1
            raw_text = _csv_line(row)
            if len(row) != width:
                yield Record(
                    number,
                    raw_text,
                    reason="malformed_csv_row",
                    detail=f"{len(row)} fields where the header has {width}",
                )
                continue
            if repeated:
                clash = next((name for name, at in repeated.items() if len({row[i] for i in at}) > 1), None)
                if clash is not None:
                    yield Record(
                        number,
                        raw_text,
                        reason="ambiguous_csv_row",
                        detail=f"the columns named {clash!r} hold different values; one object would keep one",
                    )
                    continue
            obj = dict(zip(header, row, strict=True))
            raw = orjson.dumps(obj)
            if _has_nul_escape(raw):  # a NUL character in a value or a column name
                yield Record(number, raw_text, reason="unsupported_json", detail=_NUL_DETAIL)
                continue
            yield Record(number, raw, obj)
    except _Truncated:
        yield Record(
            number + 1, b"", reason="truncated_gzip", detail="gzip stream ends before its end marker"
        )
    except csv.Error as exc:
        raise FileError("malformed_csv", f"record {number + 1}: {exc}") from exc


def _csv_line(row: list[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow(row)
    return out.getvalue().rstrip("\r\n").encode()
