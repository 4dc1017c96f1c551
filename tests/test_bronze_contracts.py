"""Schema contracts per source, on the real bronze asset of social posts configured with each contract.

Day 1 establishes the schema of network x's posts: `likes` a number, `media` a list of objects whose `media_type`
is a string. Day 2's file then holds six records: one conforming, one with a new top-level field, one whose
`likes` arrives as a string, one whose media item carries a new nested field, one whose `media_type` arrives as a
number, and one whose `likes` is null (a missing value, not a type change). Each contract's outcome is asserted
record by record: what reached bronze, what reached the quarantine with which reason, what the ledger says.
"""

from __future__ import annotations

import dataclasses
import json

import dagster as dg

from assets.bronze.factory import BronzeLoadConfig, build_bronze_asset
from assets.bronze.sources import SOURCES_BY_NAME

POSTS = SOURCES_BY_NAME["social_posts"]
DAY1, DAY2, DAY3 = "2026-11-01|x", "2026-11-02|x", "2026-11-03|x"
DAY2_FILE = "social/posts/network=x/date=2026-11-02/part-0000.jsonl"


def post(post_id: str, **fields) -> dict:
    return {
        "post_id": post_id,
        "network": "x",
        "account_id": "a1",
        "likes": 10,
        "media": [{"media_type": "image"}],
        **fields,
    }


BASELINE = [post("b1"), post("b2", likes=3, media=[])]
DRIFTED = [
    post("p1"),
    post("p2", mood="😀"),
    post("p3", likes="1.2K"),
    post("p4", media=[{"media_type": "video", "duration": 12}]),
    post("p5", media=[{"media_type": 3}]),
    post("p6", likes=None),
]
GOOD = [post("g1"), post("g2", likes=7)]


def posts_asset(contract: str) -> dg.AssetsDefinition:
    return build_bronze_asset(dataclasses.replace(POSTS, contract=contract))


def land(bronze_resources: dict, partition: str, records: list[dict]) -> None:
    day = partition.split("|")[0]
    path = bronze_resources["landing"].root_path / f"social/posts/network=x/date={day}/part-0000.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))


def load(
    bronze_resources: dict, asset: dg.AssetsDefinition, partition: str, **config
) -> dg.ExecuteInProcessResult:
    run_config = dg.RunConfig(ops={"bronze__social_posts": BronzeLoadConfig(**config)}) if config else None
    return dg.materialize([asset], partition_key=partition, resources=bronze_resources, run_config=run_config)


def drifted_day(bronze_resources: dict, contract: str) -> dg.ExecuteInProcessResult:
    asset = posts_asset(contract)
    land(bronze_resources, DAY1, BASELINE)
    assert load(bronze_resources, asset, DAY1).success
    land(bronze_resources, DAY2, DRIFTED)
    return load(bronze_resources, asset, DAY2)


def bronze_rows(bronze_resources: dict, day: str) -> list[tuple[str, dict]]:
    with bronze_resources["postgres"].connect() as conn:
        return conn.execute(
            "SELECT post_id, raw FROM bronze.social_posts WHERE partition_date = %s ORDER BY record_number",
            (day,),
        ).fetchall()


def quarantine(bronze_resources: dict, day: str) -> list[tuple]:
    with bronze_resources["postgres"].connect() as conn:
        return conn.execute(
            "SELECT record_number, reason, detail, value_path, raw_text FROM bronze.quarantine "
            "WHERE partition_key = %s ORDER BY record_number NULLS FIRST, quarantine_id",
            (day,),
        ).fetchall()


def ledger_row(bronze_resources: dict, path: str) -> tuple:
    with bronze_resources["postgres"].connect() as conn:
        return conn.execute(
            "SELECT status, records_read, records_loaded, records_quarantined, quarantined_by_reason, error, "
            "stored_path, details FROM ledger.loads WHERE path = %s ORDER BY load_id DESC LIMIT 1",
            (path,),
        ).fetchone()


def check(result: dg.ExecuteInProcessResult, name: str) -> tuple[bool, str, dict]:
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation.passed, evaluation.severity.value, {k: v.value for k, v in evaluation.metadata.items()}


def known_types(bronze_resources: dict, path: str) -> list[str]:
    with bronze_resources["postgres"].connect() as conn:
        return [
            kind
            for (kind,) in conn.execute(
                "SELECT json_type FROM ledger.source_fields WHERE source = 'social_posts/x' AND path = %s ORDER BY 1",
                (path,),
            )
        ]


