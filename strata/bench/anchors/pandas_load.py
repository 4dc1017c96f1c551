"""Anchor: pandas `DataFrame.to_sql` of the flattened posts.

  --method multi  multi-row INSERTs through `--driver` psycopg (3) or psycopg2, with the largest chunksize
                  psycopg 3 accepts (it binds at most 65,535 parameters per statement: chunksize × columns ≤
                  65,535), the same for both drivers;
  --method copy   the COPY `method` of the pandas documentation (CSV through psycopg2's copy_expert).

Timed: reading the JSONL, building DataFrames, creating the table and every insert, until committed.
"""

from __future__ import annotations

import argparse
import csv
import io

import pandas as pd
import sqlalchemy as sa
from common import BATCH, Flattener, now, report
from psycopg2 import sql

MAX_PARAMETERS = 65_535
SQL_TYPES = {
    "text": sa.Text(),
    "json": sa.Text(),
    "int": sa.BigInteger(),
    "float": sa.Float(precision=53),
    "bool": sa.Boolean(),
}
PANDAS_TYPES = {"int": "Int64", "bool": "boolean"}


def copy_method(table, conn, keys, data_iter):
    """The pandas docs' `psql_insert_copy`: one CSV COPY per chunk."""
    dbapi_conn = conn.connection
    with dbapi_conn.cursor() as cur:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(data_iter)
        buffer.seek(0)
        # Column names come from the data's keys: quoted as identifiers, never formatted in.
        name = sql.Identifier(table.schema, table.name) if table.schema else sql.Identifier(table.name)
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH CSV").format(
            name, sql.SQL(", ").join(map(sql.Identifier, keys))
        )
        cur.copy_expert(sql=statement.as_string(cur), file=buffer)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="postgresql://user@host:port/db")
    parser.add_argument("--file", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--method", choices=("multi", "copy"), required=True)
    parser.add_argument("--driver", choices=("psycopg", "psycopg2"), default="psycopg2")
    parser.add_argument("--schema", default="anchors")
    parser.add_argument("--table", required=True)
    args = parser.parse_args()
    flat = Flattener(args.plan)
    # The COPY method is psycopg2's copy_expert.
    driver = args.driver if args.method == "multi" else "psycopg2"
    engine = sa.create_engine(args.url.replace("postgresql://", f"postgresql+{driver}://", 1))
    dtype = {name: SQL_TYPES[t] for name, t in zip(flat.names, flat.types, strict=True)}
    chunksize = MAX_PARAMETERS // len(flat.names) if args.method == "multi" else None
    method = "multi" if args.method == "multi" else copy_method
    with engine.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{args.schema}"')
        conn.exec_driver_sql(f'DROP TABLE IF EXISTS "{args.schema}"."{args.table}"')
    started = now()
    created = False
    with engine.begin() as conn:
        for batch in flat.batches(args.file, args.limit, BATCH):
            frame = pd.DataFrame(batch, columns=flat.names)
            for name, t in zip(flat.names, flat.types, strict=True):
                if t in PANDAS_TYPES:
                    frame[name] = frame[name].astype(PANDAS_TYPES[t])
            frame.to_sql(
                args.table,
                conn,
                schema=args.schema,
                if_exists="append" if created else "replace",
                index=False,
                dtype=dtype,
                method=method,
                chunksize=chunksize,
            )
            created = True
    seconds = now() - started
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(f'SELECT count(*) FROM "{args.schema}"."{args.table}"').scalar()  # noqa: S608
    report(
        seconds=seconds,
        rows_in_table=rows,
        columns=len(flat.names),
        chunksize=chunksize,
        driver=driver,
        pandas=pd.__version__,
    )


if __name__ == "__main__":
    main()
