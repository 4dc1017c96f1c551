"""Row volume against recent history, judged one way for every partitioned table: bronze's sources and the
partitioned dbt models.

A partition's rows are judged against the same weekday (and network) over HISTORY_WEEKS weeks before it, once at
least MIN_HISTORY of those partitions have rows; the range is the median ± K robust deviations (1.4826 × MAD, at
least FLOOR of the median, so a flat history does not flag every small change). Outside it: WARN; no rows where
that history has rows: ERROR. Eight numbers: the standard library's median, not a pandas import (2.4–2.9 s) in
every load's and every dbt build's process.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import dagster as dg
import psycopg
from psycopg import sql

CHECK_NAME = "volume_in_recent_range"
HISTORY_WEEKS = 8
MIN_HISTORY = 3
K = 4.0
FLOOR = 0.1
DESCRIPTION = (
    f"The partition's rows stay within median ± {K:g} robust deviations of the same weekday over the "
    f"{HISTORY_WEEKS} weeks before it (WARN); none where that history has rows is an ERROR."
)


def partition_volume(
    conn: psycopg.Connection, table: sql.Composable, columns: Sequence[str], values: Sequence[object]
) -> dg.AssetCheckResult:
    """The rows of one partition of `table` against its history. `columns` name the partition's date column and,
    for a date × network table, its network column; `values` are the partition's values in the same order."""
    date_column, *network_column = columns
    day, *network = values
    same_network = (
        sql.SQL(" AND {} = %s").format(sql.Identifier(network_column[0])) if network_column else sql.SQL("")
    )
    history = [
        count
        for (count,) in conn.execute(
            sql.SQL(
                """SELECT count(*) FROM {table}
                   WHERE {day} IN (SELECT (%s::date - 7 * w) FROM generate_series(1, %s) AS w){network}
                   GROUP BY {day}"""
            ).format(table=table, day=sql.Identifier(date_column), network=same_network),
            (day, HISTORY_WEEKS, *network),
        )
    ]
    where = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in columns)
    (rows,) = conn.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE {}").format(table, where), values
    ).fetchone()
    return _judge(rows, history)


def _judge(rows: int, history: Sequence[int]) -> dg.AssetCheckResult:
    """The verdict on `rows` given the row counts of the same weekday's earlier partitions that have rows."""
    metadata = {"rows": rows, "history_partitions": len(history)}
    if len(history) < MIN_HISTORY:
        metadata["note"] = f"fewer than {MIN_HISTORY} earlier partitions of this weekday: nothing to judge by"
        return dg.AssetCheckResult(
            check_name=CHECK_NAME, passed=True, severity=dg.AssetCheckSeverity.WARN, metadata=metadata
        )
    median = float(statistics.median(history))
    spread = max(1.4826 * statistics.median(abs(count - median) for count in history), FLOOR * median)
    low, high = max(median - K * spread, 0.0), median + K * spread
    empty = rows == 0 and median > 0
    metadata |= {
        "expected_low": dg.MetadataValue.float(round(low, 1)),
        "expected_high": dg.MetadataValue.float(round(high, 1)),
        "history_median": dg.MetadataValue.float(median),
    }
    return dg.AssetCheckResult(
        check_name=CHECK_NAME,
        passed=low <= rows <= high,
        severity=dg.AssetCheckSeverity.ERROR if empty else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )
