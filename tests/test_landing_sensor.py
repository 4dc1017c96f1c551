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
from resources import MongoResource
from strata.definitions import defs

AMBASSADORS = next(a for a in bronze_assets if a.key.path[-1] == "ambassadors")


@dg.asset
def STAND_IN() -> None:  # noqa: N802 — a job to create runs of; never executed
    """A job to create runs of in the instance; never executed."""


AMBASSADOR = b'[{"user_id": "u1", "name": "Ann", "email": "ann@example.com", "programs": []}]'


@pytest.fixture
def zone(bronze_resources: dict) -> dict:
    return {name: bronze_resources[name] for name in ("postgres", "landing")}


POSTS_CHAIN = {
    "bronze/social_posts",
    "documents/social_posts",
    "silver/posts",
    "silver/post_media",
    "gold/account_daily_engagement",
    "gold/creator_leaderboard",
    "gold/post_media_quality",
}
# The unpartitioned models after them (accounts infers the accounts posts name before their snapshot, the labels'
# silver joins the posts' media, the visual topics their engagement) and the vector index.
TAIL = {
    "silver/accounts",
    "silver/image_labels",
    "gold/visual_topics_daily",
    "silver/content_documents",
    "vector/content_index",
}


def selection(request: dg.RunRequest) -> set[str]:
    return {key.to_user_string() for key in request.asset_selection}


INSTANCE = dg.DagsterInstance.ephemeral()


def tick(zone: dict, cursor: str | None = None, instance: dg.DagsterInstance = INSTANCE) -> dg.SensorResult:
    """One evaluation, against an instance with no landing run in progress unless one is given."""
    return landing_sensor(
        dg.build_sensor_context(cursor=cursor, resources=zone, definitions=defs, instance=instance)
    )


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


def post(network: str, post_id: str = "1") -> bytes:
    return b'{"post_id": "%s", "network": "%s"}\n' % (post_id.encode(), network.encode())


def test_a_backlog_loads_bronze_in_one_run_per_range_and_leaves_the_rest_to_reconciliation(zone, monkeypatch):
    monkeypatch.setattr(sensor_module, "CHAIN_MAX_RUNS", 2)
    # Days × networks in the partitions' order: (11-01, tiktok) and (11-01, facebook) are neighbours; the two
    # days of accounts and of tweets are the same range; 11-03|x stands alone.
    for network in ("tiktok", "facebook"):
        land(zone, f"social/posts/network={network}/date=2026-11-01/part-0000.jsonl", post(network))
    land(zone, "social/posts/network=x/date=2026-11-03/part-0000.jsonl", post("x"))
    for day in ("2026-11-01", "2026-11-02"):
        land(
            zone,
            f"social/accounts/date={day}/accounts.csv",
            f"account_id,network,handle\r\n{day},x,a\r\n".encode(),
        )
        land(zone, f"x/tweets/date={day}/page.json", f'{{"statuses": [{{"id_str": "{day}"}}]}}'.encode())
    land(zone, "video/users/users.csv", b"user_id,name\r\nu1,Ann\r\n")
    land(zone, "ambassadors/batch.json", AMBASSADOR)

    requests = tick(zone, tick(zone).cursor).run_requests

    assert sorted(
        (
            sorted(selection(r)),
            r.tags.get("dagster/asset_partition_range_start"),
            r.tags.get("dagster/asset_partition_range_end"),
        )
        for r in requests
    ) == [
        (["bronze/ambassadors", "bronze/video_users"], None, None),
        (["bronze/social_accounts", "bronze/tweets"], "2026-11-01", "2026-11-02"),
        (["bronze/social_posts"], "2026-11-01|tiktok", "2026-11-01|facebook"),
        (["bronze/social_posts"], "2026-11-03|x", "2026-11-03|x"),
    ]
    assert all(r.partition_key is None and r.tags["strata/trigger"] == "landing" for r in requests)


def test_partitions_a_landing_run_in_progress_covers_are_not_requested_again(zone, monkeypatch):
    monkeypatch.setattr(sensor_module, "CHAIN_MAX_RUNS", 1)
    for network in ("youtube", "instagram", "tiktok"):
        land(zone, f"social/posts/network={network}/date=2026-11-01/part-0000.jsonl", post(network))
    with dg.instance_for_test() as instance:
        first = tick(zone, instance=instance)
        [backlog] = tick(zone, first.cursor, instance=instance).run_requests
        # The backlog run has not started: a file landing in its range waits for it.
        instance.create_run_for_job(
            dg.Definitions(assets=[STAND_IN]).get_implicit_global_asset_job_def(),
            tags=backlog.tags,
            status=dg.DagsterRunStatus.NOT_STARTED,
        )
        land(zone, "social/posts/network=facebook/date=2026-11-01/part-0000.jsonl", post("facebook"))
        cursor = tick(zone, first.cursor, instance=instance).cursor

        [later] = tick(zone, cursor, instance=instance).run_requests

    assert (
        backlog.tags["dagster/asset_partition_range_start"],
        backlog.tags["dagster/asset_partition_range_end"],
    ) == (
        "2026-11-01|youtube",
        "2026-11-01|tiktok",
    )
    assert later.partition_key == "2026-11-01|facebook"


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


