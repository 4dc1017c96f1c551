"""The sample-data generator: determinism, and a manifest that agrees with an independent recount.

The recount below deliberately re-implements the loader contract (dedup by sha256, JSON repair, gzip
truncation, key normalisation, CDC replay) from the files alone, without generator internals.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
import subprocess
import sys
import zlib
from collections import Counter, defaultdict
from dataclasses import fields
from datetime import UTC
from decimal import Decimal
from pathlib import Path

import litemongo
import orjson
import pytest

from strata.generate import SOURCES, FaultRates, generate
from tests.cdc_contract import replay
from tests.cdc_contract import rows as cdc_rows

BOM = b"\xef\xbb\xbf"
COUNT_FIELDS = {
    "likes": ("likecount",),
    "comments": ("commentcount",),
    "shares": ("sharecount", "retweetcount"),
    "views": ("viewcount", "playcount"),
}
KNOWN_POST_KEYS = {
    "post_id",
    "network",
    "account_id",
    "created_at",
    "scraped_at",
    "caption",
    "text",
    "hashtags",
    "topic",
    "like_count",
    "comment_count",
    "share_count",
    "retweet_count",
    "view_count",
    "play_count",
    "media_count",
    "media",
    "title",
    "description",
    "duration_seconds",
    "sound",
    "is_reel",
    "reactions",
    "story_views",
}
NORMALISED_POST_KEYS = {k.replace("_", "") for k in KNOWN_POST_KEYS}
CANONICAL_MEDIA_KEYS = {"media_type", "thumbnail_url", "content_url"}
JSON_FAULTS = ("json_bom", "json_trailing_comma", "json_concatenated", "json_lines", "json_truncated")


@pytest.fixture(scope="module")
def drop(tmp_path_factory):
    root = tmp_path_factory.mktemp("drop")
    client = litemongo.connect(f"{root}/mongo#strata")
    manifest = generate(root / "landing", mongo_db=client.get_default_database())
    client.close()
    return root / "landing", manifest, root / "mongo"


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def _norm(key: str) -> str:
    return key.lower().replace("_", "")


def _count(value) -> int:
    if isinstance(value, int):
        return value
    text = value.replace(",", "")
    for suffix, factor in (("K", 1_000), ("M", 1_000_000)):
        if text.endswith(suffix):
            exact = Decimal(text[:-1]) * factor
            assert exact == int(exact), value
            return int(exact)
    return int(text)


def _loadable(source: dict, out: Path):
    """Files of a source in path order, minus re-landed copies (same sha256 as a file seen before)."""
    seen: dict[str, str] = {}
    duplicates = []
    for entry in sorted(source["files"], key=lambda f: f["path"]):
        data = (out / entry["path"]).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            duplicates.append({"path": entry["path"], "duplicate_of": seen[digest]})
            continue
        seen[digest] = entry["path"]
        yield entry["path"], data
    assert duplicates == source["duplicate_files"]


# -- determinism ------------------------------------------------------------------------------------


def test_same_arguments_same_bytes_and_other_seed_differs(drop, tmp_path):
    out, manifest, _ = drop
    again = generate(tmp_path / "again")  # no Mongo: the manifest must not depend on it
    assert again == manifest
    assert _files(tmp_path / "again") == _files(out)
    other = generate(tmp_path / "other", seed=7, days=2)
    same_args = generate(tmp_path / "same", seed=42, days=2)
    assert other != same_args
    differing = [
        p for p, data in _files(tmp_path / "same").items() if _files(tmp_path / "other").get(p) != data
    ]
    assert len(differing) > 20


def test_sources_subset_and_unknown_source(tmp_path):
    manifest = generate(tmp_path, days=1, sources=["tweets"])
    assert list(manifest["sources"]) == ["tweets"]
    assert not (tmp_path / "social").exists()
    with pytest.raises(ValueError, match="unknown sources"):
        generate(tmp_path, sources=["nope"])


# -- the manifest agrees with the files -------------------------------------------------------------


def test_every_file_is_listed_with_its_size_and_digest(drop):
    out, manifest, _ = drop
    listed = {}
    for source in manifest["sources"].values():
        for entry in source["files"]:
            listed[entry["path"]] = entry
    assert set(listed) == set(_files(out)) - {"manifest.json"}
    for path, entry in listed.items():
        data = (out / path).read_bytes()
        assert entry["bytes"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert json.loads((out / "manifest.json").read_bytes()) == manifest
    for name, source in manifest["sources"].items():
        for key, part in source["partitions"].items():
            accounted = (
                part["bronze_rows"] + sum(part["quarantined"].values()) + part.get("split_into_days", 0)
            )
            assert accounted == part["records_read"], (
                name,
                key,
            )


def test_every_fault_kind_is_present_at_scale_1(drop):
    _, manifest, _ = drop
    kinds = {f.name for f in fields(FaultRates)}
    assert {kind for kind, n in manifest["fault_totals"].items() if n > 0} >= kinds
    assert manifest["fault_rates"] == {f.name: f.default for f in fields(FaultRates)}
    assert set(manifest["sources"]) == set(SOURCES)


def _read_posts_file(path: str, data: bytes) -> tuple[list[bytes], int]:
    """Complete lines of a posts file, plus 1 if it is a gzip cut short (the unreadable tail)."""
    if path.endswith(".gz"):
        inflater = zlib.decompressobj(wbits=31)
        text = inflater.decompress(data)
        if not inflater.eof:
            return text.split(b"\n")[:-1], 1
        data = text
    return [line for line in data.split(b"\n") if line], 0


def test_posts_recount(drop):
    out, manifest, _ = drop
    source = manifest["sources"]["social_posts"]
    by_partition = defaultdict(list)
    for path, data in _loadable(source, out):
        net, day = re.search(r"network=([^/]+)/date=([^/]+)/", path).groups()
        by_partition[f"{day}|{net}"].append((path, data))
    assert set(by_partition) == set(source["partitions"])
    accounts = _accounts_by_date(out, manifest)
    topics = defaultdict(list)
    for key, files in by_partition.items():
        day, net = key.split("|")
        faults, quarantined = Counter(), Counter()
        records = bronze = 0
        seen_lines, latest = set(), {}
        for path, data in files:
            lines, tail = _read_posts_file(path, data)
            if tail:
                quarantined["truncated_gzip"] += 1
                faults["truncated_gzip"] += 1
            faults["empty_file"] += not data
            file_records = len(lines) + tail
            assert next(f["records"] for f in source["files"] if f["path"] == path) == file_records
            records += file_records
            for line in lines:
                try:
                    post = orjson.loads(line)
                except orjson.JSONDecodeError:
                    quarantined["malformed_json"] += 1
                    faults["malformed_json"] += 1
                    continue
                flat = {_norm(k): v for k, v in post.items()}
                if line in seen_lines:
                    quarantined["duplicate_record"] += 1
                    faults["exact_duplicate"] += 1
                else:
                    bronze += 1
                    faults["rescrape_duplicate"] += flat["postid"] in latest
                seen_lines.add(line)
                faults["count_as_string"] += any(
                    isinstance(flat.get(f), str) for fs in COUNT_FIELDS.values() for f in fs
                )
                variant = [k for k in post if k not in KNOWN_POST_KEYS and _norm(k) in NORMALISED_POST_KEYS]
                faults["key_case_variant"] += bool(variant) or any(
                    set(m) - CANONICAL_MEDIA_KEYS for m in post["media"]
                )
                faults["unknown_field"] += any(_norm(k) not in NORMALISED_POST_KEYS for k in post)
                assert flat["network"] == net and flat["createdat"].startswith(day)
                assert flat["scrapedat"] >= flat["createdat"]
                assert flat["accountid"] in accounts[day]
                previous = latest.get(flat["postid"])
                if previous is None or flat["scrapedat"] > previous["scrapedat"]:
                    latest[flat["postid"]] = flat
        expect = Counter()
        for post in latest.values():
            for measure, names in COUNT_FIELDS.items():
                expect[measure] += sum(_count(post[n]) for n in names if n in post)
            media = [{_norm(k): v for k, v in item.items()} for item in post["media"]]
            expect["media_rows"] += len(media)
            expect["media_count_mismatches"] += _count(post["mediacount"]) != len(media)
            expect["media_missing_type"] += sum(item.get("mediatype") is None for item in media)
            assert all(re.search(r"\.(jpg|png|mp4)$", item["contenturl"]) for item in media)
            topics[post["topic"]].append(post["postid"])
        faults["media_count_mismatch"] = expect["media_count_mismatches"]
        faults["media_missing_type"] = expect["media_missing_type"]
        faults["duplicate_file"] = sum(
            d["path"].startswith(f"social/posts/network={net}/date={day}/") for d in source["duplicate_files"]
        )
        part = source["partitions"][key]
        assert part == {
            "records_read": records,
            "bronze_rows": bronze,
            "quarantined": dict(+quarantined),
            "distinct_keys": len(latest),
            "faults": dict(+faults),
        }, key
        assert source["expect"]["partitions"][key] == dict(expect), key
    assert source["expect"]["topics"] == {t: sorted(ids) for t, ids in sorted(topics.items())}
    assert 8_000 <= sum(p["distinct_keys"] for p in source["partitions"].values()) <= 12_000


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _csv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(_decode(data), newline="")))


def _accounts_by_date(out: Path, manifest: dict) -> dict[str, dict[str, dict]]:
    return {
        re.search(r"date=([^/]+)/", f["path"]).group(1): {
            row["account_id"]: row for row in _csv_rows((out / f["path"]).read_bytes())
        }
        for f in manifest["sources"]["social_accounts"]["files"]
    }


def test_accounts_recount_and_history(drop):
    out, manifest, _ = drop
    source = manifest["sources"]["social_accounts"]
    encodings = Counter()
    for entry in source["files"]:
        data = (out / entry["path"]).read_bytes()
        assert b"\r\n" in data
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            encodings["latin-1"] += 1
    assert encodings["latin-1"] == manifest["fault_totals"]["latin1_encoding"] == 1
    snapshots = _accounts_by_date(out, manifest)
    dates = sorted(snapshots)
    for day, rows in snapshots.items():
        part = source["partitions"][day]
        assert part["records_read"] == part["bronze_rows"] == part["distinct_keys"] == len(rows)
        assert part["faults"].get("embedded_newline", 0) == sum(
            "\n" in r["display_name"] for r in rows.values()
        )
        assert part["faults"].get("quoted_comma", 0) == sum("," in r["display_name"] for r in rows.values())
        assert source["expect"]["accounts_per_date"][day] == len(rows)
    assert any(any(not c.isascii() for c in r["display_name"]) for r in snapshots[dates[0]].values())
    histories = defaultdict(list)
    for day in dates:
        for account, row in snapshots[day].items():
            version = {
                "valid_from": day,
                "handle": row["handle"],
                "category": row["category"],
                "followers": int(row["followers"]),
            }
            if not histories[account] or {**histories[account][-1], "valid_from": day} != version:
                histories[account].append(version)
    changes = {}
    for account, versions in histories.items():
        present = [day for day in dates if account in snapshots[day]]
        assert present == dates[: len(present)], "a vanished account came back"
        entry = {"versions": versions}
        if present[-1] != dates[-1]:
            entry["disappeared_on"] = dates[len(present)]
        if len(entry) > 1 or len(versions) > 1:
            changes[account] = entry
    assert changes == source["expect"]["changes"]
    assert any("disappeared_on" in c for c in changes.values()) and any(
        len(c["versions"]) > 1 for c in changes.values()
    )


def _repair_json(data: bytes) -> tuple[list, str | None]:
    """The loader's repair ladder: BOM, trailing commas, then a sequence of top-level values."""
    kind = None
    if data.startswith(BOM):
        data, kind = data[len(BOM) :], "json_bom"
    text = data.decode("utf-8")
    try:
        return [json.loads(text)], kind
    except json.JSONDecodeError:
        pass
    without_commas = re.sub(r",\s*([\]}])", r"\1", text)
    if without_commas != text:
        return [json.loads(without_commas)], "json_trailing_comma"
    decoder, values, at = json.JSONDecoder(), [], 0
    while at < len(text.strip()):
        value, end = decoder.raw_decode(text, at)
        values.append(value)
        at = end + len(text[end:]) - len(text[end:].lstrip())
    return values, "json_lines" if "\n" in text.strip() else "json_concatenated"


