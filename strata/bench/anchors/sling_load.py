"""Anchor: Sling, the CLI a user picks to move a file into Postgres fast, on the JSON lines file.

Its binary comes from the `sling-linux-amd64` wheel (the newer `sling` wrapper downloads one at run time, which
an offline machine cannot). One `sling run` of the file into `--table`, mode full-refresh, Sling's defaults
otherwise; the connection URL goes through the environment, as Sling reads connections. Timed: the whole
`sling run` process, start to exit.
"""

from __future__ import annotations

import argparse
import os
import subprocess
from pathlib import Path

from common import now, report
from sling_linux_amd64 import SLING_BIN, SLING_VERSION

CONNECTION = "BENCH_PG"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--file", required=True)
    parser.add_argument("--table", required=True, help="schema.table")
    parser.add_argument("--home", required=True, help="Sling's home folder (its env file and logs)")
    args = parser.parse_args()
    home = Path(args.home)
    home.mkdir(parents=True, exist_ok=True)
    url = args.url + ("&" if "?" in args.url else "?") + "sslmode=disable"
    env = {
        **os.environ,
        CONNECTION: url,
        "SLING_HOME_DIR": str(home),
        "SLING_DISABLE_TELEMETRY": "true",
        "SLING_LOGGING": "NO_COLOR",
    }
    command = [SLING_BIN, "run", "--src-stream", Path(args.file).resolve().as_uri(), "--src-options"]
    command += ['{"format": "jsonlines"}', "--tgt-conn", CONNECTION, "--tgt-object", args.table]
    command += ["--mode", "full-refresh"]
    started = now()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = now() - started
    if done.returncode != 0:
        raise SystemExit(f"sling failed ({done.returncode}):\n{(done.stderr or done.stdout)[-3000:]}")
    import psycopg
    from psycopg import sql

    with psycopg.connect(args.url) as conn:
        schema, table = args.table.split(".")
        rows = conn.execute(
            sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
        ).fetchone()[0]
        columns = conn.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        ).fetchone()[0]
    report(seconds=seconds, rows_in_table=rows, columns=columns, sling=SLING_VERSION)


if __name__ == "__main__":
    main()
