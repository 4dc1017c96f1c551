"""Bronze under a hostile input corpus: real Postgres, real Dagster materializations.

The invariant, proved file by file:
- every hostile input ends as quarantine entries (`bronze.quarantine`: file, record number, reason, detail, raw
  bytes) or as an errored load in `ledger.loads` whose error names the reason — never a crashed run;
- nothing is lost: per file, records read = bronze rows + quarantined rows;
- a hostile file never takes its neighbours down: a well-formed control file in the same partition (same run)
  loads completely;
- data never becomes SQL: hostile keys and column names end up as data inside `raw`, never as identifiers.

Each case lands one file next to the others of its source partition; each partition is materialized once.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import orjson
import pytest
from bson.decimal128 import Decimal128
from psycopg import sql

from assets.bronze import bronze_assets, documents_assets, readers
from assets.bronze.documents import unescape_key
from resources import LandingZoneResource, MongoResource, PostgresResource

ASSETS = {a.key.path[-1]: a for a in bronze_assets}
DOCUMENTS = {a.key.path[-1]: a for a in documents_assets}
# One source per format: JSON lines (mirrored to Mongo), JSON documents, CSV, gzip CSV.
POSTS, TWEETS, ACCOUNTS, CDC = "social_posts", "tweets", "social_accounts", "cdc_brands"
PARTITIONS = {POSTS: "2026-11-01|x", TWEETS: "2026-11-01", ACCOUNTS: "2026-11-01", CDC: None}
FOLDERS = {
    POSTS: "social/posts/network=x/date=2026-11-01",
    TWEETS: "x/tweets/date=2026-11-01",
    ACCOUNTS: "social/accounts/date=2026-11-01",
    CDC: "cdc/brands__ct",
}
# The gzip bomb must be refused without inflating 256 MiB: the floor under the expansion cap is lowered.
TEST_EXPANSION_FLOOR = 1 << 20


def post(post_id: str, **fields: object) -> bytes:
    return orjson.dumps({"post_id": post_id, "network": "x", **fields})


def tweet(tweet_id: str, **fields: object) -> dict:
    return {"id_str": tweet_id, "created_at": "Sun Nov 01 10:00:00 +0000 2026", **fields}


def statuses(*items: object) -> bytes:
    return orjson.dumps({"statuses": list(items)})


def lines(*items: bytes) -> bytes:
    return b"".join(item + b"\n" for item in items)


def csv_rows(*rows: str) -> bytes:
    return "".join(row + "\r\n" for row in rows).encode()


def nested(depth: int) -> bytes:
    """`depth` levels of JSON arrays."""
    return b"[" * depth + b"]" * depth


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def crc_flipped(data: bytes) -> bytes:
    """A gzip stream whose CRC-32 trailer no longer matches its content."""
    broken = bytearray(gz(data))
    broken[-8] ^= 0xFF
    return bytes(broken)


@dataclass(frozen=True)
class Case:
    """One hostile file and its exact outcome. `quarantined` lists (record number, reason). An errored file
    loads nothing: its ledger error starts with `error` ("reason: detail"), and it is one quarantine entry with
    that reason, no record number and the file's bytes."""

    id: str
    source: str
    name: str
    data: bytes
    loaded: int = 0
    quarantined: tuple[tuple[int, str], ...] = ()
    error: str | None = None

    @property
    def path(self) -> str:
        return f"{FOLDERS[self.source]}/{self.name}"

    @property
    def status(self) -> str:
        return "errored" if self.error else "archived"

    @property
    def entries(self) -> list[tuple[int | None, str]]:
        return [(None, self.error.split(":")[0])] if self.error else sorted(self.quarantined)


ACCOUNTS_HEADER = "account_id,network,handle"
CDC_HEADER = "header__change_seq,header__change_oper,header__timestamp,brand_id,name"
TEN_MB = 10 << 20

HOSTILE_KEYS = (
    "'; DROP TABLE bronze.social_posts; --",
    '"); DELETE FROM ledger.loads; --',
    'a"b',
    "it's",
    "x;y",
    "select",
    "$where",
    "a.b.c",
    "100%",
    "load_id",
    "back\\slash",
    "tab\there",
)
UNICODE_KEYS = ("ключ", "🔑", "café", "cafe\u0301", "\u202eevil", "a\u200db", "")
# Postgres truncates identifiers to 63 bytes: as column names these would collide; as jsonb keys they must not.
LONG_KEYS = ("k" * 64, "x" * 63 + "1", "x" * 63 + "2", "é" * 40)
BIG_NUMBERS = {
    "beyond_int64": "9223372036854775808",
    "beyond_uint64": "123456789012345678901234567890",
    "below_int64": "-9223372036854775809",
}

