"""The landing sensor: finds new files, waits until they are stable, registers them in the ledger and
requests one run per source partition.

While files trickle in (at most `CHAIN_MAX_RUNS` runs in a tick), a run refreshes the partition's whole
known chain with it — the silver and gold models of the same partitioning, the unpartitioned models after them
and the vector index — so a landed file reaches gold and the index in one run. A backlog loads bronze only, one
run per partition, and leaves silver, gold and the index to reconciliation, which refreshes them in a few
batched runs once the backlog is loaded instead of once per file.

Run keys come from the ledger (`<source>:<partition>:<highest ready load id>`), so a tick that crashes after
registering asks for the same runs next time and Dagster launches each once; a fixed file (new bytes) gets a
new load id and so a new run. A load left `ingesting` by a run that was killed and will not be retried is
requested again under `<load id>.<attempts>`. Work per tick is bounded: at most `MAX_FILES_PER_TICK` files / `MAX_BYTES_PER_TICK`
bytes are hashed; the rest waits, already counted as stable, for the next tick.
"""

import json
from collections import defaultdict

import dagster as dg
from dagster._core.storage.tags import WILL_RETRY_TAG

from assets.automation import refresh_chain
from assets.bronze import ledger
from assets.bronze.discover import DONE_MARKER, discover
from assets.bronze.sources import SOURCES, SOURCES_BY_NAME
from resources import LandingZoneResource, PostgresResource

MAX_FILES_PER_TICK = 500
MAX_BYTES_PER_TICK = 2 << 30
CHAIN_MAX_RUNS = 4


@dg.sensor(
    name="landing_sensor",
    description="Registers stable landed files in the load ledger and requests bronze loads per partition.",
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.assets(*(source.asset_key for source in SOURCES)).downstream(),
)
def landing_sensor(
    context: dg.SensorEvaluationContext, postgres: PostgresResource, landing: LandingZoneResource
) -> dg.SensorResult:
    previous: dict[str, dict[str, list[int]]] = json.loads(context.cursor) if context.cursor else {}
    waiting: dict[str, dict[str, list[int]]] = {}
    # (source, partition, newest load: "<load id>" or, for an abandoned one, "<load id>.<attempts>")
    ready: list[tuple[str, str | None, str]] = []
    files_left, bytes_left = MAX_FILES_PER_TICK, MAX_BYTES_PER_TICK
    with postgres.connect(autocommit=True) as conn:
        ledger.ensure_schema(conn)
        for source in SOURCES:
            seen_before = previous.get(source.name, {})

            def is_stable(relative: str, signature: tuple[int, int], seen_before=seen_before) -> bool:
                if landing.resolve(relative + DONE_MARKER).exists():
                    return True
                return seen_before.get(relative) == list(signature)

            found = discover(
                conn, source, landing, is_stable=is_stable, max_files=files_left, max_bytes=bytes_left
            )
            files_left = max(files_left - len(found.registered), 0)
            bytes_left = max(bytes_left - found.bytes_hashed, 0)
            waiting[source.name] = {relative: list(sig) for relative, sig in found.waiting.items()}
            for load in found.registered:
                context.log.info(f"registered {source.name} load {load.load_id}: {load.path}")

            by_partition: dict[str | None, list[str]] = defaultdict(list)
            for load in ledger.pending_loads(conn, source.name):
                if load.status == "ready":
                    by_partition[load.partition_key].append(str(load.load_id))
                elif _abandoned(context.instance, load):
                    # Its run ended without finishing it (the worker was killed) and will not be retried.
                    by_partition[load.partition_key].append(f"{load.load_id}.{load.attempts}")
            for partition_key, loads in sorted(by_partition.items(), key=lambda item: item[0] or ""):
                ready.append((source.name, partition_key, max(loads, key=_load_order)))
    trickle = len(ready) <= CHAIN_MAX_RUNS
    asset_graph = context.repository_def.asset_graph
    run_requests = [
        dg.RunRequest(
            run_key=f"{name}:{partition_key or '-'}:{load}",
            asset_selection=refresh_chain(asset_graph, SOURCES_BY_NAME[name].asset_key)
            if trickle
            else [SOURCES_BY_NAME[name].asset_key],
            partition_key=partition_key,
            tags={"strata/source": name, "strata/trigger": "landing"},
        )
        for name, partition_key, load in ready
    ]
    return dg.SensorResult(run_requests=run_requests, cursor=json.dumps(waiting, sort_keys=True))


def _abandoned(instance: dg.DagsterInstance, load: ledger.Load) -> bool:
    """An `ingesting` load whose run is gone, or ended and will not be retried by the daemon."""
    run = instance.get_run_by_id(load.run_id) if load.run_id else None
    if run is None:
        return True
    return run.is_finished and run.tags.get(WILL_RETRY_TAG) != "true"


def _load_order(load: str) -> tuple[int, int]:
    load_id, _, attempt = load.partition(".")
    return int(load_id), int(attempt or 0)
