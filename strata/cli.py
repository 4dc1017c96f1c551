"""`strata`: the command line of the platform. Every command reads the same STRATA_ configuration."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path

from strata.config import Settings


def _services(args: argparse.Namespace, settings: Settings) -> int:
    from strata import services

    if args.action == "up":
        services.up(settings)
    elif args.action == "down":
        services.down(settings)
    for line in services.status(settings):
        print(line.line())
    return 0


def _env(args: argparse.Namespace, settings: Settings) -> int:
    """Print `export` lines so a shell can run `dagster` or `dbt` against the same services. Secrets are
    never printed: a generated one is read from its file by the shell; one set by the user is already set; a URL
    holding a password (one the user configured, or derived from one) is left out with a comment saying so."""
    import os
    from urllib.parse import urlsplit

    from strata import services

    for name, value in services.service_environment(settings).items():
        if name in services.SECRETS:
            if not os.environ.get(name):
                print(f'export {name}="$(cat {shlex.quote(str(settings.pii_salt_file))})"')
            continue
        if "://" in value and urlsplit(value).password:
            print(f"# {name} holds a password: not printed (set it in the shell yourself)")
            continue
        print(f"export {name}={shlex.quote(value)}")
    return 0


def _up(args: argparse.Namespace, settings: Settings) -> int:
    from strata import dagster_process, services
    from strata.sample_drop import land_sample_drop, landing_is_empty

    env = services.up(settings)
    for line in services.status(settings):
        print(line.line())
    if not args.no_sample and landing_is_empty(settings):
        land_sample_drop(settings, days=args.sample_days)
        print(f"landed the sample drop in {settings.landing_dir}")
    if dagster_process.running_pid(settings) is None:
        for line in dagster_process.fail_runs_left_behind(env):
            print(f"recovered: {line}")
    url = dagster_process.start(settings, env)
    print(f"dagster running {url}  (logs: {settings.logs_dir / 'dagster-dev.log'}; stop with `make down`)")
    return 0


def _down(args: argparse.Namespace, settings: Settings) -> int:
    from strata import dagster_process, services

    if dagster_process.stop(settings):
        print("dagster stopped")
    services.down(settings)
    for line in services.status(settings):
        print(line.line())
    return 0


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from strata.sample_drop import land_sample_drop

    manifest = land_sample_drop(
        settings,
        args.out,
        scale=args.scale,
        days=args.days,
        seed=args.seed,
        start=args.start,
        sources=args.sources,
        to_mongo=not args.no_mongo,
    )
    for name, source in manifest["sources"].items():
        read = sum(part["records_read"] for part in source["partitions"].values())
        print(f"{name:16} files={len(source['files']):6} records={read}")
    print(f"manifest: {Path(args.out) / 'manifest.json'}")
    if args.serve_api is not None:
        return _serve_recent_search(args)
    return 0


def _serve_recent_search(args: argparse.Namespace) -> int:
    """Serve the drop's tweets through the local recent-search API until interrupted."""
    import os
    import time

    from strata.generate import FaultRates
    from strata.generate.core import Run
    from strata.generate.recent_search import PATH, RecentSearchServer, recent_tweets

    run = Run(Path(args.out), args.seed, args.scale, args.days, args.start, FaultRates())
    tweets, users = recent_tweets(run)
    server = RecentSearchServer(tweets, users, token=os.environ.get("STRATA_TWEETS_API_TOKEN") or None)
    with server.running(args.serve_api) as base:
        print(f"recent search: {base}{PATH} ({len(tweets)} tweets; Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from strata.demo import run_demo

    return run_demo(settings)


def _search(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from assets.vector.search import search
    from resources import EmbeddingModelResource, QdrantResource
    from resources.qdrant import QdrantUnavailableError
    from strata import services

    try:
        hits = search(
            QdrantResource(url=services.qdrant_url(settings)),
            EmbeddingModelResource(),
            args.text,
            mode=args.mode,
            network=args.network,
            since=args.since,
            account=args.account,
            label=args.label,
            limit=args.limit,
        )
    except QdrantUnavailableError as exc:
        print(f"strata search: {exc}", file=sys.stderr)
        return 1
    if args.json:
        filters = {
            "mode": args.mode,
            "network": args.network,
            "since": args.since and args.since.isoformat(),
            "account": args.account,
            "label": args.label,
        }
        print(
            json.dumps(
                {"query": args.text, "filters": filters, "results": [h.as_dict() for h in hits]}, indent=2
            )
        )
        return 0
    for hit in hits:
        where = " ".join(filter(None, [hit.source_type, hit.network, hit.account_id, hit.created_date]))
        if hit.labels:
            where += f" | {', '.join(hit.labels)}"
        print(f"{hit.rank:>3}. {hit.score:.3f}  [{where}]  {hit.text[:100]}")
    if not hits:
        print("no results")
    return 0


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from strata.bench import report_path, run

    if args.readme:
        from strata.bench import readme

        readme.update(report_path(settings))
        print(f"README.md: performance figures rendered from {readme.KEPT_REPORT}")
        return 0
    return run(settings, args.scenarios)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="strata", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    services_cmd = commands.add_parser("services", help="start, stop or show the embedded services")
    services_cmd.add_argument("action", choices=["up", "down", "status"])
    services_cmd.set_defaults(handler=_services)

    generate_cmd = commands.add_parser("generate", help="write a deterministic sample drop and its manifest")
    generate_cmd.add_argument("--out", type=Path, required=True, help="landing root to write under")
    generate_cmd.add_argument("--scale", type=int, default=1, help="volume multiplier (1 = a few seconds)")
    generate_cmd.add_argument("--days", type=int, default=7, help="daily partitions to generate")
    generate_cmd.add_argument("--seed", type=int, default=42)
    generate_cmd.add_argument("--start", type=date.fromisoformat, default=date(2026, 11, 1), help="first day")
    generate_cmd.add_argument("--sources", nargs="*", help="only these sources (default: all)")
    generate_cmd.add_argument(
        "--no-mongo", action="store_true", help="do not write the operational documents to Mongo"
    )
    generate_cmd.add_argument(
        "--serve-api",
        type=int,
        metavar="PORT",
        help="then serve the drop's tweets through a local X API v2 recent search on this port (0: any free "
        "one) until interrupted; a bearer token is required when STRATA_TWEETS_API_TOKEN is set",
    )
    generate_cmd.set_defaults(handler=_generate)

    commands.add_parser("demo", help="materialize everything once, headless, and summarize").set_defaults(
        handler=_demo
    )

    search_cmd = commands.add_parser("search", help="search the vector index: by meaning and by exact terms")
    search_cmd.add_argument("text", help="what to look for, in plain words")
    search_cmd.add_argument(
        "--mode",
        choices=("hybrid", "dense", "sparse"),
        default="hybrid",
        help="hybrid (default): meaning and exact terms fused by rank; dense: meaning only (the embedding "
        "model); sparse: exact terms only (BM25)",
    )
    search_cmd.add_argument(
        "--network", help="only this network (youtube, instagram, tiktok, facebook, snapchat, x)"
    )
    search_cmd.add_argument(
        "--since", type=date.fromisoformat, help="only content created on or after this date"
    )
    search_cmd.add_argument("--account", help="only this account id")
    search_cmd.add_argument("--label", help="only posts whose media show this image label (e.g. dog)")
    search_cmd.add_argument("--limit", type=int, default=10, help="number of results (default 10)")
    search_cmd.add_argument("--json", action="store_true", help="one JSON document with a `results` list")
    search_cmd.set_defaults(handler=_search)

    bench_cmd = commands.add_parser("bench", help="performance side by side with the anchors, as ratios")
    bench_cmd.add_argument("scenarios", nargs="*", help="scenarios to run (default: all)")
    bench_cmd.add_argument(
        "--readme",
        action="store_true",
        help="run nothing: render the latest report into README.md (and keep it as docs/bench/latest.json)",
    )
    bench_cmd.set_defaults(handler=_bench)

    commands.add_parser("env", help="print the service environment as shell exports").set_defaults(
        handler=_env
    )
    up_cmd = commands.add_parser("up", help="services + sample drop + dagster dev in the background")
    up_cmd.add_argument(
        "--no-sample", action="store_true", help="do not land the sample drop in an empty landing zone"
    )
    up_cmd.add_argument(
        "--sample-days", type=int, default=7, help="days of the sample drop landed in an empty landing zone"
    )
    up_cmd.set_defaults(handler=_up)
    commands.add_parser("down", help="stop what `strata up` started").set_defaults(handler=_down)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args, Settings.from_env())


if __name__ == "__main__":
    sys.exit(main())
