"""Silver and gold on the generator's sample drop: real Postgres, real dbt runs through real Dagster
materializations, results compared with the manifest exactly.

Bronze is loaded per source partition (as the sensor's runs would); the dbt assets then run once per
partitioning over the whole partition range (single-run backfill: the range becomes dbt vars).
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest
from psycopg import sql

from assets.bronze.factory import bronze_assets
from assets.bronze.sources import SOURCES_BY_NAME
from assets.transform.assets import scoped_environ
from assets.transform.env import dbt_env
from assets.transform.project import partial_parse_of, publish_partial_parse, reuse_partial_parse
from resources import PostgresResource
from tests.conftest import PII_SALT, Pipeline

REPO = Path(__file__).resolve().parents[1]
BRONZE = {a.key.path[-1]: a for a in bronze_assets}
SALT = PII_SALT
LAYERS = ("silver", "gold")


# -- fixtures --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(pipeline: Pipeline) -> dict:
    """The sample drop built through silver and gold (the session's pipeline, this module's copy)."""
    from assets.transform import dbt_assets

    return {
        "manifest": pipeline.manifest,
        "resources": pipeline.resources,
        "assets": {a.op.name: a for a in dbt_assets},
        "days": sorted(pipeline.manifest["sources"]["video_sessions"]["partitions"]),
    }


@pytest.fixture(scope="module")
def warehouse(pipeline: Pipeline) -> PostgresResource:
    return pipeline.postgres


def _rows(warehouse: PostgresResource, query: str, params=()) -> list[tuple]:
    with warehouse.connect() as conn:
        return conn.execute(query, params).fetchall()


# -- Dagster and dbt ------------------------------------------------------------------------------------


def test_every_dbt_test_is_an_asset_check_and_passes(pipeline: Pipeline):
    """Every dbt test, and the volume check of every partitioned model (too little history in the sample to judge
    by: they pass)."""
    from assets.transform import dbt_assets, defs

    dbt_checks = set()
    for run in pipeline.runs:
        assert run.success, run.label
        evaluations = [e for e in run.evaluations if e.asset.startswith(("silver/", "gold/"))]
        assert [(e.asset, e.check) for e in evaluations if not e.passed] == [], run.label
        dbt_checks |= {(e.asset, e.check) for e in evaluations}
    expected = {
        (key.asset_key.to_user_string(), key.name)
        for a in [*dbt_assets, *defs.asset_checks]
        for key in a.check_keys
    }
    assert dbt_checks == expected


def test_unit_tests_of_the_tricky_logic_and_every_gold_kpi_pass(built, warehouse):
    """dbt unit tests (hand-computed fixtures): count parsing, key drift, dedup order, media typing, CDC
    application (a reload among it), SCD2 and its inferred members, completion capping, and the arithmetic of every
    gold mart."""
    with scoped_environ(dbt_env(warehouse.url, SALT)):
        invocation = built["resources"]["dbt"].cli(
            ["test", "--select", "test_type:unit"], raise_on_error=False
        )
        invocation.wait()
    results = invocation.get_artifact("run_results.json")["results"]
    statuses = {r["unique_id"].rsplit(".", 1)[-1]: r["status"] for r in results}
    assert statuses and set(statuses.values()) == {"pass"}, statuses
    models = {name.split("_")[0] for name in statuses}
    assert len(statuses) == 19 and {"posts", "brands", "accounts", "account", "post", "creator"} <= models


def test_partitions_line_up_with_bronze_and_automation_follows_the_layer(transform):
    by_name = {a.op.name: a for a in transform.dbt_assets}
    assert by_name["dbt_date_network"].partitions_def == SOURCES_BY_NAME["social_posts"].partitions_def
    assert by_name["dbt_daily"].partitions_def == SOURCES_BY_NAME["tweets"].partitions_def
    assert by_name["dbt_unpartitioned"].partitions_def is None
    groups = {}
    for assets_def in transform.dbt_assets:
        for key, spec in assets_def.specs_by_key.items():
            assert key.path[0] in LAYERS and len(key.path) == 2
            assert spec.owners == ["team:data-platform"]
            assert set(spec.kinds) == {"dbt", "postgres"}
            # Partitioned models: eager; unpartitioned ones refresh on upstream updates (eager would wait for
            # every day of their partitioned upstream to exist).
            expected = "eager" if assets_def.partitions_def else "on upstream updates"
            assert spec.automation_condition.get_label() == expected, key
            groups[key.to_user_string()] = spec.group_name
    assert groups["silver/posts"] == "social" and groups["gold/viewing_completion"] == "video"
    assert (
        groups["silver/brands"] == "operational" and groups["gold/brand_mentions_daily"] == "brand_listening"
    )
    posts = by_name["dbt_date_network"].specs_by_key[dg.AssetKey(["silver", "posts"])]
    assert [d.asset_key for d in posts.deps] == [dg.AssetKey(["bronze", "social_posts"])]


def test_dbt_env_derives_the_profile_from_one_url():
    assert dbt_env("postgresql://app:s%40cret@db.example:6543/warehouse?sslmode=require") == {
        "STRATA_DBT_HOST": "db.example",
        "STRATA_DBT_PORT": "6543",
        "STRATA_DBT_USER": "app",
        "STRATA_DBT_PASSWORD": "s@cret",
        "STRATA_DBT_DBNAME": "warehouse",
    }
    socket = dbt_env("postgresql://postgres:@/strata?host=/tmp/pg")
    assert socket["STRATA_DBT_HOST"] == "/tmp/pg" and socket["STRATA_DBT_PORT"] == "5432"
    assert socket["STRATA_DBT_PASSWORD"] == ""
    assert "PGOPTIONS" not in socket


def test_dbt_env_gives_the_pii_salt_as_a_session_setting_escaped_for_libpq():
    env = dbt_env("postgresql://postgres:@/strata?host=/tmp/pg", pii_salt="a b\\c\td")
    assert env["PGOPTIONS"] == "-c strata.pii_salt=a\\ b\\\\c\\\td"


# -- silver against the manifest ------------------------------------------------------------------------


def test_posts_and_media_equal_the_manifest_per_partition(built, warehouse):
    manifest = built["manifest"]["sources"]["social_posts"]
    found = {
        f"{day}|{network}": row
        for day, network, *row in _rows(
            warehouse,
            """SELECT post_date::text, network, count(*), count(DISTINCT post_id), sum(likes), sum(comments),
                      sum(shares), sum(views), sum(media_items), count(*) FILTER (WHERE media_count_mismatch)
               FROM silver.posts GROUP BY 1, 2""",
        )
    }
    media = {
        f"{day}|{network}": (rows, inferred)
        for day, network, rows, inferred in _rows(
            warehouse,
            """SELECT post_date::text, network, count(*), count(*) FILTER (WHERE media_type_inferred)
               FROM silver.post_media GROUP BY 1, 2""",
        )
    }
    assert set(found) == set(manifest["partitions"])
    for key, partition in manifest["partitions"].items():
        expect = manifest["expect"]["partitions"][key]
        posts, distinct, likes, comments, shares, views, items, mismatches = found[key]
        assert posts == distinct == partition["distinct_keys"], key
        assert (likes, comments, shares, views) == (
            expect["likes"],
            expect["comments"],
            expect["shares"],
            expect["views"],
        ), key
        assert items == expect["media_rows"] and mismatches == expect["media_count_mismatches"], key
        assert media.get(key, (0, 0)) == (expect["media_rows"], expect["media_missing_type"]), key


def test_gold_engagement_sums_equal_the_deduplicated_posts(built, warehouse):
    expect = built["manifest"]["sources"]["social_posts"]["expect"]["partitions"]
    found = {
        f"{day}|{network}": tuple(int(v) for v in values)
        for day, network, *values in _rows(
            warehouse,
            """SELECT post_date::text, network, sum(likes), sum(comments), sum(shares), sum(views)
               FROM gold.account_daily_engagement GROUP BY 1, 2""",
        )
    }
    assert found == {k: (e["likes"], e["comments"], e["shares"], e["views"]) for k, e in expect.items()}
    (out_of_range,) = _rows(
        warehouse,
        """SELECT count(*) FROM gold.account_daily_engagement
           WHERE engagement_rate < 0 OR engagement_rate > 1 OR (views = 0) <> (engagement_rate IS NULL)""",
    )[0]
    assert out_of_range == 0
    leaders = _rows(
        warehouse,
        """SELECT count(DISTINCT (as_of_date, network)), count(*) FILTER (WHERE rank_7d = 1)
           FROM gold.creator_leaderboard""",
    )[0]
    assert leaders == (len(expect), len(expect))


def test_cdc_brands_equal_the_final_state_row_for_row(built, warehouse):
    expect = built["manifest"]["sources"]["cdc_brands"]["expect"]
    rows = _rows(
        warehouse,
        """SELECT brand_id, brand_name, category, country, is_active::text,
                  to_char(updated_at, 'YYYY-MM-DD HH24:MI:SS')
           FROM silver.brands ORDER BY brand_id""",
    )
    found = [
        {"brand_id": b, "name": n, "category": c, "country": co, "is_active": a, "updated_at": u}
        for b, n, c, co, a, u in rows
    ]
    assert found == expect["final_state"]
    keys = {row["brand_id"] for row in found}
    scripted = expect["scripted_keys"]
    assert scripted["deleted"] not in keys and scripted["tombstone"] not in keys
    assert scripted["deleted_reinserted"] in keys
    reload = expect["reload"]
    assert reload["deleted_while_capture_was_down"] not in keys
    assert reload["changed_while_capture_was_down"] in keys
    # The reload is in bronze whole: its rows unchanged since the first full load are not duplicates of it.
    in_bronze = _rows(
        warehouse, "SELECT count(*) FROM bronze.cdc_brands WHERE source_file = %s", (reload["path"],)
    )
    assert in_bronze == [(reload["rows"],)]


def test_accounts_scd2_versions_equal_the_manifest_changes(built, warehouse):
    expect = built["manifest"]["sources"]["social_accounts"]["expect"]
    versions = defaultdict(list)
    for account, valid_from, valid_to, current, handle, category, followers in _rows(
        warehouse,
        """SELECT account_id, valid_from, valid_to, is_current, handle, category, followers
           FROM silver.accounts ORDER BY account_id, valid_from""",
    ):
        versions[account].append((valid_from, valid_to, current, handle, category, followers))
    last_day = max(date.fromisoformat(d) for d in expect["accounts_per_date"])
    for account, change in expect["changes"].items():
        found = versions[account]
        assert [
            {"valid_from": v[0].isoformat(), "handle": v[3], "category": v[4], "followers": v[5]}
            for v in found
        ] == change["versions"], account
        ends = [v[0] for v in found[1:]] + [
            date.fromisoformat(change["disappeared_on"]) if "disappeared_on" in change else None
        ]
        assert [v[1] for v in found] == ends, account
        assert [v[2] for v in found] == [False] * (len(found) - 1) + ["disappeared_on" not in change], account
    unchanged = [a for a in versions if a not in expect["changes"]]
    assert unchanged and all(len(versions[a]) == 1 and versions[a][0][2] for a in unchanged)
    current = _rows(warehouse, "SELECT count(*) FROM silver.accounts WHERE is_current")[0][0]
    assert current == expect["accounts_per_date"][last_day.isoformat()]


def test_campaigns_are_the_latest_document_versions(built, warehouse):
    expect = built["manifest"]["sources"]["mongo_campaigns"]["expect"]["docs"]
    found = {
        campaign: {"status": status, "updated_at": updated.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        for campaign, status, updated in _rows(
            warehouse, "SELECT campaign_id, status, updated_at FROM silver.campaigns"
        )
    }
    assert found == expect


def test_ad_spend_per_day_equals_the_vendor_files_named_by_date(built, warehouse):
    expect = built["manifest"]["sources"]["dmap_ad_spend"]["expect"]["spend_usd_per_day"]
    found = _rows(
        warehouse, "SELECT spend_date::text, sum(spend_usd)::text FROM silver.ad_spend GROUP BY 1 ORDER BY 1"
    )
    assert dict(found) == expect


def test_playback_counts_each_streamed_event_once_on_its_own_day(built, warehouse):
    expect = built["manifest"]["sources"]["video_playback"]["expect"]["per_day"]
    found = _rows(
        warehouse,
        """SELECT event_date::text, sum(events), sum(sessions_started), sum(sessions_completed),
                  (SELECT count(DISTINCT user_id) FROM silver.playback_events s WHERE s.event_date = g.event_date)
           FROM gold.content_playback g GROUP BY event_date ORDER BY 1""",
    )
    assert {day: tuple(counts) for day, *counts in found} == {
        day: (t["events"], t["starts"], t["completes"], t["viewers"]) for day, t in expect.items()
    }


def test_tweets_ambassadors_and_video_equal_the_manifest(built, warehouse):
    sources = built["manifest"]["sources"]
    tweets = sum(p["distinct_keys"] for p in sources["tweets"]["partitions"].values())
    assert _rows(warehouse, "SELECT count(*), count(*) FILTER (WHERE is_retweet) FROM silver.tweets")[0] == (
        tweets,
        sources["tweets"]["expect"]["retweeted"],
    )
    ambassadors = sources["ambassadors"]["expect"]
    assert _rows(
        warehouse,
        """SELECT (SELECT count(*) FROM silver.ambassadors), (SELECT count(*) FROM silver.ambassador_programs),
                  (SELECT count(*) FROM silver.ambassador_tasks),
                  (SELECT sum(sales_attributed)::text FROM silver.ambassador_programs),
                  (SELECT sum(tasks) FROM gold.ambassador_program_performance),
                  (SELECT sum(sales_attributed)::text FROM gold.ambassador_program_performance)""",
    )[0] == (
        ambassadors["ambassadors"],
        ambassadors["programs"],
        ambassadors["tasks"],
        ambassadors["total_sales_attributed"],
        ambassadors["tasks"],
        ambassadors["total_sales_attributed"],
    )
    sessions = sum(p["distinct_keys"] for p in sources["video_sessions"]["partitions"].values())
    assert _rows(
        warehouse,
        """SELECT (SELECT count(*) FROM silver.video_users), (SELECT count(*) FROM silver.video_content),
                  (SELECT count(*) FROM silver.video_sessions),
                  (SELECT count(*) FROM silver.video_sessions WHERE completion_capped),
                  (SELECT max(completion_rate) FROM silver.video_sessions),
                  (SELECT sum(sessions) FROM gold.viewing_completion),
                  (SELECT sum(capped_sessions) FROM gold.content_performance)""",
    )[0] == (
        sources["video_users"]["expect"]["users"],
        sources["video_content"]["expect"]["content"],
        sessions,
        sources["video_sessions"]["expect"]["completion_over_100"],
        1.0,
        sessions,
        sources["video_sessions"]["expect"]["completion_over_100"],
    )
    mentions = _rows(warehouse, "SELECT count(*), sum(mentions) FROM gold.brand_mentions_daily")[0]
    assert mentions[0] > 0 and mentions[1] >= tweets  # every generated tweet tags a brand


# -- invariants -----------------------------------------------------------------------------------------


def layer_checksums(warehouse: PostgresResource) -> dict[str, str]:
    sums = {}
    with warehouse.connect() as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema = ANY(%s) AND table_type = 'BASE TABLE' ORDER BY 1, 2",
            (list(LAYERS),),
        ).fetchall()
        for schema, name in tables:
            query = sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} t"
            ).format(sql.Identifier(schema, name))
            sums[f"{schema}.{name}"] = conn.execute(query).fetchone()
    return sums


def test_rerunning_partitions_leaves_every_silver_and_gold_table_unchanged(built, warehouse):
    before = layer_checksums(warehouse)
    models = sum(len(assets_def.keys) for assets_def in built["assets"].values())
    assert len(before) == models and all(count for count, _ in before.values())
    assets, resources, days = built["assets"], built["resources"], built["days"]
    rerun = [
        dg.materialize([assets["dbt_date_network"]], partition_key=f"{days[3]}|tiktok", resources=resources),
        dg.materialize([assets["dbt_daily"]], partition_key=days[2], resources=resources),
        dg.materialize([assets["dbt_unpartitioned"]], resources=resources),
    ]
    assert all(result.success for result in rerun)
    assert layer_checksums(warehouse) == before


def test_no_raw_name_or_email_reaches_silver_or_gold(built, warehouse):
    with warehouse.connect() as conn:
        conn.execute(
            """CREATE TEMP TABLE pii AS
               SELECT DISTINCT value FROM (
                   SELECT raw ->> 'name' AS value FROM bronze.ambassadors
                   UNION ALL SELECT raw ->> 'email' FROM bronze.ambassadors
                   UNION ALL SELECT raw ->> 'name' FROM bronze.video_users
                   UNION ALL SELECT raw ->> 'email' FROM bronze.video_users
                   UNION ALL SELECT raw #>> '{user,name}' FROM bronze.tweets
                   UNION ALL SELECT raw ->> 'display_name' FROM bronze.social_accounts
                   UNION ALL SELECT c ->> 'name' FROM bronze.video_content, jsonb_array_elements(raw -> 'credits') c
               ) v WHERE length(value) > 3"""
        )
        assert conn.execute("SELECT count(*) FROM pii WHERE value LIKE '%@%'").fetchone()[0] > 500
        columns = conn.execute(
            """SELECT table_schema, table_name, column_name FROM information_schema.columns
               WHERE table_schema = ANY(%s) AND data_type IN ('text', 'character varying', 'jsonb', 'ARRAY')""",
            (list(LAYERS),),
        ).fetchall()
        assert len(columns) > 30
        leaks = []
        for schema, table, column in columns:
            query = sql.SQL(
                "SELECT pii.value FROM (SELECT DISTINCT {col}::text AS v FROM {tbl}) t "
                "JOIN pii ON strpos(t.v, pii.value) > 0 LIMIT 1"
            ).format(col=sql.Identifier(column), tbl=sql.Identifier(schema, table))
            leaked = conn.execute(query).fetchone()
            if leaked:
                leaks.append((schema, table, column, leaked[0]))
    assert leaks == []


def test_pii_hashes_use_the_salt(built, warehouse):
    import hashlib

    email = _rows(warehouse, "SELECT raw ->> 'email' FROM bronze.video_users WHERE user_id = 'usr_0000000'")[
        0
    ][0]
    found = _rows(warehouse, "SELECT email_hash FROM silver.video_users WHERE user_id = 'usr_0000000'")[0][0]
    assert found == hashlib.sha256((SALT + email.strip().lower()).encode()).hexdigest()
    assert found != hashlib.sha256(email.strip().lower().encode()).hexdigest()


def test_the_pii_salt_never_rests_in_sql_or_parse_state(built):
    """The salt hashes in Postgres from the session setting: neither the SQL dbt compiles (left in target/ by a
    killed run, logged by a server logging statements) nor dbt's partial-parse state holds it."""
    environment = dbt_env(built["resources"]["postgres"].url, SALT)
    with scoped_environ(environment):
        invocation = built["resources"]["dbt"].cli(["compile", "--select", "video_users"])
        invocation.wait()
    compiled = next(invocation.target_path.rglob("compiled/**/video_users.sql")).read_text()
    assert "current_setting('strata.pii_salt')" in compiled
    # The invocation's own parse state, which is the one kept for its warehouse (assets.transform.project).
    parse_states = [(invocation.target_path / "partial_parse.msgpack").read_bytes()]
    assert SALT not in compiled and all(SALT.encode() not in state for state in parse_states)