def _recount_json_source(out: Path, source: dict, records_of) -> tuple[dict[str, Counter], list]:
    parts, loaded = defaultdict(Counter), []
    for entry in source["files"]:
        match = re.search(r"date=([^/]+)/", entry["path"])
        part = parts[match.group(1) if match else "all"]
        data = (out / entry["path"]).read_bytes()
        try:
            values, kind = _repair_json(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            part["records_read"] += 1
            part["unrepairable_json"] += 1
            part["json_truncated"] += 1
            assert entry["records"] == 1
            continue
        records = [record for value in values for record in records_of(value)]
        assert entry["records"] == len(records)
        part["records_read"] += len(records)
        part["bronze_rows"] += len(records)
        part[kind] += kind is not None
        loaded.extend(records)
    return parts, loaded


def _check_json_partitions(source: dict, parts: dict[str, Counter]) -> None:
    assert set(parts) == set(source["partitions"])
    for name, counted in parts.items():
        part = source["partitions"][name]
        assert part["records_read"] == counted["records_read"]
        assert part["bronze_rows"] == counted["bronze_rows"]
        assert part["quarantined"] == (
            {"unrepairable_json": counted["unrepairable_json"]} if counted["unrepairable_json"] else {}
        )
        assert part["faults"] == {k: counted[k] for k in JSON_FAULTS if counted[k]}


def test_tweets_and_ambassadors_recount_with_repairs(drop):
    out, manifest, _ = drop
    tweets = manifest["sources"]["tweets"]
    parts, statuses = _recount_json_source(out, tweets, lambda value: value["statuses"])
    _check_json_partitions(tweets, parts)
    for day, counted in parts.items():
        assert tweets["partitions"][day]["distinct_keys"] == counted["bronze_rows"]
    assert len({s["id_str"] for s in statuses}) == len(statuses)
    assert tweets["expect"]["retweeted"] == sum(s["retweeted"] for s in statuses)
    assert all(
        {"id_str", "screen_name", "name", "followers_count", "verified"} <= set(s["user"]) for s in statuses
    )

    ambassadors = manifest["sources"]["ambassadors"]
    parts, people = _recount_json_source(
        out, ambassadors, lambda value: value if isinstance(value, list) else [value]
    )
    _check_json_partitions(ambassadors, parts)
    programs = [p for person in people for p in person["programs"]]
    cents = sum(round(Decimal(str(p["total_sales_attributed"])) * 100) for p in programs)
    assert ambassadors["expect"] == {
        "ambassadors": len({p["user_id"] for p in people}),
        "programs": len(programs),
        "tasks": sum(len(p["tasks"]) for p in programs),
        "total_sales_attributed": f"{cents // 100}.{cents % 100:02d}",
    }
    assert all("@" in p["email"] for p in people)


def test_video_recount(drop):
    out, manifest, _ = drop
    sessions = manifest["sources"]["video_sessions"]
    over, header_only = 0, 0
    for entry in sessions["files"]:
        data = (out / entry["path"]).read_bytes()
        rows = _csv_rows(data)
        assert entry["records"] == len(rows)
        header_only += bool(data) and not rows
        over += sum(float(r["completion_pct"]) > 100 for r in rows)
        day = re.search(r"date=([^/]+)/", entry["path"]).group(1)
        assert all(r["started_at"].startswith(day) for r in rows)
    assert (
        sessions["expect"]["completion_over_100"] == over == manifest["fault_totals"]["completion_over_100"]
    )
    assert header_only == manifest["fault_totals"]["header_only_csv"]
    users = _csv_rows((out / "video/users/users.csv").read_bytes())
    assert manifest["sources"]["video_users"]["partitions"]["all"]["distinct_keys"] == len(
        {u["user_id"] for u in users}
    )
    content = json.loads((out / "video/content/content.json").read_bytes())
    assert manifest["sources"]["video_content"]["expect"] == {
        "content": len(content),
        "credits": sum(len(c["credits"]) for c in content),
    }
    assert all("\n" in c["description"] for c in content)


def test_cdc_replay_matches_final_state(drop):
    out, manifest, _ = drop
    source = manifest["sources"]["cdc_brands"]
    expect = source["expect"]
    reload = expect["reload"]
    first = cdc_rows(out / "cdc/brands/LOAD00000001.csv.gz")
    reloaded = cdc_rows(out / reload["path"])
    change_paths = sorted((out / "cdc/brands__ct").iterdir())
    changes = [(path.name, row) for path in change_paths for row in cdc_rows(path)]
    seqs = [row["header__change_seq"] for _, row in changes]
    assert all(len(s) == 35 and s.isdigit() for s in seqs)
    landed = sorted(f["path"] for f in source["files"])
    assert landed == sorted(
        [
            "cdc/brands/LOAD00000001.csv.gz",
            reload["path"],
            *(f"cdc/brands__ct/{p.name}" for p in change_paths),
        ]
    )

    final = replay(out, landed)
    assert final == expect["final_state"]
    assert len(final) == expect["final_count"] and len(reloaded) == reload["rows"]
    assert (
        hashlib.sha256(orjson.dumps(final, option=orjson.OPT_SORT_KEYS)).hexdigest()
        == expect["final_state_sha256"]
    )
    assert expect["events"] == dict(Counter(row["header__change_oper"] for _, row in changes))
    part = source["partitions"]["all"]
    assert part["records_read"] == part["bronze_rows"] == len(first) + len(reloaded) + len(changes)
    assert part["distinct_keys"] == len(
        {r["brand_id"] for r in first + reloaded} | {r["brand_id"] for _, r in changes}
    )
    for i, (_, row) in enumerate(changes):
        if row["header__change_oper"] == "B":
            assert changes[i + 1][1]["header__change_oper"] == "U"
            assert changes[i + 1][1]["header__change_seq"] == row["header__change_seq"]
    # Landing order (names and mtimes) disagrees with sequence order for at least one pair of files.
    max_seq = [max(r["header__change_seq"] for r in cdc_rows(p)) for p in change_paths]
    assert max_seq != sorted(max_seq)
    assert [p.name for p in sorted(change_paths, key=lambda p: p.stat().st_mtime)] == [
        p.name for p in change_paths
    ]
    # Overlap: some changes predate the first full load, and some, made while the reload ran, are in it too.
    assert min(r["header__timestamp"] for _, r in changes) < max(r["updated_at"] for r in first)
    started = reload["started"]
    during = [r for _, r in changes if r["header__timestamp"] >= started and r["header__change_oper"] != "B"]
    in_reload = {r["brand_id"]: r for r in reloaded}
    assert any(in_reload.get(r["brand_id"], {}).get("updated_at") == r["updated_at"] for r in during)
    # The change file with the last changes before the outage lands after the reload.
    late = cdc_rows(out / reload["lands_before"])
    assert max(r["header__timestamp"] for r in late) < started
    assert (out / reload["lands_before"]).stat().st_mtime > (out / reload["path"]).stat().st_mtime

    keys = expect["scripted_keys"]
    present = {r["brand_id"] for r in final}
    gone, changed = reload["deleted_while_capture_was_down"], reload["changed_while_capture_was_down"]
    assert (
        keys["deleted"] not in present
        and keys["tombstone"] not in present
        and keys["deleted_reinserted"] in present
        and gone not in present
        and changed in present
    )
    # What the reload fixes: without it, the last captured change of `gone` resurrects it, and `changed` keeps
    # the value captured before the outage.
    without_reload = {r["brand_id"]: r for r in replay(out, [p for p in landed if p != reload["path"]])}
    assert gone in without_reload
    assert without_reload[changed] != {r["brand_id"]: r for r in final}[changed]
    # Replaying in landing order without comparing seqs resurrects the tombstoned key.
    naive = {r["brand_id"]: "L" for r in first}
    for _, row in changes:
        if row["header__change_oper"] != "B":
            naive[row["brand_id"]] = row["header__change_oper"]
    assert naive[keys["tombstone"]] == "U"


def test_mongo_documents_match_manifest(drop):
    _, manifest, mongo_path = drop
    expect = manifest["sources"]["mongo_campaigns"]["expect"]
    client = litemongo.connect(f"{mongo_path}#strata")
    docs = list(client["strata"][expect["collection"]].find({}))
    client.close()
    assert len(docs) == expect["count"] == len(expect["docs"])
    actual = {
        d["_id"]: {
            "updated_at": d["updated_at"]
            .replace(tzinfo=d["updated_at"].tzinfo or UTC)
            .strftime("%Y-%m-%dT%H:%M:%SZ"),
            "status": d["status"],
        }
        for d in docs
    }
    assert actual == expect["docs"]
    assert expect["updated"] > 0 and expect["writes"] == expect["count"] + expect["updated"]


# -- scale --------------------------------------------------------------------------------------------

_PEAK_RSS = """
import resource, subprocess, sys
subprocess.run([sys.executable, "-c", sys.argv[1]], check=True)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""
_GENERATE_POSTS = (
    "from strata.generate import generate; generate({out!r}, scale={scale}, days=1, sources=['social_posts'])"
)


def _peak_rss_kib(out: Path, scale: int) -> tuple[int, dict]:
    code = _GENERATE_POSTS.format(out=str(out), scale=scale)
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, code], check=True, capture_output=True, text=True
    )
    return int(result.stdout.strip()), json.loads((out / "manifest.json").read_bytes())


def test_memory_stays_flat_as_scale_grows(tmp_path):
    small, small_manifest = _peak_rss_kib(tmp_path / "s3", 3)
    large, large_manifest = _peak_rss_kib(tmp_path / "s30", 30)
    posts = [
        sum(p["distinct_keys"] for p in m["sources"]["social_posts"]["partitions"].values())
        for m in (small_manifest, large_manifest)
    ]
    assert posts[1] >= 9.5 * posts[0]
    assert large < 1.2 * small + 5 * 1024, (small, large)
    # At scale 1000 a week holds over ten million posts (posts scale linearly).
    assert posts[1] / 30 * 1000 * 7 >= 10_000_000
    assert "topics" not in large_manifest["sources"]["social_posts"]["expect"]


def test_playback_recount(drop):
    out, manifest, _ = drop
    source = manifest["sources"]["video_playback"]
    read, no_time, events_by_day = 0, 0, defaultdict(set)
    for path, data in _loadable(source, out):
        if path.endswith(".gz"):
            data = gzip.decompress(data)
        records = [json.loads(line) for line in data.splitlines()] if ".jsonl" in path else json.loads(data)
        read += len(records)
        for record in records:
            if record["event_time"] is None:
                no_time += 1
            else:
                events_by_day[record["event_time"][:10]].add(record["event_id"])
    dumps = source["partitions"]["all"]
    assert (dumps["records_read"], dumps["quarantined"]) == (read, {"no_event_time": no_time})
    assert {day: len(ids) for day, ids in events_by_day.items()} == {
        day: truth["events"] for day, truth in source["expect"]["per_day"].items()
    }
    assert {day: part["bronze_rows"] for day, part in source["partitions"].items() if day != "all"} == {
        day: len(ids) for day, ids in events_by_day.items()
    }