def test_evolve_loads_every_record_as_sent_and_schema_drift_reports_type_and_nested_drift(bronze_resources):
    result = drifted_day(bronze_resources, "evolve")

    assert result.success
    assert bronze_rows(bronze_resources, "2026-11-02") == [(r["post_id"], r) for r in DRIFTED]
    assert quarantine(bronze_resources, "2026-11-02|x") == []
    passed, severity, metadata = check(result, "schema_drift")
    assert (passed, severity) == (False, "WARN")
    assert {
        k: metadata[k] for k in ("new_fields", "missing_fields", "new_nested_fields", "type_changes")
    } == {
        "new_fields": ["mood"],
        "missing_fields": [],
        "new_nested_fields": ["$.media[*].duration"],
        "type_changes": [
            {"path": "$.likes", "known": ["number"], "seen": ["string"]},
            {"path": "$.media[*].media_type", "known": ["string"], "seen": ["number"]},
        ],
    }
    assert (metadata["contract"], metadata["rows_discarded"], metadata["values_discarded"]) == (
        "evolve",
        0,
        0,
    )
    # The new pairs are known now: the same file's shapes a day later are no drift.
    assert known_types(bronze_resources, "$.likes") == ["null", "number", "string"]
    assert known_types(bronze_resources, "$.media[*].duration") == ["number"]
    land(bronze_resources, DAY3, [{**r, "post_id": f"{r['post_id']}-again"} for r in DRIFTED])
    again = load(bronze_resources, posts_asset("evolve"), DAY3)
    assert check(again, "schema_drift")[0] is True


def test_freeze_refuses_the_file_naming_record_and_field_and_the_next_good_file_loads(bronze_resources):
    result = drifted_day(bronze_resources, "freeze")

    assert result.success
    assert bronze_rows(bronze_resources, "2026-11-02") == []
    status, read, loaded, quarantined, by_reason, error, stored, _ = ledger_row(bronze_resources, DAY2_FILE)
    assert (status, read, loaded, quarantined, by_reason, stored) == (
        "errored",
        1,
        0,
        1,
        {"schema_frozen": 1},
        f"error/{DAY2_FILE}",
    )
    assert error == (
        f"schema_frozen: {DAY2_FILE}, record 2: new field $.mood (string) "
        "(the source's contract is freeze: nothing of the file is loaded)"
    )
    [(number, reason, detail, value_path, raw_text)] = quarantine(bronze_resources, "2026-11-02|x")
    assert (number, reason, value_path) == (None, "schema_frozen", None)
    assert detail == error.removeprefix("schema_frozen: ")
    assert raw_text == "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in DRIFTED)
    assert (bronze_resources["landing"].root_path / "error" / DAY2_FILE).exists()
    assert check(result, "accounted")[0] is True
    assert check(result, "schema_drift")[2]["files_refused"] == [DAY2_FILE]
    # Nothing of the refused file became known.
    assert known_types(bronze_resources, "$.mood") == []

    land(bronze_resources, DAY3, GOOD)
    good = load(bronze_resources, posts_asset("freeze"), DAY3)
    assert good.success
    assert bronze_rows(bronze_resources, "2026-11-03") == [(r["post_id"], r) for r in GOOD]
    assert ledger_row(bronze_resources, "social/posts/network=x/date=2026-11-03/part-0000.jsonl")[:4] == (
        "archived",
        2,
        2,
        0,
    )

    # Accepting the change: one run under `evolve` loads the refused file whole, and it moves to the archive.
    accepted = load(bronze_resources, posts_asset("freeze"), DAY2, contract="evolve", reload_all=True)
    assert accepted.success
    assert bronze_rows(bronze_resources, "2026-11-02") == [(r["post_id"], r) for r in DRIFTED]
    assert ledger_row(bronze_resources, DAY2_FILE)[:4] == ("archived", 6, 6, 0)
    assert quarantine(bronze_resources, "2026-11-02|x") == []
    assert (bronze_resources["landing"].root_path / "archive" / DAY2_FILE).exists()


def test_discard_row_quarantines_each_breaching_record_with_its_reason(bronze_resources):
    result = drifted_day(bronze_resources, "discard_row")

    assert result.success
    assert bronze_rows(bronze_resources, "2026-11-02") == [("p1", DRIFTED[0]), ("p6", DRIFTED[5])]
    raw = [json.dumps(r, ensure_ascii=False) for r in DRIFTED]
    assert [
        (n, reason, detail, path)
        for n, reason, detail, path, _ in quarantine(bronze_resources, "2026-11-02|x")
    ] == [
        (2, "new_field", "new field $.mood (string)", None),
        (3, "type_change", "$.likes is string, known as number", None),
        (4, "new_field", "new field $.media[*].duration (number)", None),
        (5, "type_change", "$.media[*].media_type is number, known as string", None),
    ]
    assert [json.loads(text) for *_, text in quarantine(bronze_resources, "2026-11-02|x")] == [
        json.loads(r) for r in raw[1:5]
    ]
    assert ledger_row(bronze_resources, DAY2_FILE)[:5] == (
        "archived",
        6,
        2,
        4,
        {"new_field": 2, "type_change": 2},
    )
    assert check(result, "accounted")[0] is True
    metadata = check(result, "schema_drift")[2]
    assert (metadata["contract"], metadata["rows_discarded"], metadata["values_discarded"]) == (
        "discard_row",
        4,
        0,
    )
    # What was discarded never became known: the same breach is discarded again the next day.
    assert known_types(bronze_resources, "$.likes") == ["null", "number"]
    land(bronze_resources, DAY3, [post("q1", mood="🙂")])
    assert load(bronze_resources, posts_asset("discard_row"), DAY3).success
    assert [reason for _, reason, *_ in quarantine(bronze_resources, "2026-11-03|x")] == ["new_field"]