def test_a_full_refresh_rebuilds_an_incremental_model_from_all_of_bronze(built):
    """A row no bronze record produces (a session copied by hand) survives a partition run, which only
    replaces its window; `full_refresh` in the run config rebuilds the table from every bronze partition."""
    warehouse = built["resources"]["postgres"]
    everything = "SELECT * FROM silver.video_sessions s ORDER BY s::text"
    before = _rows(warehouse, everything)
    with warehouse.connect() as conn:
        conn.execute(
            "INSERT INTO silver.video_sessions SELECT * FROM silver.video_sessions WHERE session_date > %s LIMIT 1",
            (built["days"][0],),
        )
    sessions = dg.AssetSelection.assets(dg.AssetKey(["silver", "video_sessions"]))

    def build(full_refresh: bool) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            [built["assets"]["dbt_daily"]],
            selection=sessions,
            partition_key=built["days"][0],
            resources=built["resources"],
            run_config=dg.RunConfig(ops={"dbt_daily": {"config": {"full_refresh": full_refresh}}}),
            raise_on_error=False,
        )

    partition_run = build(full_refresh=False)
    after_partition_run = len(_rows(warehouse, everything))
    full_refresh = build(full_refresh=True)

    assert partition_run.all_node_events and after_partition_run == len(before) + 1
    assert full_refresh.success and _rows(warehouse, everything) == before


