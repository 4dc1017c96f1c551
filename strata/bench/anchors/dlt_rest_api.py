"""Anchor: dlt 1.31's `rest_api` source reading the local X API v2 recent search into its postgres destination.

The same endpoint, window, query and page size as landing/x_recent_search: a bearer token, `meta.next_token`
followed as a cursor, the tweets under `data` (dlt flattens them into `tweets`, with child tables for their
lists). `--loader-file-format` picks dlt's load path: `insert_values` (its default) or `csv` (COPY).

Timed: `pipeline.run`, from the first request to the last row committed.
"""

from __future__ import annotations

import argparse
import os

from common import now, quiet_dlt, report

quiet_dlt()

import dlt  # noqa: E402
from dlt.sources.rest_api import rest_api_source  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="Postgres")
    parser.add_argument("--api", required=True, help="the API's base URL")
    parser.add_argument("--token", required=True)
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", required=True)
    parser.add_argument("--page-size", type=int, required=True)
    parser.add_argument("--loader-file-format", default="insert_values")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--pipelines-dir", required=True)
    args = parser.parse_args()

    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    source = rest_api_source(
        {
            "client": {
                "base_url": args.api,
                "auth": {"type": "bearer", "token": args.token},
                "paginator": {
                    "type": "cursor",
                    "cursor_path": "meta.next_token",
                    "cursor_param": "next_token",
                },
            },
            "resources": [
                {
                    "name": "tweets",
                    "endpoint": {
                        "path": "2/tweets/search/recent",
                        "params": {
                            "query": "brand mentions",
                            "start_time": args.start,
                            "end_time": args.end,
                            "max_results": args.page_size,
                        },
                        "data_selector": "data",
                    },
                }
            ],
        }
    )
    pipeline = dlt.pipeline(
        pipeline_name=args.dataset,
        pipelines_dir=args.pipelines_dir,
        destination=dlt.destinations.postgres(args.url),
        dataset_name=args.dataset,
    )
    started = now()
    pipeline.run(source, loader_file_format=args.loader_file_format)
    seconds = now() - started
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT count(*) FROM tweets")[0][0]
    report(seconds=seconds, rows_in_table=rows)


if __name__ == "__main__":
    main()
