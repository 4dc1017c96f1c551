"""Reconciliation: every automated asset, or partition, that is older than its upstream gets refreshed.

Eager automation can miss an update: an upstream materialized again while the downstream run was in flight,
or an event committed during a tick (dagster-io/dagster#24650). It also only looks at the latest
time partition, so a back-dated file would never cascade. This sensor reads the event log instead.

A materialization is older than its upstream when an upstream materialization landed after the run that
produced it started, from another run (a chain refreshed in one run is current). What is compared:
- a partitioned asset: each partition against the same partition of parents with its partitions definition,
  and every materialized partition against unpartitioned parents (a changed dimension);
- an unpartitioned asset: against every materialization of every parent.
An asset with an upstream that has no data at all waits: there is nothing to build it from (unless that
upstream may stay empty for good, a source pulled only where it is configured).

It refreshes in waves, in dependency order. An asset waits while anything upstream of it is stale or in a run
in progress, including the tables its checks read. So a backlog is refreshed in a few batched runs (one per
partitioning, over the range of its stale partitions) rather than once per landed file.

A request's run key is the staleness it answers. A failed refresh is not retried in a loop (the run-failure
alert fires); the next upstream update retries it.

Reading the event log every daemon loop made this sensor the largest load of an idle platform, and its result
can only change when something does: its cursor keeps what it read last (the newest event log record, the runs
in progress, the graph), and a tick where none of it moved evaluates nothing. Partition sets grow with the
date, and a run deleted by hand takes its events along, so a full evaluation also runs every few minutes.
"""

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import dagster as dg

from assets.automation.graph import Wave, is_automated, join_wave, upstream_of
from assets.conventions import EVERY_DAEMON_LOOP_SECONDS, MAY_STAY_EMPTY

# A tick evaluates in full at least this often, whatever its cursor says.
FULL_EVALUATION_SECONDS = 300

IN_PROGRESS = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass(frozen=True)
class Materialization:
    run_id: str
    timestamp: float


@dataclass
class Stale:
    """The partitions (None: the unpartitioned asset) behind their upstream, and the newest upstream update."""

    partitions: set[str | None]
    upstream_at: float


@dataclass(frozen=True)
class RefreshRequest:
    """One run: unpartitioned assets, or partitioned assets over one range of their partitions."""

    asset_keys: tuple[dg.AssetKey, ...]
    partition_range: tuple[str, str] | None
    evidence: str

    def run_request(self) -> dg.RunRequest:
        tags = {"strata/trigger": "reconcile"}
        if self.partition_range:
            tags["dagster/asset_partition_range_start"] = self.partition_range[0]
            tags["dagster/asset_partition_range_end"] = self.partition_range[1]
        return dg.RunRequest(
            run_key=f"reconcile:{self.evidence}", asset_selection=list(self.asset_keys), tags=tags
        )


class EventLog:
    """The latest materialization of each asset partition, and when each run started (cached per tick)."""

    def __init__(self, instance: dg.DagsterInstance):
        self._instance = instance
        self._latest: dict[dg.AssetKey, dict[str | None, Materialization]] = {}
        self._run_starts: dict[str, float] = {}

    def latest(self, key: dg.AssetKey, partitioned: bool) -> Mapping[str | None, Materialization]:
        if key not in self._latest:
            if partitioned:
                storage_ids = self._instance.get_latest_storage_id_by_partition(
                    key, dg.DagsterEventType.ASSET_MATERIALIZATION
                )
                records = (
                    self._instance.fetch_materializations(
                        dg.AssetRecordsFilter(asset_key=key, storage_ids=list(storage_ids.values())),
                        limit=len(storage_ids),
                    ).records
                    if storage_ids
                    else []
                )
            else:
                records = self._instance.fetch_materializations(key, limit=1).records
            self._latest[key] = {
                record.partition_key: Materialization(record.run_id, record.timestamp) for record in records
            }
        return self._latest[key]

    def run_started(self, run_ids: Iterable[str]) -> Mapping[str, float]:
        missing = sorted(set(run_ids) - set(self._run_starts))
        if missing:
            for record in self._instance.get_run_records(dg.RunsFilter(run_ids=missing)):
                # A run without a start time has not started; nothing newer than it can be missed yet.
                self._run_starts[record.dagster_run.run_id] = record.start_time or float("inf")
        return self._run_starts


def _outdated(
    child: Materialization | None, parent: Materialization, run_starts: Mapping[str, float]
) -> bool:
    if child is None:
        return True
    if child.run_id == parent.run_id:
        return False
    return parent.timestamp > run_starts[child.run_id]