def test_each_warehouse_keeps_its_parse_state_so_dbt_parses_the_project_once_per_warehouse(built):
    """dbt hashes the connection into its parse state and parses the whole project again when it differs: two
    warehouses built in turn each start from their own kept state, as the dbt assets' builds do."""
    url = built["resources"]["postgres"].url
    first, other = dbt_env(url, SALT), dbt_env(url.rsplit("/", 1)[0] + "/postgres", SALT)

    def parse(environment: dict[str, str]) -> str:
        target = partial_parse_of(environment).parent.parent / f"test-parse-{uuid.uuid4().hex[:7]}"
        try:
            reuse_partial_parse(target, environment)
            with scoped_environ(environment):
                built["resources"]["dbt"].cli(["parse"], target_path=target).wait()
            publish_partial_parse(target, environment)
            return (target / "dbt.log").read_text()
        finally:
            shutil.rmtree(target, ignore_errors=True)

    parse(first)
    parse(other)
    again = parse(first)

    assert "Unable to do partial parsing" not in again


def test_source_freshness_judges_each_bronze_table_by_its_newest_row_against_the_declared_windows(
    built, warehouse, transform
):
    from assets.transform.source_freshness import CHECK, source_freshness

    aged = {"dmap_ad_spend": 30, "tweets": 5}  # hours; sources.yml: WARN after 4 h, error after 24 h

    def shift(sign: int) -> None:
        with warehouse.connect(autocommit=True) as conn, conn.transaction():
            for table, hours in aged.items():
                conn.execute(
                    sql.SQL("UPDATE {} SET ingested_at = ingested_at + make_interval(hours => %s)").format(
                        sql.Identifier("bronze", table)
                    ),
                    (sign * hours,),
                )

    shift(-1)
    try:
        result = dg.materialize(
            [source_freshness], resources={"dbt": transform.dbt_resource(PII_SALT), "postgres": warehouse}
        )
    finally:
        shift(+1)

    statuses = dict(_rows(warehouse, "SELECT asset_key, status FROM gold.source_freshness"))
    # Every file source and the Mongo extraction; a pulled source, empty where it is not configured, is not judged.
    judged = [s for s in SOURCES_BY_NAME.values() if s.pulled_by is None]
    assert len(statuses) == len(judged) + 1
    assert (statuses.pop("bronze/dmap_ad_spend"), statuses.pop("bronze/tweets")) == ("error", "warn")
    assert set(statuses.values()) == {"pass"}
    [check] = result.get_asset_check_evaluations()
    verdict = {name: value.value for name, value in check.metadata.items()}
    assert (check.check_name, check.passed, check.severity.value) == (CHECK, False, "ERROR")
    assert (verdict["past_error_after"], verdict["past_warn_after"]) == (
        ["bronze/dmap_ad_spend"],
        ["bronze/tweets"],
    )


