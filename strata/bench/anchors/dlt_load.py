"""Anchor: dlt 1.31 loading the posts into its postgres destination.

  --mode default  the dicts as they are, dlt's defaults: it infers the schema, flattens nested objects into
                  `parent__child` columns, turns nested lists into child tables and loads INSERT VALUES files;
  --mode fast     its documented fast path for postgres, tuned as its performance guide says: Arrow tables of
                  the flattened posts with `loader_file_format="csv"` (pyarrow writes CSV, loaded with COPY;
                  dlt's normalizer for Python objects is skipped), intermediary files rotated every 100,000
                  rows so that 2 normalize workers (the cores) and 4 load workers run side by side.

Timed: `pipeline.run` including reading the JSONL (and, for `fast`, building the Arrow tables).
"""

from __future__ import annotations

import argparse
import os

from common import Flattener, lines, now, quiet_dlt, report

quiet_dlt()

import dlt  # noqa: E402
import orjson  # noqa: E402
import pyarrow as pa  # noqa: E402

# dlt's configuration through its environment variables (section__key).
FAST_SETTINGS = {
    "DATA_WRITER__FILE_MAX_ITEMS": "100000",
    "DATA_WRITER__BUFFER_MAX_ITEMS": "100000",
    "NORMALIZE__WORKERS": "2",
    "LOAD__WORKERS": "4",
}
ARROW_TYPES = {
    "text": pa.string(),
    "json": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--plan", required=True)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--mode", choices=("default", "fast"), required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--pipelines-dir", required=True)
    args = parser.parse_args()
    pipeline = dlt.pipeline(
        pipeline_name=f"bench_{args.dataset}",
        destination=dlt.destinations.postgres(credentials=args.url),
        dataset_name=args.dataset,
        pipelines_dir=args.pipelines_dir,
    )
    if args.mode == "default":

        def posts():
            for line in lines(args.file, args.limit):
                yield orjson.loads(line)

        started = now()
        pipeline.run(posts(), table_name="posts")
    else:
        for name, value in FAST_SETTINGS.items():
            os.environ[name] = value
        flat = Flattener(args.plan)
        schema = pa.schema([(n, ARROW_TYPES[t]) for n, t in zip(flat.names, flat.types, strict=True)])

        def tables():
            for batch in flat.batches(args.file, args.limit):
                columns = list(zip(*batch, strict=True))
                yield pa.Table.from_arrays(
                    [
                        pa.array(column, type=field.type)
                        for column, field in zip(columns, schema, strict=True)
                    ],
                    schema=schema,
                )

        started = now()
        pipeline.run(tables(), table_name="posts", loader_file_format="csv")
    seconds = now() - started
    with pipeline.sql_client() as client:
        rows = client.execute_sql(f'SELECT count(*) FROM "{args.dataset}"."posts"')[0][0]  # noqa: S608 (bench names)
        tables = client.execute_sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s ORDER BY 1",
            args.dataset,
        )
    report(
        seconds=seconds,
        rows_in_table=rows,
        tables=[t[0] for t in tables if not t[0].startswith("_dlt")],
        dlt=dlt.__version__,
    )


if __name__ == "__main__":
    main()