def find_stale(asset_graph, events: EventLog) -> dict[dg.AssetKey, Stale]:
    """Automated assets whose latest materialization (per partition) is older than an upstream's, or whose
    upstream is itself stale (it will change)."""
    stale: dict[dg.AssetKey, Stale] = {}
    for key in asset_graph.toposorted_asset_keys:
        node = asset_graph.get(key)
        if not is_automated(node) or not node.parent_keys:
            continue
        parents = {
            parent_key: events.latest(parent_key, asset_graph.get(parent_key).is_partitioned)
            for parent_key in node.parent_keys
            if asset_graph.get(parent_key).is_materializable
        }
        if any(
            not theirs and parent_key not in stale and MAY_STAY_EMPTY not in asset_graph.get(parent_key).tags
            for parent_key, theirs in parents.items()
        ):
            continue  # nothing to build from yet: an upstream has no data and none is coming
        mine = events.latest(key, node.is_partitioned)
        run_starts = events.run_started(m.run_id for m in mine.values())
        behind: set[str | None] = set()
        upstream_at = 0.0
        for parent_key, theirs in parents.items():
            parent = asset_graph.get(parent_key)
            coming = stale.get(parent_key)
            upstream_at = max(
                [upstream_at, *(m.timestamp for m in theirs.values()), coming.upstream_at if coming else 0.0]
            )
            if not node.is_partitioned:
                if coming or any(_outdated(mine.get(None), m, run_starts) for m in theirs.values()):
                    behind.add(None)
            elif parent.partitions_def == node.partitions_def:
                behind |= {p for p, m in theirs.items() if _outdated(mine.get(p), m, run_starts)}
                behind |= coming.partitions if coming else set()
            elif not parent.is_partitioned:
                if coming:
                    behind |= set(mine)
                elif None in theirs:
                    behind |= {p for p, m in mine.items() if _outdated(m, theirs[None], run_starts)}
        if behind:
            stale[key] = Stale(behind, upstream_at)
    return stale


def busy(runs: Iterable[dg.DagsterRun], asset_graph) -> tuple[set[dg.AssetKey], frozenset[str]]:
    """The assets targeted by queued or running `runs` (a run without an asset selection targets everything),
    and the pools those runs take."""
    assets: set[dg.AssetKey] = set()
    pools: set[str] = set()
    for run in runs:
        assets |= run.asset_selection if run.asset_selection is not None else asset_graph.get_all_asset_keys()
        pools |= set(run.run_op_concurrency.all_pools or []) if run.run_op_concurrency else set()
    return assets, frozenset(pools)


def _evaluation_state(instance: dg.DagsterInstance, asset_graph, in_progress: Iterable[dg.DagsterRun]) -> str:
    """Everything a tick's outcome depends on, digested: equal digests, equal requests."""
    nodes = [asset_graph.get(key) for key in asset_graph.toposorted_asset_keys]
    graph = [
        (str(node.key), sorted(map(str, node.parent_keys)), is_automated(node), repr(node.partitions_def))
        for node in nodes
    ]
    state = (
        instance.event_log_storage.get_maximum_record_id(),
        sorted(run.run_id for run in in_progress),
        graph,
        int(time.time() // FULL_EVALUATION_SECONDS),
    )
    return hashlib.sha1(repr(state).encode()).hexdigest()


def plan_refresh(
    asset_graph,
    stale: Mapping[dg.AssetKey, Stale],
    busy: set[dg.AssetKey],
    busy_pools: frozenset[str] = frozenset(),
) -> list[RefreshRequest]:
    """The next wave, one run per partitioning: stale assets with nothing stale or in progress upstream, and the
    stale assets of the same partitioning that wait only on those. A group whose pool a queued or running run
    takes waits for it: that run goes first either way, and the next wave gathers everything it left."""
    blocked = set(stale) | busy
    groups: Wave = []
    for key in asset_graph.toposorted_asset_keys:
        if key in stale and key not in busy:
            # Ready when nothing upstream is stale or busy — or only assets joining the same run, which builds
            # them first (a model and the stale models after it go together: its tests may read them).
            join_wave(
                groups, key, asset_graph.get(key).partitions_def, upstream_of(asset_graph, key) & blocked
            )
    requests = []
    for partitions_def, keys in groups:
        if {pool for key in keys for pool in asset_graph.get(key).pools or ()} & busy_pools:
            continue
        keys = sorted(keys, key=lambda k: k.to_user_string())
        partition_range = None
        if partitions_def is not None:
            order = {p: i for i, p in enumerate(partitions_def.get_partition_keys())}
            wanted = sorted(
                (p for key in keys for p in stale[key].partitions if p in order), key=order.__getitem__
            )
            if not wanted:
                continue
            partition_range = (wanted[0], wanted[-1])
        # The same staleness is requested once; a newer upstream update makes a new request.
        upstream_at = max(stale[key].upstream_at for key in keys)
        evidence = hashlib.sha1(repr((keys, partition_range, upstream_at)).encode()).hexdigest()[:16]
        requests.append(RefreshRequest(tuple(keys), partition_range, evidence))
    return requests


@dg.sensor(
    name="reconciliation_sensor",
    description="Refreshes any automated asset or partition older than its upstream — what eager automation "
    "missed, back-dated partitions, dimensions that changed — in dependency order and batched runs.",
    minimum_interval_seconds=EVERY_DAEMON_LOOP_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=dg.AssetSelection.all(),
)
def reconciliation_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
    asset_graph = context.repository_def.asset_graph
    in_progress = context.instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS))
    state = _evaluation_state(context.instance, asset_graph, in_progress)
    if state == context.cursor:
        return dg.SkipReason("nothing happened since the last evaluation")
    stale = find_stale(asset_graph, EventLog(context.instance))
    requests = plan_refresh(asset_graph, stale, *busy(in_progress, asset_graph))
    for request in requests:
        keys = ", ".join(k.to_user_string() for k in request.asset_keys)
        context.log.info(f"refreshing {keys} {request.partition_range or ''}".rstrip())
    return dg.SensorResult(run_requests=[request.run_request() for request in requests], cursor=state)