CASES = [
    # --- JSON lines (social posts): nesting, size, literals, bytes, encodings
    Case(
        "nesting-1000-deep",
        POSTS,
        "deep-1000.jsonl",
        lines(
            post("deep-1000-ok"), b'{"post_id": "deep-1000", "network": "x", "nested": ' + nested(999) + b"}"
        ),
        loaded=1,
        quarantined=((2, "too_deep"),),
    ),
    Case(
        "nesting-100000-deep",
        POSTS,
        "deep-100000.jsonl",
        lines(b'{"post_id": "deep-100000", "network": "x", "nested": ' + nested(100_000) + b"}"),
        quarantined=((1, "malformed_json"),),
    ),
    Case("line-of-10-mb", POSTS, "ten-mb.jsonl", lines(post("ten-mb", text="a" * TEN_MB)), loaded=1),
    # A line repeated byte for byte in the same file: the first stays, the repeat is set aside.
    Case(
        "repeated-line",
        POSTS,
        "repeated.jsonl",
        lines(post("said-twice", text="é"), post("said-once"), post("said-twice", text="é")),
        loaded=2,
        quarantined=((3, "duplicate_record"),),
    ),
    # More rejected bytes than the load holds in memory (6 MB > QuarantineSpool.MAX_IN_MEMORY): they wait on disk.
    Case(
        "mostly-broken-lines",
        POSTS,
        "mostly-broken.jsonl",
        lines(*(b'{"post_id": "broken-%d", "text": "' % n + b"x" * 1000 for n in range(6000)), post("whole")),
        loaded=1,
        quarantined=tuple((n, "malformed_json") for n in range(1, 6001)),
    ),
    Case(
        "nan-literal",
        POSTS,
        "nan.jsonl",
        lines(post("nan-ok"), b'{"post_id": "nan", "network": "x", "score": NaN}'),
        loaded=1,
        quarantined=((2, "malformed_json"),),
    ),
    Case(
        "infinity-literal",
        POSTS,
        "infinity.jsonl",
        lines(b'{"post_id": "inf", "network": "x", "score": Infinity}'),
        quarantined=((1, "malformed_json"),),
    ),
    Case(
        "negative-infinity-literal",
        POSTS,
        "negative-infinity.jsonl",
        lines(b'{"post_id": "-inf", "network": "x", "score": -Infinity}'),
        quarantined=((1, "malformed_json"),),
    ),
    Case(
        "escaped-nul-in-string-and-key",
        POSTS,
        "escaped-nul.jsonl",
        lines(
            b'{"post_id": "nul-value", "network": "x", "text": "a\\u0000b"}',
            post("nul-ok"),
            b'{"post_id": "nul-key", "network": "x", "a\\u0000b": 1}',
        ),
        loaded=1,
        quarantined=((1, "unsupported_json"), (3, "unsupported_json")),
    ),
    Case(
        # An escaped backslash followed by the text u0000 is no NUL: jsonb stores it.
        "backslash-then-u0000-text",
        POSTS,
        "backslash-u0000.jsonl",
        lines(b'{"post_id": "not-nul", "network": "x", "path": "C:\\\\u0000"}'),
        loaded=1,
    ),
    Case(
        "raw-nul-bytes",
        POSTS,
        "raw-nul.jsonl",
        lines(
            b'{"post_id": "raw-nul", "network": "x", "text": "a\x00b"}', b"\x00\x00\x00", post("raw-nul-ok")
        ),
        loaded=1,
        quarantined=((1, "malformed_json"), (2, "malformed_json")),
    ),
    Case(
        "invalid-utf8",
        POSTS,
        "invalid-utf8.jsonl",
        lines(
            b'{"post_id": "latin1", "network": "x", "text": "caf\xe9"}',
            b'{"post_id": "overlong", "network": "x", "text": "\xc0\xaf"}',
            b'{"post_id": "utf8-surrogate", "network": "x", "text": "\xed\xa0\x80"}',
            post("utf8-ok"),
        ),
        loaded=1,
        quarantined=((1, "malformed_json"), (2, "malformed_json"), (3, "malformed_json")),
    ),
    Case(
        "lone-surrogate-escape",
        POSTS,
        "surrogate.jsonl",
        lines(b'{"post_id": "surrogate", "network": "x", "text": "\\ud800"}'),
        quarantined=((1, "malformed_json"),),
    ),
    Case(
        "utf8-bom",
        POSTS,
        "utf8-bom.jsonl",
        codecs.BOM_UTF8 + lines(post("bom-1"), post("bom-2")),
        loaded=2,
    ),
    Case(
        "utf16-bom",
        POSTS,
        "utf16.jsonl",
        lines(post("utf16-1"), post("utf16-2")).decode().encode("utf-16"),
        error="unsupported_encoding: a UTF-16 byte-order mark: JSON must be UTF-8",
    ),
    Case(
        "gzip-bomb",
        POSTS,
        "bomb.jsonl.gz",
        gz(b"0" * (8 << 20)),
        error="decompression_limit: gzip expands beyond ",
    ),
    Case(
        # The trailer (CRC and size) is missing: every line is recovered, the missing end is one entry.
        "truncated-gzip",
        POSTS,
        "truncated.jsonl.gz",
        gz(lines(post("trunc-1"), post("trunc-2"), post("trunc-3")))[:-8],
        loaded=3,
        quarantined=((4, "truncated_gzip"),),
    ),
    Case(
        "corrupt-gzip",
        POSTS,
        "corrupt.jsonl.gz",
        crc_flipped(lines(post("corrupt-1"), post("corrupt-2"))),
        error="corrupt_gzip: Error -3 while decompressing data: incorrect data check",
    ),
    Case(
        "not-gzip-at-all",
        POSTS,
        "not-gzip.jsonl.gz",
        b"plain text, not gzip\n",
        error="corrupt_gzip: Error -3 while decompressing data: incorrect header check",
    ),
    # No records in it: archived with 0 read (a day without posts is a legitimate empty drop).
    Case("empty-file", POSTS, "empty.jsonl", b""),
    Case("whitespace-only", POSTS, "whitespace.jsonl", b" \n\t\n\r\n   \n"),
    Case(
        "json-array-on-one-line",
        POSTS,
        "array.jsonl",
        b"[" + post("array-1") + b", " + post("array-2") + b"]\n",
        quarantined=((1, "not_an_object"),),
    ),
    Case(
        "pretty-printed-object",
        POSTS,
        "pretty.jsonl",
        b'{\n  "post_id": "pretty",\n  "network": "x"\n}\n',
        quarantined=tuple((n, "malformed_json") for n in (1, 2, 3, 4)),
    ),
    Case(
        "top-level-scalars",
        POSTS,
        "scalars.jsonl",
        lines(b"42", b'"a string"', b"null", b"true", b"[]"),
        quarantined=tuple((n, "not_an_object") for n in (1, 2, 3, 4, 5)),
    ),
    Case(
        # Object members must have unique names; jsonb (like orjson) keeps the last one.
        "duplicate-keys",
        POSTS,
        "duplicate-keys.jsonl",
        lines(b'{"post_id": "dup-first", "network": "x", "post_id": "dup-last", "n": 1, "n": 2}'),
        loaded=1,
    ),
    Case(
        "sql-and-quote-keys",
        POSTS,
        "sql-keys.jsonl",
        lines(post("sql-keys", **{k: i for i, k in enumerate(HOSTILE_KEYS)})),
        loaded=1,
    ),
    Case(
        "unicode-keys",
        POSTS,
        "unicode-keys.jsonl",
        lines(post("unicode-keys", **{k: i for i, k in enumerate(UNICODE_KEYS)})),
        loaded=1,
    ),
    Case(
        "keys-over-63-bytes",
        POSTS,
        "long-keys.jsonl",
        lines(post("long-keys", **{k: i for i, k in enumerate(LONG_KEYS)})),
        loaded=1,
    ),
    Case(
        "integers-beyond-int64",
        POSTS,
        "big-integers.jsonl",
        lines(
            b'{"post_id": "big-integers", "network": "x", '
            + b", ".join(f'"{k}": {v}'.encode() for k, v in BIG_NUMBERS.items())
            + b"}"
        ),
        loaded=1,
    ),
    Case(
        "number-beyond-double",
        POSTS,
        "beyond-double.jsonl",
        lines(b'{"post_id": "beyond-double", "network": "x", "n": 1e400}'),
        quarantined=((1, "malformed_json"),),
    ),
    Case(
        # Parses as 0.0, but jsonb's numeric holds at most 16383 digits after the point.
        "number-beyond-numeric-scale",
        POSTS,
        "beyond-numeric.jsonl",
        lines(
            post("numeric-ok"),
            b'{"post_id": "tiny-exponent", "network": "x", "n": 1e-20000}',
            b'{"post_id": "tiny-digits", "network": "x", "n": 0.' + b"0" * 20_000 + b"1}",
        ),
        loaded=1,
        quarantined=((2, "unsupported_json"), (3, "unsupported_json")),
    ),
    # --- hostile file names: each file loads its good line and quarantines its bad one under its exact name
    *(
        Case(
            f"file-name-{label}",
            POSTS,
            name,
            lines(post(f"name-{label}"), b"{not json"),
            loaded=1,
            quarantined=((2, "malformed_json"),),
        )
        for label, name in [
            ("dot-dot", "dots..in..name.jsonl"),
            ("spaces", "with  spaces .jsonl"),
            ("control-chars", "tab\tnewline\nbell\x07cr\r.jsonl"),
            ("quotes", 'quote\'d "name" back\\slash.jsonl'),
            ("semicolons", "a;b'; DROP TABLE ledger.loads; --.jsonl"),
            ("unicode", "ünïcødé 🚀.jsonl"),
        ]
    ),
    # --- JSON documents (tweets)
    Case(
        # Deeper than the MongoDB copy holds (MAX_MIRROR_DEPTH): quarantined, like a JSON line.
        "document-record-100-deep",
        TWEETS,
        "deep-100.json",
        statuses(tweet("t-deep-100-ok"), tweet("t-deep-100", nested=orjson.loads(nested(99)))),
        loaded=1,
        quarantined=((2, "too_deep"),),
    ),
    Case(
        # Parsed (orjson reads 1024 levels) but not writable again (orjson writes 254).
        "document-record-1000-deep",
        TWEETS,
        "deep-1000.json",
        b'{"statuses": ['
        + orjson.dumps(tweet("t-deep-ok"))
        + b', {"id_str": "t-deep", "nested": '
        + nested(999)
        + b"}]}",
        loaded=1,
        quarantined=((2, "unsupported_json"),),
    ),
    Case(
        "document-100000-deep",
        TWEETS,
        "deep-document.json",
        b'{"statuses": [{"id_str": "t-deeper", "nested": ' + nested(100_000) + b"}]}",
        error="unrepairable_json: depth limit exceeded",
    ),
    Case(
        "document-nan",
        TWEETS,
        "nan.json",
        b'{"statuses": [{"id_str": "t-nan", "score": NaN}]}',
        error="unrepairable_json: unexpected character, expected a JSON value",
    ),
    Case(
        # Repairable (a trailing comma), yet 1e400 must not quietly become null or infinity.
        "document-repair-with-number-beyond-double",
        TWEETS,
        "repair-beyond-double.json",
        b'{"statuses": [{"id_str": "t-inf", "n": 1e400},]}',
        error="unrepairable_json: number is infinity when parsed as double",
    ),
    Case(
        # Repairable, and the repair's parser reads the integer exactly: more than 64 bits, it cannot be stored
        # as it was sent.
        "document-repair-with-integer-beyond-uint64",
        TWEETS,
        "repair-big-integer.json",
        b'{"statuses": [{"id_str": "t-big-ok"}, {"id_str": "t-big", "n": 123456789012345678901234567890},]}',
        loaded=1,
        quarantined=((2, "unsupported_json"),),
    ),
    Case(
        "document-utf16-bom",
        TWEETS,
        "utf16.json",
        statuses(tweet("t-utf16")).decode().encode("utf-16"),
        error="unsupported_encoding: a UTF-16 byte-order mark: JSON must be UTF-8",
    ),
    Case(
        "document-empty",
        TWEETS,
        "empty.json",
        b"",
        error="unrepairable_json: Input is a zero-length, empty document",
    ),
    Case(
        "document-whitespace-only",
        TWEETS,
        "whitespace.json",
        b" \n\t\n",
        error="unrepairable_json: input data is empty",
    ),
    Case(
        "document-truncated",
        TWEETS,
        "truncated.json",
        b'{"statuses": [{"id_str": "t-truncated", "text": "cut',
        error="unrepairable_json: unexpected end of data",
    ),
    Case("document-top-level-scalar", TWEETS, "scalar.json", b"42", quarantined=((1, "not_an_object"),)),
    Case(
        "document-records-that-are-not-objects",
        TWEETS,
        "mixed.json",
        statuses(tweet("t-mixed-ok"), 42, "text", [1, 2], None),
        loaded=1,
        quarantined=tuple((n, "not_an_object") for n in (2, 3, 4, 5)),
    ),
    Case(
        "document-nul-in-key",
        TWEETS,
        "nul-key.json",
        b'{"statuses": [{"id_str": "t-nul", "a\\u0000": 1}, ' + orjson.dumps(tweet("t-nul-ok")) + b"]}",
        loaded=1,
        quarantined=((1, "unsupported_json"),),
    ),
    Case(
        # Object-per-line in a .json file: the json_lines repair, each line one record.
        "document-object-per-line",
        TWEETS,
        "lines.json",
        lines(orjson.dumps(tweet("t-line-1")), orjson.dumps(tweet("t-line-2"))),
        loaded=2,
    ),
    # --- CSV (accounts)
    Case(
        "csv-ragged-short-row",
        ACCOUNTS,
        "ragged.csv",
        csv_rows(ACCOUNTS_HEADER, "acc-ragged-1,x,one", "acc-ragged-2,x", "acc-ragged-3,x,three"),
        loaded=2,
        quarantined=((2, "malformed_csv_row"),),
    ),
    Case(
        "csv-extra-columns",
        ACCOUNTS,
        "extra.csv",
        csv_rows(ACCOUNTS_HEADER, "acc-extra-1,x,one,surprise,more", "acc-extra-2,x,two"),
        loaded=1,
        quarantined=((1, "malformed_csv_row"),),
    ),
    Case(
        # An unclosed quote would swallow every later row into one field: refused, not silently merged.
        "csv-unbalanced-quote",
        ACCOUNTS,
        "unbalanced.csv",
        csv_rows(ACCOUNTS_HEADER, "acc-quote-1,x,one", 'acc-quote-2,"x,two', "acc-quote-3,x,three"),
        error="malformed_csv: record 2: unexpected end of data",
    ),
    Case(
        "csv-text-after-closing-quote",
        ACCOUNTS,
        "after-quote.csv",
        csv_rows(ACCOUNTS_HEADER, 'acc-after-1,"x"y,one'),
        error="malformed_csv: record 1: ',' expected after '\"'",
    ),
    Case(
        "csv-hostile-header",
        ACCOUNTS,
        "hostile-header.csv",
        csv_rows(
            'account_id,"\'; DROP TABLE bronze.social_accounts; --","a""b",select,ключ,'
            + ",".join(LONG_KEYS),
            "acc-header-1,v1,v2,v3,v4,1,2,3,4",
        ),
        loaded=1,
    ),
    Case(
        # Two columns named `note`: a row whose two notes differ cannot be one JSON object without losing one.
        "csv-duplicate-column-names",
        ACCOUNTS,
        "duplicate-columns.csv",
        csv_rows("account_id,note,note", "acc-dupcol-1,same,same", "acc-dupcol-2,first,second"),
        loaded=1,
        quarantined=((2, "ambiguous_csv_row"),),
    ),
    Case(
        "csv-cp1252",
        ACCOUNTS,
        "cp1252.csv",
        "account_id,network,handle\r\nacc-cp1252,x,price \u20ac \u2019quoted\u2019\r\n".encode("cp1252"),
        loaded=1,
    ),
    Case(
        # 0x81 is undefined in cp1252: latin-1, which decodes every byte.
        "csv-latin1",
        ACCOUNTS,
        "latin1.csv",
        "account_id,network,handle\r\nacc-latin1,x,caf\u00e9\x81\r\n".encode("latin-1"),
        loaded=1,
    ),
    Case(
        "csv-utf8-bom",
        ACCOUNTS,
        "utf8-bom.csv",
        codecs.BOM_UTF8 + csv_rows(ACCOUNTS_HEADER, "acc-bom,x,bom"),
        loaded=1,
    ),
    Case(
        "csv-utf16-bom",
        ACCOUNTS,
        "utf16.csv",
        csv_rows(ACCOUNTS_HEADER, "acc-utf16,x,s\u00fc\u00df").decode().encode("utf-16"),
        loaded=1,
    ),
    Case(
        "csv-nul-byte-in-field",
        ACCOUNTS,
        "nul.csv",
        csv_rows(ACCOUNTS_HEADER, "acc-nul-1,x,a\x00b", "acc-nul-2,x,two"),
        loaded=1,
        quarantined=((1, "unsupported_json"),),
    ),
    Case(
        "csv-field-over-the-csv-limit",
        ACCOUNTS,
        "huge-field.csv",
        csv_rows(ACCOUNTS_HEADER, "acc-huge,x," + "h" * 200_000),
        error="malformed_csv: record 1: field larger than field limit (131072)",
    ),
    Case("csv-empty-file", ACCOUNTS, "empty.csv", b""),
    Case("csv-header-only", ACCOUNTS, "header-only.csv", csv_rows(ACCOUNTS_HEADER)),
    Case(
        # The header is one blank-named column; the row has no account_id.
        "csv-whitespace-only",
        ACCOUNTS,
        "whitespace.csv",
        b"  \r\n \r\n",
        quarantined=((1, "missing_key"),),
    ),
    # --- gzip CSV (CDC change files)
    Case(
        "csv-gzip-bomb",
        CDC,
        "bomb.csv.gz",
        gz(CDC_HEADER.encode() + b"\r\n" + b"0" * (8 << 20)),
        error="decompression_limit: gzip expands beyond ",
    ),
    Case(
        "csv-truncated-gzip",
        CDC,
        "truncated.csv.gz",
        gz(
            csv_rows(CDC_HEADER, "1,I,2026-11-01T10:00:00,b-trunc-1,A", "2,I,2026-11-01T10:00:01,b-trunc-2,B")
        )[:-8],
        loaded=2,
        quarantined=((3, "truncated_gzip"),),
    ),
    Case(
        "csv-corrupt-gzip",
        CDC,
        "corrupt.csv.gz",
        crc_flipped(csv_rows(CDC_HEADER, "3,I,2026-11-01T10:00:02,b-corrupt,C")),
        error="corrupt_gzip: Error -3 while decompressing data: incorrect data check",
    ),
]

