"""The landing sensor, driven with build_sensor_context against a real ledger in Postgres."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from assets.bronze import sensor as sensor_module
from assets.bronze.factory import bronze_assets
from assets.bronze.sensor import landing_sensor
from assets.bronze.sources import SOURCES_BY_NAME
from resources import LandingZoneResource, MongoResource, PostgresResource
from strata.definitions import defs

AMBASSADORS = next(a for a in bronze_assets if a.key.path[-1] == "ambassadors")
AMBASSADOR = b'[{"user_id": "u1", "name": "Ann", "email": "ann@example.com", "programs": []}]'


@pytest.fixture
def zone(warehouse: PostgresResource, tmp_path: Path) -> dict:
    with warehouse.connect(autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS ledger CASCADE; DROP SCHEMA IF EXISTS bronze CASCADE")
    root = tmp_path / "landing"
    root.mkdir()
    return {"postgres": warehouse, "landing": LandingZoneResource(root=str(root))}


POSTS_CHAIN = {
    "bronze/social_posts",
    "silver/posts",
    "silver/post_media",
    "gold/account_daily_engagement",
    "gold/creator_leaderboard",
}
TAIL = {"silver/content_documents", "vector/content_index"}


def selection(request: dg.RunRequest) -> set[str]:
    return {key.to_user_string() for key in request.asset_selection}


def tick(zone: dict, cursor: str | None = None) -> dg.SensorResult:
    return landing_sensor(dg.build_sensor_context(cursor=cursor, resources=zone, definitions=defs))


def land(zone: dict, relative: str, data: bytes) -> Path:
    path = zone["landing"].root_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def ledger_rows(zone: dict) -> list[tuple]:
    with zone["postgres"].connect() as conn:
        return conn.execute("SELECT source, path, status, error FROM ledger.loads ORDER BY path").fetchall()


def test_files_wait_one_tick_to_prove_stable_then_each_partition_is_requested_once(zone):
    land(
        zone, "social/posts/network=x/date=2026-11-01/part-0000.jsonl", b'{"post_id": "1", "network": "x"}\n'
    )
    land(
        zone, "social/posts/network=x/date=2026-11-01/part-0001.jsonl", b'{"post_id": "2", "network": "x"}\n'
    )
    land(
        zone,
        "social/posts/network=tiktok/date=2026-11-02/part-0000.jsonl",
        b'{"post_id": "3", "network": "tiktok"}\n',
    )

    first = tick(zone)
    registered_after_first = ledger_rows(zone)
    second = tick(zone, first.cursor)
    third = tick(zone, second.cursor)

    assert first.run_requests == [] and registered_after_first == []
    # Load ids follow path order; a partition's run key carries its highest ready load id.
    assert sorted((r.partition_key, r.run_key) for r in second.run_requests) == [
        ("2026-11-01|x", "social_posts:2026-11-01|x:3"),
        ("2026-11-02|tiktok", "social_posts:2026-11-02|tiktok:1"),
    ]
    assert [r.run_key for r in third.run_requests] == [r.run_key for r in second.run_requests]
    assert len(ledger_rows(zone)) == 3
    # A trickle: each run carries the partition's whole chain, through gold and the vector index.
    assert [selection(r) for r in second.run_requests] == [POSTS_CHAIN | TAIL] * 2


def test_a_backlog_tick_loads_bronze_only_and_leaves_the_rest_to_reconciliation(zone, monkeypatch):
    monkeypatch.setattr(sensor_module, "CHAIN_MAX_RUNS", 2)
    for network in ("x", "tiktok"):
        land(
            zone,
            f"social/posts/network={network}/date=2026-11-01/part-0000.jsonl",
            b'{"post_id": "1", "network": "%s"}\n' % network.encode(),
        )
    land(zone, "video/users/users.csv", b"user_id,name\r\nu1,Ann\r\n")

    requests = tick(zone, tick(zone).cursor).run_requests

    assert sorted((r.partition_key or "-", sorted(selection(r))) for r in requests) == [
        ("-", ["bronze/video_users"]),
        ("2026-11-01|tiktok", ["bronze/social_posts"]),
        ("2026-11-01|x", ["bronze/social_posts"]),
    ]


def test_a_trickled_unpartitioned_source_brings_its_unpartitioned_chain(zone):
    land(zone, "video/users/users.csv", b"user_id,name\r\nu1,Ann\r\n")

    [request] = tick(zone, tick(zone).cursor).run_requests

    assert request.partition_key is None
    assert selection(request) == {"bronze/video_users", "silver/video_users"}


def test_a_file_still_growing_is_not_registered_until_it_stops_changing(zone):
    path = land(zone, "ambassadors/batch.json", AMBASSADOR[:20])
    first = tick(zone)
    with path.open("ab") as handle:
        handle.write(AMBASSADOR[20:])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    second = tick(zone, first.cursor)
    third = tick(zone, second.cursor)

    assert first.run_requests == second.run_requests == []
    assert [r.run_key for r in third.run_requests] == ["ambassadors:-:1"]


def test_a_done_marker_makes_a_file_stable_at_once(zone):
    land(zone, "ambassadors/batch.json", AMBASSADOR)
    land(zone, "ambassadors/batch.json.done", b"")

    assert [r.run_key for r in tick(zone).run_requests] == ["ambassadors:-:1"]


def test_a_backlog_is_registered_in_bounded_ticks_each_file_exactly_once(zone, monkeypatch):
    monkeypatch.setattr(sensor_module, "MAX_FILES_PER_TICK", 5)
    for i in range(12):
        land(zone, f"ambassadors/batch-{i:02d}.json", AMBASSADOR.replace(b"u1", f"u{i}".encode()))

    cursor, registered = None, []
    for _ in range(5):
        result = tick(zone, cursor)
        cursor = result.cursor
        registered.append(len(ledger_rows(zone)))

    assert registered == [0, 5, 10, 12, 12]
    assert sorted(r[1] for r in ledger_rows(zone)) == [f"ambassadors/batch-{i:02d}.json" for i in range(12)]


def test_hostile_file_names_are_data_and_never_escape_the_root(zone, tmp_path):
    names = [
        "ambassadors/a'b;DROP TABLE ledger.loads;--.json",
        'ambassadors/quote"d name.json',
        "ambassadors/ünïcødé 🚀.json",
        "ambassadors/dots..in..name.json",
        "ambassadors/tab\tand\nnewline.json",
    ]
    for i, name in enumerate(names):
        land(zone, name, AMBASSADOR.replace(b"u1", f"hostile{i}".encode()))
    secret = tmp_path / "outside.json"
    secret.write_bytes(b'[{"user_id": "stolen"}]')
    (zone["landing"].root_path / "ambassadors" / "escape.json").symlink_to(secret)
    (zone["landing"].root_path / "ambassadors" / "dir-link").symlink_to(tmp_path)
    resources = {**zone, "mongo": MongoResource(url=(tmp_path / "mongo").as_uri())}

    dg.materialize([AMBASSADORS], resources=resources)

    rows = {path: (status, error) for _, path, status, error in ledger_rows(zone)}
    assert {name: rows[name][0] for name in names} == dict.fromkeys(names, "archived")
    assert (
        rows["ambassadors/escape.json"][0] == "errored"
        and "outside the landing root" in rows["ambassadors/escape.json"][1]
    )
    assert rows["ambassadors/dir-link"][0] == "errored"
    with zone["postgres"].connect() as conn:
        users = sorted(u for (u,) in conn.execute("SELECT user_id FROM bronze.ambassadors"))
        (tables,) = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'ledger'"
        ).fetchone()
    assert users == [f"hostile{i}" for i in range(len(names))]
    assert tables == 3  # DROP TABLE in a file name stayed a file name
    assert secret.exists() and (zone["landing"].root_path / "ambassadors" / "escape.json").is_symlink()


@pytest.mark.slow
def test_a_backlog_of_ten_thousand_files_is_ledgered_exactly_once_in_ticks_under_30_seconds(zone):
    import time

    folder = zone["landing"].root_path / "ambassadors"
    folder.mkdir(parents=True)
    for i in range(10_000):
        (folder / f"batch-{i:05d}.json").write_bytes(AMBASSADOR.replace(b"u1", f"u{i}".encode()))

    cursor, durations = None, []
    while True:
        started = time.monotonic()
        result = tick(zone, cursor)
        durations.append(time.monotonic() - started)
        cursor = result.cursor
        if len(ledger_rows(zone)) == 10_000 and not json_cursor_waiting(cursor):
            break
        assert len(durations) < 60, "backlog not drained"

    with zone["postgres"].connect() as conn:
        (distinct_paths, rows) = conn.execute(
            "SELECT count(DISTINCT path), count(*) FROM ledger.loads"
        ).fetchone()
    assert distinct_paths == rows == 10_000
    assert max(durations) < 30, durations


def json_cursor_waiting(cursor: str | None) -> int:
    import json

    return sum(len(files) for files in json.loads(cursor or "{}").values())


def test_a_partition_run_scans_only_that_partitions_folders():
    """Discovery for one partition must not grow with the source's history."""
    posts, tweets, brands = (SOURCES_BY_NAME[name] for name in ("social_posts", "tweets", "cdc_brands"))

    assert posts.partition_folders("2026-11-01|x") == ("social/posts/network=x/date=2026-11-01",)
    assert tweets.partition_folders("2026-11-01") == ("x/tweets/date=2026-11-01",)
    assert brands.partition_folders(None) == ("cdc/brands", "cdc/brands__ct")
