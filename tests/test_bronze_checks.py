"""Bronze's WARN checks fail on input made to trip them, and the run still succeeds: `schema_drift` on a file
whose records carry a field the source never had (and lack one it always had), `quarantine_rate` on a file
whose malformed lines pass the source's threshold."""

from __future__ import annotations

import json

import dagster as dg

from assets.bronze.factory import bronze_assets

POSTS = next(a for a in bronze_assets if a.key.path[-1] == "social_posts")


def land(bronze_resources: dict, day: str, lines: list[str]) -> None:
    path = bronze_resources["landing"].root_path / f"social/posts/network=x/date={day}/part-0000.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def post(n: int, **fields) -> str:
    return json.dumps({"post_id": f"p{n}", "network": "x", "account_id": "a1", "text": "hello", **fields})


def checks(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str, dict]]:
    return {
        e.check_name: (e.passed, e.severity.value, {k: v.value for k, v in e.metadata.items()})
        for e in result.get_asset_check_evaluations()
    }


def test_a_new_field_and_a_missing_one_fail_schema_drift_as_a_warning(bronze_resources):
    land(bronze_resources, "2026-11-01", [post(n) for n in range(20)])
    first = dg.materialize([POSTS], partition_key="2026-11-01|x", resources=bronze_resources)
    land(
        bronze_resources,
        "2026-11-02",
        [
            json.dumps({"post_id": f"q{n}", "network": "x", "account_id": "a1", "mood": "😀"})
            for n in range(20)
        ],
    )

    drifted = dg.materialize([POSTS], partition_key="2026-11-02|x", resources=bronze_resources)

    assert first.success and checks(first)["schema_drift"][0] is True
    assert drifted.success
    passed, severity, metadata = checks(drifted)["schema_drift"]
    assert (passed, severity, metadata["new_fields"], metadata["missing_fields"]) == (
        False,
        "WARN",
        ["mood"],
        ["text"],
    )


def test_malformed_lines_past_the_threshold_fail_quarantine_rate_as_a_warning(bronze_resources):
    land(bronze_resources, "2026-11-03", [post(n) for n in range(18)] + ["{not json", "[1, 2]"])

    result = dg.materialize([POSTS], partition_key="2026-11-03|x", resources=bronze_resources)

    assert result.success
    passed, severity, metadata = checks(result)["quarantine_rate"]
    assert (passed, severity, metadata["quarantined"], metadata["read"], metadata["rate"]) == (
        False,
        "WARN",
        2,
        20,
        0.1,
    )
    assert checks(result)["accounted"][0] is True


def test_a_partition_far_below_its_weekdays_history_warns_and_an_empty_one_is_an_error(bronze_resources):
    # Four Sundays of x posts, then a fifth with a tenth of their rows.
    for week, count in enumerate((100, 110, 95, 105)):
        day = f"2026-11-{1 + 7 * week:02d}"
        land(bronze_resources, day, [post(1000 * week + n) for n in range(count)])
        assert dg.materialize([POSTS], partition_key=f"{day}|x", resources=bronze_resources).success

    def load(count: int) -> tuple[bool, str, dict]:
        land(bronze_resources, "2026-11-29", [post(9000 + n) for n in range(count)])
        result = dg.materialize([POSTS], partition_key="2026-11-29|x", resources=bronze_resources)
        assert result.success
        return checks(result)["volume_in_recent_range"]

    low = load(10)
    back = load(102)
    gone = load(0)

    # median 102.5; spread max(1.4826 × MAD 5, 10 % of the median) = 10.25; range 102.5 ± 4 × 10.25
    expected = {
        "history_partitions": 4,
        "history_median": 102.5,
        "expected_low": 61.5,
        "expected_high": 143.5,
    }
    assert low == (False, "WARN", {"rows": 10, **expected})
    assert back == (True, "WARN", {"rows": 102, **expected})
    assert gone == (False, "ERROR", {"rows": 0, **expected})
