"""The landing sensor: finds new files, waits until they are stable, registers them in the ledger and
requests the runs that load them.

While files trickle in (at most `CHAIN_MAX_RUNS` partitions with work in a tick), each partition gets a run
that refreshes its whole known chain with it — the silver and gold models of the same partitioning, the
unpartitioned models after them and the vector index — so a landed file reaches gold and the index in one
run. A backlog loads bronze only, in as few runs as its partitions allow: one run per contiguous range of a
source's partitions (sources with the same ranges share it), one run for every unpartitioned source; silver,
gold and the index are left to reconciliation, one run per partitioning once bronze is loaded.

A file is stable — complete, safe to hash and load — when it carries a `<file>.done` marker, when its size and
mtime are the same as at the previous tick, or when its mtime is `STABLE_SECONDS` old at first sight.

Run keys come from the ledger (the partitions and their newest load), so a tick that crashes after registering
asks for the same runs next time and Dagster launches each once; a fixed file (new bytes) gets a new load id and
so a new run. Partitions an unfinished landing run already covers are not requested again. A load left
`ingesting` by a run that was killed and will not be retried is requested again under `<load id>.<attempts>`.
Work per tick is bounded: at most `MAX_FILES_PER_TICK` files / `MAX_BYTES_PER_TICK` bytes are hashed; the rest
waits, already counted as stable, for the next tick.
"""

import json
import time
from collections import defaultdict

import dagster as dg
from dagster._core.storage.tags import WILL_RETRY_TAG

from assets.automation import refresh_chain
from assets.bronze import ledger
from assets.bronze.discover import DONE_MARKER, discover
from assets.bronze.sources import SOURCES, SOURCES_BY_NAME, Source
from assets.conventions import EVERY_DAEMON_LOOP_SECONDS
from assets.partitions import RANGE_END_TAG, RANGE_START_TAG, contiguous_ranges, range_tags
from resources import LandingZoneResource, PostgresResource

# A file is complete once it has not changed for this long (or across two ticks, or given a `.done` marker).
STABLE_SECONDS = 3
MAX_FILES_PER_TICK = 500
MAX_BYTES_PER_TICK = 2 << 30
CHAIN_MAX_RUNS = 4
# Beyond this many files registered by one source in a tick, the log says one line for them all.
MAX_LOGGED_LOADS = 20


@dg.sensor(
    name="landing_sensor",
    description="Registers stable landed files in the load ledger and requests bronze loads per partition.",
    minimum_interval_seconds=EVERY_DAEMON_LOOP_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.assets(*(source.asset_key for source in SOURCES)).downstream(),
)
def landing_sensor(
    context: dg.SensorEvaluationContext, postgres: PostgresResource, landing: LandingZoneResource
) -> dg.SensorResult:
    previous: dict[str, dict[str, list[int]]] = json.loads(context.cursor) if context.cursor else {}
    waiting: dict[str, dict[str, list[int]]] = {}
    # per source: partition → its newest load with work ("<load id>", or "<load id>.<attempts>" when abandoned)
    work: dict[str, dict[str | None, str]] = {}
    files_left, bytes_left = MAX_FILES_PER_TICK, MAX_BYTES_PER_TICK
    claimed = _claimed_partitions(context.instance)
    with postgres.connect(autocommit=True) as conn:
        ledger.ensure_schema(conn)
        for source in SOURCES:
            seen_before = previous.get(source.name, {})

            def is_stable(relative: str, signature: tuple[int, int], seen_before=seen_before) -> bool:
                if landing.resolve(relative + DONE_MARKER).exists():
                    return True
                if seen_before.get(relative) == list(signature):
                    return True
                # Unchanged for STABLE_SECONDS already when first seen: no need to wait for another tick.
                return time.time_ns() - signature[1] >= STABLE_SECONDS * 1_000_000_000

            found = discover(
                conn, source, landing, is_stable=is_stable, max_files=files_left, max_bytes=bytes_left
            )
            files_left = max(files_left - len(found.registered), 0)
            bytes_left = max(bytes_left - found.bytes_hashed, 0)
            waiting[source.name] = {relative: list(sig) for relative, sig in found.waiting.items()}
            _log_registered(context, source.name, found.registered)

            newest: dict[str | None, list[str]] = defaultdict(list)
            for load in ledger.pending_loads(conn, source.name):
                key = str(load.partition_key) if load.partition_key else None
                if key in claimed.get(source.name, ()):
                    continue
                if load.status == "ready":
                    newest[key].append(str(load.load_id))
                elif load.status == "ingesting" and _abandoned(context.instance, load):
                    newest[key].append(f"{load.load_id}.{load.attempts}")
            if newest:
                work[source.name] = {key: max(loads, key=_load_order) for key, loads in newest.items()}
    partitions = sum(len(by_partition) for by_partition in work.values())
    if partitions <= CHAIN_MAX_RUNS:
        requests = _trickle(context.repository_def.asset_graph, work)
    else:
        requests = _backlog(work)
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(waiting, sort_keys=True))


