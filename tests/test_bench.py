"""`strata bench` end to end on tiny inputs: the report's shape and the row counts, never timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from strata.bench import SCENARIOS, report_path, run
from strata.bench.core import ScenarioResult, render
from strata.bench.data import corpus, prefix

RECORDS = 2_000


def test_scenarios_are_registered():
    assert {"bronze_load", "bronze_memory", "code_location_load"} <= set(SCENARIOS)
    assert all(callable(fn) for fn in SCENARIOS.values())


def test_unknown_scenario_is_refused(own_settings):
    with pytest.raises(ValueError, match="unknown bench scenarios"):
        run(own_settings, ["no_such_scenario"], database="bench_test")


def test_targets_and_rendering():
    result = ScenarioResult("demo", "a demo", columns=[("rows/s", "rows_per_s", ",.0f")])
    result.figures = {"strata": {"rows_per_s": 90.0}, "anchor": {"rows_per_s": 10.0}}
    result.target("strata/anchor", result.ratio("strata/anchor", 90.0, 10.0), ">=", 5, "×")
    result.target("seconds", 6.0, "<=", 5, " s")
    result.target("strata/broken", result.ratio("strata/broken", 90.0, None), ">=", 2, "×")
    report = result.to_json()
    assert report["ratios"] == {"strata/anchor": 9.0, "strata/broken": None}
    assert [t["met"] for t in report["targets"]] == [True, False, False]
    assert report["met"] is False
    text = render(
        [result],
        {
            "cores": 2,
            "memory_gb": 1,
            "cpu": "x",
            "python": "3",
            "postgres": "18",
            "dagster": "1",
            "psycopg": "3",
        },
    )
    assert "[MISS] seconds <= 5 s" in text and "[MET ] strata/anchor >= 5×" in text


def test_bench_files_are_deterministic_prefixes(tmp_path: Path):
    whole = corpus(tmp_path, 1, log=lambda _: None)
    assert whole.records > 1_000
    head = prefix(whole, records=1_000)
    assert head.records == 1_000
    assert whole.path.read_bytes().startswith(head.path.read_bytes())
    again = corpus(tmp_path, 1, log=lambda _: None)  # cached: same file, same bytes
    assert again == whole


def test_quick_bench_writes_report(own_settings, strata_env, capsys):
    assert (
        run(
            own_settings,
            ["code_location_load", "bronze_load", "landing_backlog"],
            database="bench_test",
            quick=True,
            anchors=False,
            records=RECORDS,
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "machine:" in printed and "bronze_load" in printed

    report = json.loads(report_path(own_settings).read_text())
    assert report["quick"] is True
    assert {"cores", "memory_gb", "cpu", "python", "postgres", "dagster", "psycopg"} <= set(report["machine"])
    assert report["machine"]["postgres"]
    assert set(report["scenarios"]) == {"code_location_load", "bronze_load", "landing_backlog"}
    for scenario in report["scenarios"].values():
        assert scenario["error"] is None, scenario
        assert {"figures", "ratios", "target", "targets", "met"} <= set(scenario)
        assert isinstance(scenario["met"], bool)
        assert scenario["targets"] and all(isinstance(t["met"], bool) for t in scenario["targets"])
        assert scenario["met"] == all(t["met"] for t in scenario["targets"])

    backlog = report["scenarios"]["landing_backlog"]["figures"]["strata landing_sensor"]
    assert backlog["ticks"] >= 1 and backlog["max_tick_s"] > 0
    location = report["scenarios"]["code_location_load"]["figures"]
    assert location["import strata.definitions"]["median_s"] > 0
    assert location["dagster definitions validate"]["median_s"] > 0

    bronze = report["scenarios"]["bronze_load"]
    strata = bronze["figures"]["strata"]
    lines = Path(strata["file"]).read_bytes().count(b"\n")
    assert lines == strata["records"] == RECORDS
    # The generator's faults are in: malformed lines and byte-identical copies are set aside, every record is
    # accounted for, and every loaded row has its raw copy in Mongo.
    assert strata["quarantined"]["malformed_json"] > 0 and strata["quarantined"]["duplicate_record"] > 0
    assert strata["rows_in_table"] + sum(strata["quarantined"].values()) == RECORDS
    assert strata["rows_loaded"] == strata["rows_in_table"] == strata["mongo_documents"]
    assert set(strata["checks"]) == {
        "accounted",
        "no_duplicate_records",
        "schema_drift",
        "quarantine_rate",
        "no_empty_files",
        "volume_in_recent_range",
        "matches_bronze",
    }
    assert strata["checks"]["accounted"] and strata["checks"]["no_duplicate_records"]
    assert strata["checks"]["matches_bronze"]
    assert bronze["figures"]["strata_documents"]["rows_in_table"] == strata["mongo_documents"]
    # The ceiling copies the rows Strata loaded, in both of psql's bulk formats.
    for fmt in ("csv", "binary"):
        assert bronze["figures"][f"ceiling_{fmt}"]["rows_in_table"] == strata["rows_in_table"]
    assert bronze["ratios"]["strata/ceiling"] > 0
    assert [t["name"] for t in bronze["targets"]] == ["strata/ceiling"]  # anchors skipped
    assert "dlt_default" not in bronze["figures"]


def test_a_missed_target_fails_the_bench_and_a_met_one_does_not(own_settings, strata_env, monkeypatch):
    def scenario(name: str, value: float):
        def measure(ctx):
            result = ScenarioResult(name, "a fixed figure against a 1 s bound")
            result.target("seconds", value, "<=", 1.0, " s")
            return result

        return measure

    monkeypatch.setitem(SCENARIOS, "missed", scenario("missed", 2.0))
    monkeypatch.setitem(SCENARIOS, "met", scenario("met", 0.5))

    assert run(own_settings, ["missed"], database="bench_test", quick=False, anchors=False) == 1
    assert run(own_settings, ["met"], database="bench_test", quick=False, anchors=False) == 0
    # The report keeps each scenario's latest run: the second run added its scenario beside the first.
    scenarios = json.loads(report_path(own_settings).read_text())["scenarios"]
    assert {name: s["targets"][0]["met"] for name, s in scenarios.items()} == {"missed": False, "met": True}
    # A quick run is a smoke run on shrunk inputs: its figures are not held to the targets.
    assert run(own_settings, ["missed"], database="bench_test", quick=True, anchors=False) == 0