# A well-formed file in each partition, loaded by the same run as the hostile ones.
CONTROLS = {
    POSTS: ("control.jsonl", lines(post("control-1"), post("control-2")), 2),
    TWEETS: ("control.json", statuses(tweet("t-control-1"), tweet("t-control-2")), 2),
    ACCOUNTS: ("control.csv", csv_rows(ACCOUNTS_HEADER, "acc-control-1,x,a", "acc-control-2,x,b"), 2),
    CDC: ("control.csv.gz", gz(csv_rows(CDC_HEADER, "9,I,2026-11-01T10:00:09,b-control,Z")), 1),
}


@pytest.fixture(scope="module")
def landed(warehouse: PostgresResource, tmp_path_factory) -> dict:
    """Every case and control file landed, plus entries that are not regular files; each source partition
    materialized once."""
    root = tmp_path_factory.mktemp("landing")
    for case in CASES:
        target = root / case.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(case.data)
    for source, (name, data, _) in CONTROLS.items():
        (root / FOLDERS[source] / name).write_bytes(data)

    posts = root / FOLDERS[POSTS]
    outside = tmp_path_factory.mktemp("outside") / "secret.jsonl"
    outside.write_bytes(lines(post("stolen")))
    (posts / "escape.jsonl").symlink_to(outside)
    (root / "elsewhere").mkdir()
    (posts / "linked-dir.jsonl").symlink_to(root / "elsewhere")
    (posts / "folder.jsonl").mkdir()
    (posts / "folder.jsonl" / "inner.jsonl").write_bytes(lines(post("in-a-folder")))
    (posts / "empty-folder.jsonl").mkdir()

    resources = {
        "postgres": warehouse,
        "mongo": MongoResource(url=tmp_path_factory.mktemp("mongo").as_uri(), database_name="strata_test"),
        "landing": LandingZoneResource(root=str(root)),
    }
    results = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers, "EXPANSION_FLOOR", TEST_EXPANSION_FLOOR)
        for source, partition_key in PARTITIONS.items():
            results[source] = dg.materialize(
                [ASSETS[source]], partition_key=partition_key, resources=resources, raise_on_error=False
            )
    # The mirrored sources' raw-document copies, read again from the same hostile files.
    copies = {
        source: dg.materialize([DOCUMENTS[source]], partition_key=partition_key, resources=resources)
        for source, partition_key in PARTITIONS.items()
        if source in DOCUMENTS
    }
    return {"root": root, "outside": outside, "resources": resources, "results": results, "copies": copies}