def test_discard_value_loads_every_record_without_its_breaching_values(bronze_resources):
    result = drifted_day(bronze_resources, "discard_value")

    assert result.success
    p1, p2, p3, p4, p5, p6 = DRIFTED
    assert bronze_rows(bronze_resources, "2026-11-02") == [
        ("p1", p1),
        ("p2", {k: v for k, v in p2.items() if k != "mood"}),
        ("p3", {k: v for k, v in p3.items() if k != "likes"}),
        ("p4", {**p4, "media": [{"media_type": "video"}]}),
        ("p5", {**p5, "media": [{}]}),
        ("p6", p6),
    ]
    assert quarantine(bronze_resources, "2026-11-02|x") == [
        (2, "new_field", "new field $.mood (string)", "$.mood", '"😀"'),
        (3, "type_change", "$.likes is string, known as number", "$.likes", '"1.2K"'),
        (4, "new_field", "new field $.media[*].duration (number)", "$.media[*].duration", "12"),
        (5, "type_change", "$.media[*].media_type is number, known as string", "$.media[*].media_type", "3"),
    ]
    status, read, loaded, quarantined, by_reason, _, _, details = ledger_row(bronze_resources, DAY2_FILE)
    assert (status, read, loaded, quarantined, by_reason) == ("archived", 6, 6, 0, {})
    assert details["values_discarded"] == {"new_field": 2, "type_change": 2}
    assert check(result, "accounted")[0] is True
    metadata = check(result, "schema_drift")[2]
    assert (metadata["contract"], metadata["rows_discarded"], metadata["values_discarded"]) == (
        "discard_value",
        0,
        4,
    )
    assert known_types(bronze_resources, "$.media[*].media_type") == ["string"]


def test_a_ledger_from_before_paths_and_types_keeps_its_names_known(bronze_resources):
    with bronze_resources["postgres"].connect(autocommit=True) as conn:
        conn.execute(
            """CREATE SCHEMA ledger;
               CREATE TABLE ledger.source_fields (
                   source text NOT NULL, field text NOT NULL, first_load_id bigint NOT NULL,
                   last_load_id bigint NOT NULL, PRIMARY KEY (source, field));
               INSERT INTO ledger.source_fields VALUES
                   ('social_posts/x', 'post_id', 0, 0), ('social_posts/x', 'network', 0, 0),
                   ('social_posts/x', 'account_id', 0, 0), ('social_posts/x', 'like count', 0, 0)"""
        )
    land(bronze_resources, DAY1, BASELINE)

    result = load(bronze_resources, posts_asset("evolve"), DAY1)

    assert result.success
    metadata = check(result, "schema_drift")[2]
    assert (metadata["new_fields"], metadata["missing_fields"]) == (["likes", "media"], ["like count"])
    with bronze_resources["postgres"].connect() as conn:
        old = conn.execute(
            "SELECT field, path, json_type FROM ledger.source_fields WHERE first_load_id = 0 ORDER BY field"
        ).fetchall()
    assert old == [
        ("account_id", "$.account_id", "null"),
        ("like count", '$."like count"', "null"),
        ("network", "$.network", "null"),
        ("post_id", "$.post_id", "null"),
    ]


def test_a_frozen_cdc_table_takes_qlik_header_columns_and_refuses_a_new_column(bronze_resources):
    # cdc_brands is frozen by configuration: its change files add the header columns its entry declares to what
    # the first full load established; a column the operational table gained is refused until accepted.
    cdc = build_bronze_asset(SOURCES_BY_NAME["cdc_brands"])
    assert cdc.metadata_by_key[cdc.key]["schema_contract"] == "freeze"
    root = bronze_resources["landing"].root_path
    header = "header__change_seq,header__change_oper,header__timestamp,brand_id,name"
    files = {
        "cdc/brands/LOAD00000001.csv": "brand_id,name\nB1,Alpha\nB2,Beta\n",
        "cdc/brands__ct/20261101-100000000.csv": f"{header}\n1,U,2026-11-01T10:00:00,B1,Alpha Two\n",
        "cdc/brands__ct/20261101-110000000.csv": f"{header},tier\n2,U,2026-11-01T11:00:00,B2,Beta Two,gold\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
        assert dg.materialize([cdc], resources=bronze_resources).success

    with bronze_resources["postgres"].connect() as conn:
        names = conn.execute(
            "SELECT raw->>'name' FROM bronze.cdc_brands ORDER BY load_id, record_number"
        ).fetchall()
    assert [n for (n,) in names] == ["Alpha", "Beta", "Alpha Two"]
    assert [ledger_row(bronze_resources, name)[0] for name in files] == ["archived", "archived", "errored"]
    assert ledger_row(bronze_resources, "cdc/brands__ct/20261101-110000000.csv")[5] == (
        "schema_frozen: cdc/brands__ct/20261101-110000000.csv, record 1: new field $.tier (string) "
        "(the source's contract is freeze: nothing of the file is loaded)"
    )