def test_the_media_count_mismatch_rate_is_measured_per_network_and_day_and_warns_above_ten_percent(
    built, warehouse
):
    manifest = built["manifest"]["sources"]["social_posts"]
    rates = {
        f"{day}|{network}": (posts, mismatches, rate)
        for day, network, posts, mismatches, rate in _rows(
            warehouse,
            "SELECT post_date::text, network, posts, media_count_mismatches, mismatch_rate "
            "FROM gold.post_media_quality",
        )
    }
    assert rates == {
        key: (
            part["distinct_keys"],
            expect["media_count_mismatches"],
            expect["media_count_mismatches"] / part["distinct_keys"],
        )
        for key, part in manifest["partitions"].items()
        for expect in [manifest["expect"]["partitions"][key]]
        if part["distinct_keys"]
    }

    # A scraper miscounts a fifth of one day's x posts: the day's rate goes past 10 % and its check WARNs.
    key, day = "2026-11-03|x", date(2026, 11, 3)
    posts, _, _ = rates[key]
    flagged = """UPDATE silver.posts SET media_count_mismatch = true
                 WHERE (post_date, network, post_id) IN (
                     SELECT post_date, network, post_id FROM silver.posts
                     WHERE post_date = %s AND network = 'x' AND NOT media_count_mismatch
                     ORDER BY post_id LIMIT %s)"""
    rebuild = built["assets"]["dbt_date_network"]
    gold = dg.AssetKey(["gold", "post_media_quality"])
    with warehouse.connect(autocommit=True) as conn:
        conn.execute(flagged, (day, posts // 5))
    try:
        result = dg.materialize([rebuild], partition_key=key, selection=[gold], resources=built["resources"])
        evaluations = result.get_asset_check_evaluations()
        warned = {e.check_name: (e.passed, e.severity.value) for e in evaluations}
        (rate,) = _rows(
            warehouse,
            "SELECT mismatch_rate FROM gold.post_media_quality WHERE post_date = %s AND network = 'x'",
            (day,),
        )[0]
        # The failing row is kept where the check's metadata says, as many as it counted.
        failing = next(e.metadata for e in evaluations if not e.passed)
        kept = _rows(
            warehouse,
            sql.SQL("SELECT post_date, network, mismatch_rate FROM {}").format(
                sql.Identifier(*failing["dq_failures_table"].value.split("."))
            ),
        )
    finally:
        with warehouse.connect(autocommit=True) as conn:
            conn.execute(
                "UPDATE silver.posts SET media_count_mismatch = (media_count IS DISTINCT FROM media_items) "
                "WHERE post_date = %s AND network = 'x'",
                (day,),
            )
        dg.materialize([rebuild], partition_key=key, selection=[gold], resources=built["resources"])

    assert rate > 0.10
    assert warned["media_count_mismatch_rate_under_10_percent"] == (False, "WARN")
    assert failing["dq_failures_table"].value.startswith("dq_failures.")
    assert failing["dagster_dbt/failed_row_count"].value == len(kept) == 1
    assert kept == [(day, "x", rate)]
    assert {name: verdict for name, verdict in warned.items() if not verdict[0]} == {
        "media_count_mismatch_rate_under_10_percent": (False, "WARN")
    }


def test_image_labels_keep_the_newest_model_per_media_and_flag_unknown_media(built, warehouse):
    expect = built["manifest"]["sources"]["image_labels"]["expect"]
    (labels, unknown, versions) = _rows(
        warehouse,
        """SELECT count(*), count(*) FILTER (WHERE NOT media_known),
                  (SELECT count(*) FROM (SELECT 1 FROM silver.image_labels
                                         GROUP BY network, post_id, media_index HAVING count(DISTINCT model_version) > 1) m)
           FROM silver.image_labels""",
    )[0]
    relabelled = _rows(
        warehouse,
        """SELECT count(DISTINCT (network, post_id, media_index)) FROM silver.image_labels
           WHERE model_version = '2.10.0'""",
    )[0][0]
    assert (labels, unknown, versions) == (expect["latest_labels"], expect["labels_for_unknown_media"], 0)
    assert relabelled == expect["relabelled_media"] > 0


def test_visual_topics_rank_each_network_and_days_labels_by_the_interactions_of_their_posts(built, warehouse):
    expect = built["manifest"]["sources"]["image_labels"]["expect"]
    top = _rows(
        warehouse,
        "SELECT post_date::text || '|' || network, label FROM gold.visual_topics_daily WHERE topic_rank = 1",
    )
    assert dict(top) == expect["top_label"]
    with_label = _rows(
        warehouse, "SELECT label, count(*) FROM silver.content_documents, unnest(labels) AS label GROUP BY 1"
    )
    assert dict(with_label) == expect["posts_by_label"]


def test_posts_of_an_account_no_snapshot_shows_yet_reach_gold_under_an_inferred_member_then_its_own(
    built, warehouse
):
    """Late-arriving dimension: two posts name an account before any accounts snapshot does. Nothing stops: silver
    and gold take the posts, accounts holds an inferred member (a WARN check counts it); when the account's
    snapshot lands, the member becomes the account the snapshot describes, and gold keeps the posts under it."""
    landing = Path(built["resources"]["landing"].root)
    key, account = "2026-11-04|x", "x_late_account"
    posts = [
        {
            "post_id": f"x_late_{number}",
            "network": "x",
            "account_id": account,
            "created_at": "2026-11-04T10:00:00Z",
            "text": "Our new season kit is here #matchday",
            "hashtags": ["matchday"],
            "media_count": 0,
            "media": [],
            "scraped_at": scraped,
            "like_count": likes,
            "comment_count": 1,
            "retweet_count": 2,
            "view_count": 100,
        }
        for number, scraped, likes in ((1, "2026-11-05T08:00:00Z", 5), (2, "2026-11-05T07:00:00Z", 7))
    ]
    posts_file = landing / "social/posts/network=x/date=2026-11-04/late-account.jsonl"
    posts_file.parent.mkdir(parents=True, exist_ok=True)
    posts_file.write_text("".join(json.dumps(post) + "\n" for post in posts))
    resources = built["resources"]
    partitioned, unpartitioned = built["assets"]["dbt_date_network"], built["assets"]["dbt_unpartitioned"]

    def accounts_checks() -> dict[str, tuple[bool, str]]:
        result = dg.materialize([unpartitioned], resources=resources, raise_on_error=False)
        assert result.success
        return {
            e.check_name: (e.passed, e.severity.value)
            for e in result.get_asset_check_evaluations()
            if e.asset_key == dg.AssetKey(["silver", "accounts"])
        }

    def account_row() -> tuple:
        return _rows(
            warehouse,
            "SELECT is_inferred, network, handle, followers, version_number, valid_from::text, is_current, "
            "first_seen_at FROM silver.accounts WHERE account_id = %s",
            (account,),
        )

    def gold_row() -> list[tuple]:
        return _rows(
            warehouse,
            "SELECT posts, likes, comments, shares, views FROM gold.account_daily_engagement "
            "WHERE post_date = '2026-11-04' AND network = 'x' AND account_id = %s",
            (account,),
        )

    dg.materialize([BRONZE["social_posts"]], partition_key=key, resources=resources)
    facts = dg.materialize([partitioned], partition_key=key, resources=resources, raise_on_error=False)
    before_snapshot = accounts_checks()
    inferred, gold_inferred = account_row(), gold_row()

    snapshot = landing / "social/accounts/date=2026-11-07/late-account.csv"
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    snapshot.write_text(
        "account_id,network,handle,display_name,category,followers,following,created_at\n"
        f"{account},x,late.account,Late Account,sports,321,12,2026-10-01T00:00:00Z\n"
    )
    dg.materialize([BRONZE["social_accounts"]], partition_key="2026-11-07", resources=resources)
    after_snapshot = accounts_checks()

    assert facts.success and [e for e in facts.get_asset_check_evaluations() if not e.passed] == []
    assert inferred == [(True, "x", None, None, 0, "2026-11-05", True, datetime(2026, 11, 5, 7, tzinfo=UTC))]
    assert gold_inferred == [(2, 12, 2, 4, 200)]
    assert before_snapshot["accounts_inferred_from_posts"] == (False, "WARN")
    assert {name: passed for name, (passed, _) in before_snapshot.items() if not passed} == {
        "accounts_inferred_from_posts": False
    }
    assert account_row() == [(False, "x", "late.account", 321, 1, "2026-11-07", True, None)]
    assert gold_row() == gold_inferred
    assert all(passed for passed, _ in after_snapshot.values())


# -- row rules (meta.row_rules: macros/row_rules.sql) ---------------------------------------------------------


def _materialization_metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    return {name: value.value for name, value in event.materialization.metadata.items()}


def test_account_rows_breaking_a_drop_rule_are_set_aside_with_their_rule_and_the_rest_is_built(
    built, warehouse
):
    """A sender's accounts CSV holds free text in `network` for two accounts and an unreadable follower count for a
    third. The two never become accounts: they are in dq_failures.account_snapshots under network_is_known with
    their load and file; the third is kept and warned about; every check passes and the materialization counts
    each rule. A rebuild records the same verdicts once, not twice."""
    landing = Path(built["resources"]["landing"].root)
    bad = landing / "social/accounts/date=2026-11-06/partner-upload.csv"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text(
        "account_id,network,handle,display_name,category,followers,following,created_at\n"
        "x_free_text_1,Insta gram,free.one,Free One,music,10,1,2026-10-01T00:00:00Z\n"
        "x_free_text_2,see bio!!,free.two,Free Two,music,20,1,2026-10-01T00:00:00Z\n"
        "x_unknown_followers,x,unknown.f,Unknown F,music,lots,1,2026-10-01T00:00:00Z\n"
    )
    resources = built["resources"]
    loaded = dg.materialize([BRONZE["social_accounts"]], partition_key="2026-11-06", resources=resources)
    ((load_id,),) = _rows(
        warehouse, "SELECT load_id FROM ledger.loads WHERE path LIKE %s", ("%partner-upload.csv",)
    )
    first = dg.materialize([built["assets"]["dbt_unpartitioned"]], resources=resources, raise_on_error=False)
    second = dg.materialize([built["assets"]["dbt_unpartitioned"]], resources=resources, raise_on_error=False)

    dropped = _rows(
        warehouse,
        """SELECT rule, action, load_id, "row" ->> 'account_id', "row" ->> 'network', "row" ->> 'source_file'
           FROM dq_failures.account_snapshots WHERE action = 'drop' ORDER BY 4""",
    )
    warned = _rows(
        warehouse,
        """SELECT "row" ->> 'account_id', ("row" ->> 'snapshot_date')::date FROM dq_failures.account_snapshots
           WHERE rule = 'followers_parsed' AND action = 'warn' ORDER BY 1, 2""",
    )
    unparsed = _rows(
        warehouse,
        "SELECT account_id, snapshot_date FROM silver.account_snapshots WHERE followers IS NULL ORDER BY 1, 2",
    )
    in_silver = _rows(
        warehouse,
        """SELECT DISTINCT account_id FROM silver.accounts
           WHERE account_id IN ('x_free_text_1', 'x_free_text_2', 'x_unknown_followers')
           UNION SELECT account_id FROM silver.account_snapshots
           WHERE account_id IN ('x_free_text_1', 'x_free_text_2')""",
    )
    path = "social/accounts/date=2026-11-06/partner-upload.csv"

    assert loaded.success and first.success and second.success
    assert [
        e.check_name
        for e in second.get_asset_check_evaluations()
        if not e.passed and e.severity.value == "ERROR"
    ] == []
    assert dropped == [
        ("network_is_known", "drop", load_id, "x_free_text_1", "Insta gram", path),
        ("network_is_known", "drop", load_id, "x_free_text_2", "see bio!!", path),
    ]
    assert ("x_unknown_followers", date(2026, 11, 6)) in warned and warned == unparsed
    assert in_silver == [("x_unknown_followers",)]
    metadata = _materialization_metadata(second, "silver/account_snapshots")
    assert {name: value for name, value in metadata.items() if "rule" in name} == {
        "row_rules/network_is_known (drop)": 2,
        "row_rules/followers_parsed (warn)": len(unparsed),
        "rows_dropped_by_rules": 2,
        "row_rules_table": "dq_failures.account_snapshots",
    }


def test_a_post_breaking_a_fail_rule_fails_its_build_and_leaves_the_partition_as_it_was(built, warehouse):
    """A post without its id reaches bronze (as a broken loader would write it): the fail rule post_id_present
    stops the build of silver/posts for that partition, naming the rule; the partition keeps its previous rows.
    Once the row is gone, the partition builds again."""
    key = "2026-11-02|youtube"
    partitioned = built["assets"]["dbt_date_network"]
    posts = "SELECT md5(string_agg(p::text, '|' ORDER BY p::text)) FROM silver.posts p WHERE post_date = '2026-11-02' AND network = 'youtube'"
    before = _rows(warehouse, posts)
    with warehouse.connect() as conn:
        conn.execute(
            """INSERT INTO bronze.social_posts (partition_date, partition_network, post_id, network, account_id,
                                                 created_at, scraped_at, load_id, source_file, record_number,
                                                 record_hash, raw)
               SELECT partition_date, partition_network, NULL, network, account_id, created_at, scraped_at,
                      load_id, source_file, -1, record_hash, raw - 'post_id'
               FROM bronze.social_posts WHERE partition_date = '2026-11-02' AND partition_network = 'youtube'
               LIMIT 1"""
        )
    broken = dg.materialize(
        [partitioned], partition_key=key, resources=built["resources"], raise_on_error=False
    )
    after = _rows(warehouse, posts)
    with warehouse.connect() as conn:
        conn.execute("DELETE FROM bronze.social_posts WHERE record_number = -1")
    mended = dg.materialize(
        [partitioned], partition_key=key, resources=built["resources"], raise_on_error=False
    )

    (failure,) = broken.get_step_failure_events()
    assert "row rule post_id_present (fail) of posts: 1 rows break it (post_id is not null)" in (
        failure.step_failure_data.error.to_string()
    )
    assert after == before
    assert mended.success