def ledger_row(conn, source: str, path: str) -> dict:
    rows = conn.execute(
        "SELECT load_id, status, error, records_read, details FROM ledger.loads WHERE source = %s AND path = %s",
        (source, path),
    ).fetchall()
    assert len(rows) == 1, (path, rows)
    load_id, status, error, read, details = rows[0]
    return {"load_id": load_id, "status": status, "error": error, "read": read, "details": details}


def bronze_rows(conn, source: str, load_id: int) -> list[tuple]:
    query = sql.SQL(
        "SELECT source_file, record_number, raw FROM {} WHERE load_id = %s ORDER BY record_number"
    )
    return conn.execute(query.format(sql.Identifier("bronze", source)), (load_id,)).fetchall()


def quarantine_rows(conn, load_id: int) -> list[tuple]:
    return conn.execute(
        "SELECT source_file, record_number, reason, detail, raw_bytes FROM bronze.quarantine WHERE load_id = %s "
        "ORDER BY record_number NULLS FIRST",
        (load_id,),
    ).fetchall()


def test_each_partition_run_succeeds_with_every_blocking_check_passed(landed):
    outcomes = {
        source: (
            result.success,
            sorted(
                (e.check_name, e.passed)
                for e in result.get_asset_check_evaluations()
                if e.severity == dg.AssetCheckSeverity.ERROR
            ),
        )
        for source, result in landed["results"].items()
    }
    passed = [("accounted", True), ("no_duplicate_records", True)]
    assert outcomes == dict.fromkeys(PARTITIONS, (True, passed))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_a_hostile_file_ends_in_bronze_and_quarantine_or_as_an_errored_load_nothing_lost(
    case: Case, landed, warehouse
):
    with warehouse.connect() as conn:
        load = ledger_row(conn, case.source, case.path)
        rows = bronze_rows(conn, case.source, load["load_id"])
        quarantined = quarantine_rows(conn, load["load_id"])

    assert load["status"] == case.status
    if case.error:
        assert load["error"].startswith(case.error), load["error"]
        # The file's entry keeps its bytes (its first 16 MiB); the file itself rests in error/.
        assert [bytes(raw) for *_, raw in quarantined] == [case.data[: 16 << 20]]
    else:
        assert load["error"] is None
    assert len(rows) == case.loaded
    assert [(number, reason) for _, number, reason, _, _ in quarantined] == case.entries
    # Nothing lost: every record read is a bronze row or a quarantine entry.
    assert load["read"] == len(rows) + len(quarantined)
    # Every row and entry names its file exactly; every entry says why.
    assert {file for file, *_ in rows} | {file for file, *_ in quarantined} <= {case.path}
    assert all(detail for _, _, _, detail, _ in quarantined)