def test_a_file_unchanged_for_a_few_seconds_is_stable_at_first_sight(zone):
    path = land(zone, "ambassadors/batch.json", AMBASSADOR)
    written = path.stat().st_mtime_ns - (sensor_module.STABLE_SECONDS + 1) * 1_000_000_000
    os.utime(path, ns=(written, written))
    fresh = land(zone, "ambassadors/later.json", AMBASSADOR.replace(b"u1", b"u2"))

    first = tick(zone)

    assert [r.run_key for r in first.run_requests] == ["ambassadors:-:1"]
    assert [row[1] for row in ledger_rows(zone)] == ["ambassadors/batch.json"] and fresh.exists()


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
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'ledger' ORDER BY 1"
            )
        ]
    assert users == [f"hostile{i}" for i in range(len(names))]
    # DROP TABLE in a file name stayed a file name.
    assert tables == ["documents", "loads", "source_fields", "watermarks"]
    assert secret.exists() and (zone["landing"].root_path / "ambassadors" / "escape.json").is_symlink()


@pytest.mark.slow
def test_a_backlog_of_ten_thousand_files_is_ledgered_exactly_once_over_a_bounded_number_of_ticks(zone):
    # How long a tick takes is measured by `strata bench landing_backlog`, not asserted here.
    folder = zone["landing"].root_path / "ambassadors"
    folder.mkdir(parents=True)
    for i in range(10_000):
        (folder / f"batch-{i:05d}.json").write_bytes(AMBASSADOR.replace(b"u1", f"u{i}".encode()))

    cursor, ticks = None, 0
    while True:
        cursor = tick(zone, cursor).cursor
        ticks += 1
        if len(ledger_rows(zone)) == 10_000 and not json_cursor_waiting(cursor):
            break
        assert ticks < 60, "backlog not drained"

    with zone["postgres"].connect() as conn:
        (distinct_paths, rows) = conn.execute(
            "SELECT count(DISTINCT path), count(*) FROM ledger.loads"
        ).fetchone()
    assert distinct_paths == rows == 10_000


def json_cursor_waiting(cursor: str | None) -> int:
    import json

    return sum(len(files) for files in json.loads(cursor or "{}").values())


def test_a_partition_run_scans_only_that_partitions_folders():
    """Discovery for one partition must not grow with the source's history."""
    posts, tweets, brands = (SOURCES_BY_NAME[name] for name in ("social_posts", "tweets", "cdc_brands"))

    assert posts.partition_folders("2026-11-01|x") == ("social/posts/network=x/date=2026-11-01",)
    assert tweets.partition_folders("2026-11-01") == ("x/tweets/date=2026-11-01",)
    assert brands.partition_folders(None) == ("cdc/brands", "cdc/brands__ct")


def test_a_cdc_reload_lands_in_a_folder_named_for_its_start_and_in_no_other_folder():
    brands = SOURCES_BY_NAME["cdc_brands"]

    assert brands.match("cdc/brands/LOAD00000001.csv.gz") == {}
    assert brands.match("cdc/brands/20261105-015133752/LOAD00000002.csv") == {
        "snapshot": "20261105-015133752"
    }
    # Anything else under the table's folder breaks the contract: refused at landing, naming it.
    for path in ("cdc/brands/reload-2/LOAD00000001.csv", "cdc/brands/20261105/LOAD00000001.csv"):
        assert brands.match(path) is None


def test_hashing_per_tick_stops_at_the_byte_budget_and_the_rest_waits_for_the_next_tick(zone, monkeypatch):
    monkeypatch.setattr(sensor_module, "MAX_BYTES_PER_TICK", 200)
    for i in range(4):
        land(zone, f"ambassadors/batch-{i}.json", AMBASSADOR.replace(b"u1", f"user{i:03d}".encode()))

    cursor, registered = tick(zone).cursor, []
    for _ in range(3):
        result = tick(zone, cursor)
        cursor = result.cursor
        registered.append(len(ledger_rows(zone)))

    # Each file is 83 bytes: a tick hashes files until it has hashed 200 bytes (three), the rest wait.
    assert registered == [3, 4, 4]


def test_files_dated_outside_the_partitions_are_refused_with_the_reason(zone):
    land(zone, "social/posts/network=x/date=2019-01-01/old.jsonl", post("x"))
    land(zone, "social/posts/network=x/date=2099-01-01/future.jsonl", post("x"))
    land(zone, "social/posts/network=x/date=2026-13-45/nonsense.jsonl", post("x"))

    tick(zone)

    assert ledger_rows(zone) == [
        ("social_posts", path, "errored", "date outside the partitions")
        for path in (
            "social/posts/network=x/date=2019-01-01/old.jsonl",
            "social/posts/network=x/date=2026-13-45/nonsense.jsonl",
            "social/posts/network=x/date=2099-01-01/future.jsonl",
        )
    ]
    assert sorted(p.name for p in (zone["landing"].root_path / "error").rglob("*.jsonl")) == [
        "future.jsonl",
        "nonsense.jsonl",
        "old.jsonl",
    ]


def test_a_tick_registering_many_files_of_a_source_logs_one_line_for_them(zone, capfd):
    for i in range(25):
        land(zone, f"ambassadors/batch-{i:02d}.json.done", b"")
        land(zone, f"ambassadors/batch-{i:02d}.json", AMBASSADOR.replace(b"u1", f"u{i}".encode()))
    capfd.readouterr()

    tick(zone)

    out, err = capfd.readouterr()
    lines = [line for line in (out + err).splitlines() if " - registered " in line]
    assert len(ledger_rows(zone)) == 25
    assert len(lines) == 1 and "registered 25 ambassadors loads, " in lines[0], lines