def _log_registered(context: dg.SensorEvaluationContext, source: str, loads: list) -> None:
    """One line per registered file, or one line for a backlog's tick: the ledger holds each file's entry."""
    if len(loads) <= MAX_LOGGED_LOADS:
        for load in loads:
            context.log.info(f"registered {source} load {load.load_id}: {load.path}")
    else:
        first, last = loads[0], loads[-1]
        context.log.info(
            f"registered {len(loads)} {source} loads, {first.load_id}: {first.path} … {last.load_id}: {last.path}"
        )


def _trickle(asset_graph, work: dict[str, dict[str | None, str]]) -> list[dg.RunRequest]:
    """One run per partition, carrying the partition's whole known chain."""
    return [
        dg.RunRequest(
            run_key=f"{name}:{partition_key or '-'}:{load}",
            asset_selection=refresh_chain(asset_graph, SOURCES_BY_NAME[name].asset_key),
            partition_key=partition_key,
            tags={"strata/source": name, "strata/trigger": "landing"},
        )
        for name, by_partition in sorted(work.items())
        for partition_key, load in sorted(by_partition.items(), key=lambda item: item[0] or "")
    ]


def _backlog(work: dict[str, dict[str | None, str]]) -> list[dg.RunRequest]:
    """Bronze only, one run per range of partitions (shared by the sources with the same ranges) and one for
    every unpartitioned source."""
    groups: dict[tuple, list[Source]] = defaultdict(list)
    for name in sorted(work):
        source = SOURCES_BY_NAME[name]
        if source.partitions_def is None:
            groups[(None,)].append(source)
            continue
        for partition_range in contiguous_ranges(source.partitions_def, work[name]):
            groups[(source.partitioning, partition_range)].append(source)
    requests = []
    for group, sources in groups.items():
        partition_range = group[1] if group != (None,) else None
        names = [source.name for source in sources]
        marker = max(
            (
                load
                for source in sources
                for key, load in work[source.name].items()
                if _covers(source, key, partition_range)
            ),
            key=_load_order,
        )
        span = f"{partition_range[0]}…{partition_range[1]}" if partition_range else "-"
        requests.append(
            dg.RunRequest(
                run_key=f"{'+'.join(names)}:{span}:{marker}",
                asset_selection=[source.asset_key for source in sources],
                tags={
                    "strata/source": ",".join(names),
                    "strata/trigger": "landing",
                    **(range_tags(partition_range) if partition_range else {}),
                },
            )
        )
    return requests


def _covers(source: Source, partition_key: str | None, partition_range: tuple[str, str] | None) -> bool:
    if partition_range is None:
        return True
    keys = [str(k) for k in source.partitions_def.get_partition_keys()]
    return keys.index(partition_range[0]) <= keys.index(str(partition_key)) <= keys.index(partition_range[1])


def _claimed_partitions(instance: dg.DagsterInstance) -> dict[str, set[str | None]]:
    """Per source, the partitions an unfinished landing run covers (None: the unpartitioned source)."""
    claimed: dict[str, set[str | None]] = defaultdict(set)
    runs = instance.get_runs(
        filters=dg.RunsFilter(
            statuses=[
                dg.DagsterRunStatus.QUEUED,
                dg.DagsterRunStatus.NOT_STARTED,
                dg.DagsterRunStatus.STARTING,
                dg.DagsterRunStatus.STARTED,
            ],
            tags={"strata/trigger": "landing"},
        )
    )
    for run in runs:
        for name in run.tags.get("strata/source", "").split(","):
            source = SOURCES_BY_NAME.get(name)
            if source is None:
                continue
            if source.partitions_def is None:
                claimed[name].add(None)
            elif "dagster/partition" in run.tags:
                claimed[name].add(run.tags["dagster/partition"])
            elif RANGE_START_TAG in run.tags:
                keys = [str(k) for k in source.partitions_def.get_partition_keys()]
                first, last = keys.index(run.tags[RANGE_START_TAG]), keys.index(run.tags[RANGE_END_TAG])
                claimed[name].update(keys[first : last + 1])
    return claimed


def _abandoned(instance: dg.DagsterInstance, load: ledger.Load) -> bool:
    """An `ingesting` load whose run is gone, or ended and will not be retried by the daemon."""
    run = instance.get_run_by_id(load.run_id) if load.run_id else None
    if run is None:
        return True
    return run.is_finished and run.tags.get(WILL_RETRY_TAG) != "true"


def _load_order(load: str) -> tuple[int, int]:
    load_id, _, attempt = load.partition(".")
    return int(load_id), int(attempt or 0)