def test_control_files_beside_the_hostile_ones_load_completely(landed, warehouse):
    with warehouse.connect() as conn:
        outcome = {}
        for source, (name, _, _) in CONTROLS.items():
            load = ledger_row(conn, source, f"{FOLDERS[source]}/{name}")
            outcome[source] = (load["status"], load["read"], len(bronze_rows(conn, source, load["load_id"])))
    assert outcome == {source: ("archived", n, n) for source, (_, _, n) in CONTROLS.items()}


def test_quarantine_keeps_the_exact_bytes_of_each_rejected_line(landed, warehouse):
    cases = {case.id: case for case in CASES}
    with warehouse.connect() as conn:
        for case_id in (
            "invalid-utf8",
            "raw-nul-bytes",
            "escaped-nul-in-string-and-key",
            "nan-literal",
            "mostly-broken-lines",
        ):
            case = cases[case_id]
            load = ledger_row(conn, case.source, case.path)
            kept = {number: bytes(raw) for _, number, _, _, raw in quarantine_rows(conn, load["load_id"])}
            original = case.data.split(b"\n")
            assert kept == {number: original[number - 1] for number, _ in case.quarantined}, case_id


def test_each_new_kind_of_rejection_says_exactly_why(landed, warehouse):
    cases = {case.id: case for case in CASES}
    expected = {
        "nesting-1000-deep": {2: "nested deeper than 64 levels: the MongoDB copy cannot hold it"},
        "document-record-1000-deep": {2: "cannot be stored: Recursion limit reached"},
        "number-beyond-numeric-scale": {
            2: "jsonb refuses it: value overflows numeric format",
            3: "jsonb refuses it: value overflows numeric format",
        },
        "csv-duplicate-column-names": {
            2: "the columns named 'note' hold different values; one object would keep one"
        },
        "csv-nul-byte-in-field": {1: "\\u0000 cannot be stored in jsonb"},
        "repeated-line": {
            3: "same bytes as an earlier record of the partition "
            f"(md5 {hashlib.md5(post('said-twice', text='é')).hexdigest()})"
        },
    }
    details = {}
    with warehouse.connect() as conn:
        for case_id in expected:
            load = ledger_row(conn, cases[case_id].source, cases[case_id].path)
            details[case_id] = {
                number: detail for _, number, _, detail, _ in quarantine_rows(conn, load["load_id"])
            }
    assert details == expected


def test_hostile_keys_are_data_inside_raw_never_identifiers(landed, warehouse):
    keys = [*HOSTILE_KEYS, *UNICODE_KEYS, *LONG_KEYS]
    with warehouse.connect() as conn:
        in_raw = conn.execute(
            "SELECT k, EXISTS (SELECT 1 FROM bronze.social_posts WHERE raw ? k) FROM unnest(%s::text[]) AS u(k)",
            (keys,),
        ).fetchall()
        post_columns = [
            c
            for (c,) in conn.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = 'bronze' AND table_name = 'social_posts' ORDER BY ordinal_position"
            )
        ]
        tables = sorted(
            f"{s}.{t}"
            for s, t in conn.execute(
                "SELECT table_schema, table_name FROM information_schema.tables "
                "WHERE table_schema IN ('bronze', 'ledger')"
            )
        )
        header_keys = conn.execute(
            "SELECT array(SELECT jsonb_object_keys(raw) ORDER BY 1) FROM bronze.social_accounts "
            "WHERE account_id = 'acc-header-1'"
        ).fetchone()[0]
        fields = {
            f
            for (f,) in conn.execute("SELECT field FROM ledger.source_fields WHERE source = 'social_posts/x'")
        }
        (loads,) = conn.execute("SELECT count(*) FROM ledger.loads").fetchone()

    assert in_raw == [(k, True) for k in keys]
    assert post_columns == [
        "load_id",
        "source_file",
        "record_number",
        "partition_date",
        "partition_network",
        "ingested_at",
        "record_hash",
        "raw",
        "post_id",
        "network",
        "account_id",
        "created_at",
        "scraped_at",
    ]
    assert tables == [
        "bronze.cdc_brands",
        "bronze.quarantine",
        "bronze.social_accounts",
        "bronze.social_posts",
        "bronze.tweets",
        "ledger.documents",
        "ledger.loads",
        "ledger.source_fields",
        "ledger.watermarks",
    ]
    assert header_keys == sorted(
        ["account_id", "'; DROP TABLE bronze.social_accounts; --", 'a"b', "select", "ключ", *LONG_KEYS]
    )
    # The two keys that would collide as 63-byte identifiers stay two fields.
    assert set(LONG_KEYS) <= fields and set(HOSTILE_KEYS) <= fields
    assert loads == len(CASES) + len(CONTROLS) + 3  # the refused symlinks and the file inside a folder


