"""Stream dumps: a consumer's files named by a UUID, records of any day, delivered at least once. Each dump is
split by the event time of its records into its days' partitions; a dump re-sent with the same bytes is a
duplicate; a record repeated by a later dump is loaded once; a record with no event time is set aside naming
its dump and record. Silver and gold count every event on the day it happened."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from assets.bronze import ledger
from assets.bronze.discover import discover, sha256_of
from assets.bronze.dumps import part_path, split_dump
from assets.bronze.factory import bronze_assets
from assets.bronze.sources import SOURCES_BY_NAME
from resources import LandingZoneResource, MongoResource
from strata.generate import FaultRates, playback
from strata.generate.core import Run
from tests.conftest import PII_SALT

pytestmark = pytest.mark.slow

SOURCE = SOURCES_BY_NAME["video_playback"]
BRONZE = next(a for a in bronze_assets if a.key == SOURCE.asset_key)
SILVER = dg.AssetKey(["silver", "playback_events"])
GOLD = dg.AssetKey(["gold", "content_playback"])
START = date(2026, 11, 1)
DAYS = 3
DUMP_NAME = "7e57ab1e-0000-4000-8000-000000000001.json"


def test_dumps_split_into_their_event_days_and_every_event_counts_once(warehouse, transform, tmp_path):
    root = tmp_path / "landing"
    run = Run(root, seed=11, scale=1, days=DAYS, start=START, rates=FaultRates(playback_no_event_time=0.01))
    report = playback.generate(run)
    manifest = report.to_dict()
    # A dump whose last line is not JSON: that record is set aside, the rest of its dump is split.
    broken = "stream/playback/0badc0de-0000-4000-8000-000000000000.jsonl"
    (root / broken).write_bytes(
        b'{"event_id": "pbs_late_0", "event_time": "2026-11-02T10:00:00Z", "event_type": "start",'
        b' "session_id": "pbs_late", "content_id": "cnt_000001", "user_id": "usr_late"}\n{"event_id": "pbs_la'
    )
    resources = {
        "postgres": warehouse,
        "mongo": MongoResource(url=(tmp_path / "mongo").as_uri()),
        "landing": LandingZoneResource(root=str(root)),
        "dbt": transform.dbt_resource(PII_SALT),
    }
    daily = next(a for a in transform.dbt_assets if a.op.name == "dbt_daily")
    days = [key for key in manifest["partitions"] if key != "all"]

    for day in days:
        assert dg.materialize([BRONZE], partition_key=day, resources=resources).success
        built = dg.materialize([daily], partition_key=day, selection=[SILVER, GOLD], resources=resources)
        assert built.success and all(e.passed for e in built.get_asset_check_evaluations())

    with warehouse.connect() as conn:
        dumps = {
            path: (status, details)
            for path, status, details in conn.execute(
                "SELECT path, status, details FROM ledger.loads "
                "WHERE source = 'video_playback' AND partition_key IS NULL"
            )
        }
        rows_by_day = dict(
            conn.execute(
                "SELECT partition_date::text, count(*) FROM bronze.video_playback GROUP BY 1"
            ).fetchall()
        )
        (events, distinct_events) = conn.execute(
            "SELECT count(*), count(DISTINCT raw->>'event_id') FROM bronze.video_playback"
        ).fetchone()
        set_aside = conn.execute(
            "SELECT coalesce(partition_key, 'all'), source_file, record_number, reason FROM bronze.quarantine "
            "WHERE source = 'video_playback' ORDER BY 1, 2, 3"
        ).fetchall()
        wrong_day = conn.execute(
            "SELECT count(*) FROM bronze.video_playback WHERE (event_time AT TIME ZONE 'UTC')::date <> partition_date"
        ).fetchone()[0]
        gold = {
            day.isoformat(): (events, started, completed, viewers)
            for day, events, started, completed, viewers in conn.execute(
                """SELECT event_date, sum(events), sum(sessions_started), sum(sessions_completed),
                          (SELECT count(DISTINCT user_id) FROM silver.playback_events s
                           WHERE s.event_date = g.event_date)
                   FROM gold.content_playback g GROUP BY event_date"""
            )
        }

    # Every dump was split once; the one written twice under a second name was not split again.
    (resent,) = manifest["duplicate_files"]
    assert dumps.pop(resent["path"])[0] == "duplicate"
    assert dumps.pop(broken) == ("archived", {"parts": {"2026-11-02": 1}})
    assert {path for path in dumps} == {f["path"] for f in manifest["files"]} - {resent["path"]}
    assert all(status == "archived" for status, _ in dumps.values())
    spanning = [details["parts"] for _, details in dumps.values() if len(details["parts"]) == 2]
    assert len(spanning) == manifest["expect"]["dumps_spanning_two_days"] > 0

    # Each event is in bronze once, on the day of its event time; the broken dump's good record joins its day.
    expected_rows = {day: manifest["partitions"][day]["bronze_rows"] for day in days}
    assert rows_by_day == expected_rows | {"2026-11-02": expected_rows["2026-11-02"] + 1}
    assert events == distinct_events and wrong_day == 0

    # What was set aside: each repeat in its day, each record with no event time and the broken line under the
    # dump that carried it, by file and record number.
    reasons = {}
    for key, _, _, reason in set_aside:
        reasons.setdefault(key, {}).setdefault(reason, 0)
        reasons[key][reason] += 1
    expected = {
        key: part["quarantined"] for key, part in manifest["partitions"].items() if part["quarantined"]
    }
    expected["all"] = expected["all"] | {"malformed_json": 1}
    assert reasons == expected
    assert ("all", broken, 2, "malformed_json") in set_aside
    assert manifest["partitions"]["all"]["quarantined"]["no_event_time"] > 0
    assert manifest["expect"]["repeated_records"] > 0

    truth = manifest["expect"]["per_day"]
    late = {"2026-11-02": (1, 1, 0, 1)}
    assert gold == {
        day: tuple(
            a + b
            for a, b in zip(
                (t["events"], t["starts"], t["completes"], t["viewers"]),
                late.get(day, (0, 0, 0, 0)),
                strict=True,
            )
        )
        for day, t in truth.items()
    }


def test_a_split_stopped_before_its_commit_is_done_again_from_the_start(warehouse, tmp_path):
    root = tmp_path / "landing"
    landing = LandingZoneResource(root=str(root))
    dump = f"stream/playback/{DUMP_NAME}"
    (root / dump).parent.mkdir(parents=True)
    (root / dump).write_bytes(
        b'[{"event_id": "e1", "event_time": "2026-11-01T23:59:59.900Z"},'
        b' {"event_id": "e2", "event_time": "2026-11-02T00:00:00.100Z"}]'
    )

    class Stopped(Exception):
        pass

    landed = ledger.LandedFile(dump, None, (root / dump).stat().st_size, None, sha256_of(root / dump))
    with warehouse.connect(autocommit=True) as conn:
        ledger.ensure_schema(conn)
        with pytest.raises(Stopped), conn.transaction():
            split_dump(conn, SOURCE, landing, landed)
            raise Stopped  # the process dies after writing the parts, before the commit
        parts = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jsonl"))
        assert parts == [part_path(dump, "2026-11-01"), part_path(dump, "2026-11-02")]
        assert conn.execute(
            "SELECT count(*) FROM ledger.loads WHERE strpos(path, %s) > 0", (DUMP_NAME,)
        ).fetchone() == (0,)

        # The next discovery splits the dump again: the same parts (found on disk first, or written again), each
        # registered once, and the dump archived.
        again = discover(conn, SOURCE, landing)
        loads = conn.execute(
            "SELECT path, partition_key, status, records_read FROM ledger.loads "
            "WHERE strpos(path, %s) > 0 ORDER BY path",
            (DUMP_NAME,),
        ).fetchall()

    assert sorted(load.path for load in again.registered) == parts
    assert loads == [
        (dump, None, "archived", 2),
        (parts[0], "2026-11-01", "ready", None),
        (parts[1], "2026-11-02", "ready", None),
    ]
    assert (root / "archive" / dump).exists() and not (root / dump).exists()
    assert (root / parts[0]).read_bytes() == b'{"event_id":"e1","event_time":"2026-11-01T23:59:59.900Z"}\n'


def test_a_dump_that_cannot_be_read_is_errored_whole_naming_why(warehouse, tmp_path):
    root = tmp_path / "landing"
    landing = LandingZoneResource(root=str(root))
    dump = "stream/playback/0ddba11-0000-4000-8000-000000000002.json"
    (root / dump).parent.mkdir(parents=True)
    (root / dump).write_bytes(
        b'[{"event_id": "e1", "event_time": "2026-11-01T10:00:00Z"}, {"event_id": "e2", "ev'
    )

    with warehouse.connect(autocommit=True) as conn:
        ledger.ensure_schema(conn)
        found = discover(conn, SOURCE, landing)
        (status, read, error) = conn.execute(
            "SELECT status, records_read, error FROM ledger.loads WHERE path = %s", (dump,)
        ).fetchone()
        set_aside = conn.execute(
            "SELECT record_number, reason FROM bronze.quarantine WHERE source_file = %s", (dump,)
        ).fetchall()

    assert found.registered == [] and not list(root.rglob("date=*"))
    assert (status, read) == ("errored", 1) and error.startswith("unrepairable_json")
    assert set_aside == [(None, "unrepairable_json")]
    assert (root / "error" / dump).exists() and not (root / dump).exists()