def test_hostile_keys_and_integers_reach_the_mongo_copy_intact(landed):
    # Every mirrored record has its document, and no other document exists.
    assert set(landed["copies"]) == {POSTS, TWEETS}
    for copy in landed["copies"].values():
        assert [(e.check_name, e.passed) for e in copy.get_asset_check_evaluations()] == [
            ("matches_bronze", True)
        ]
    with landed["resources"]["mongo"].database("bronze") as database:
        (keys,) = list(database["social_posts"].find({"record.post_id": "sql-keys"}))
        (numbers,) = list(database["social_posts"].find({"record.post_id": "big-integers"}))
    assert {unescape_key(k) for k in keys["record"]} == {"post_id", "network", *HOSTILE_KEYS}
    assert not any("." in k or "$" in k for k in keys["record"])
    # BSON integers are signed 64-bit: one beyond is kept exact as a Decimal128.
    assert numbers["record"]["beyond_int64"] == Decimal128(BIG_NUMBERS["beyond_int64"])


def test_values_keep_their_exact_text_in_raw(landed, warehouse):
    with warehouse.connect() as conn:
        numbers = conn.execute(
            "SELECT array(SELECT raw ->> k FROM unnest(%s::text[]) AS u(k)) FROM bronze.social_posts "
            "WHERE post_id = 'big-integers'",
            (list(BIG_NUMBERS),),
        ).fetchone()[0]
        duplicate = conn.execute(
            "SELECT post_id, raw FROM bronze.social_posts WHERE raw ->> 'post_id' LIKE 'dup-%%'"
        ).fetchone()
        handles = dict(
            conn.execute(
                "SELECT account_id, handle FROM bronze.social_accounts "
                "WHERE account_id IN ('acc-cp1252', 'acc-latin1', 'acc-utf16', 'acc-bom')"
            ).fetchall()
        )
        encodings = dict(
            conn.execute(
                "SELECT path, details ->> 'encoding' FROM ledger.loads WHERE source = 'social_accounts' "
                "AND path = ANY(%s)",
                ([f"{FOLDERS[ACCOUNTS]}/{name}" for name in ("cp1252.csv", "latin1.csv", "utf16.csv")],),
            ).fetchall()
        )
        not_nul = conn.execute(
            "SELECT raw ->> 'path' FROM bronze.social_posts WHERE post_id = 'not-nul'"
        ).fetchone()[0]
    assert numbers == list(BIG_NUMBERS.values())
    assert duplicate == ("dup-last", {"post_id": "dup-last", "network": "x", "n": 2})
    assert handles == {
        "acc-cp1252": "price \u20ac \u2019quoted\u2019",
        "acc-latin1": "caf\u00e9\x81",
        "acc-utf16": "s\u00fc\u00df",
        "acc-bom": "bom",
    }
    assert {Path(p).name: e for p, e in encodings.items()} == {
        "cp1252.csv": "cp1252",
        "latin1.csv": "latin-1",
        "utf16.csv": "utf-16",
    }
    assert not_nul == "C:\\u0000"


def test_entries_that_are_not_regular_files_inside_the_root_are_refused_and_never_read(landed, warehouse):
    folder = FOLDERS[POSTS]
    escape, linked, inner, empty = (
        f"{folder}/{name}"
        for name in ("escape.jsonl", "linked-dir.jsonl", "folder.jsonl/inner.jsonl", "empty-folder.jsonl")
    )
    with warehouse.connect() as conn:
        rows = {
            path: (status, error, read)
            for path, status, error, read in conn.execute(
                "SELECT path, status, error, records_read FROM ledger.loads WHERE path = ANY(%s)",
                ([escape, linked, inner, empty],),
            )
        }
        (quarantined,) = conn.execute(
            "SELECT count(*) FROM bronze.quarantine WHERE source_file = ANY(%s)", ([escape, linked, inner],)
        ).fetchone()
        (read,) = conn.execute(
            "SELECT count(*) FROM bronze.social_posts WHERE post_id IN ('stolen', 'in-a-folder')"
        ).fetchone()

    assert rows == {
        escape: (
            "errored",
            f"refused: '{escape}': resolves to {landed['outside']}, outside the landing root",
            None,
        ),
        linked: ("errored", "refused: not a regular file (symlinked directories are not followed)", None),
        inner: (
            "errored",
            "path does not match the landing contract: social/posts/network={network}/date={date}/*.jsonl "
            "or social/posts/network={network}/date={date}/*.jsonl.gz",
            None,
        ),
        # An empty folder named like a file holds nothing to load: no ledger row.
    }
    assert quarantined == read == 0
    root = landed["root"]
    assert landed["outside"].read_bytes() == lines(post("stolen"))
    assert (root / escape).is_symlink() and (root / linked).is_symlink()
    assert (root / "error" / inner).is_file()  # a contract breach moves to error/, like an unreadable file
