"""The full build order of the asset graph, computed from it: steps of one partitioning each, in dependency
order, as few as the graph allows. `strata demo`, the bench and the tests build everything through it.

A step holds the assets of one partitions definition whose upstream is built by earlier steps, or by the
same step (it builds them first). Assets in `last` wait for every other step: the data-quality history reads
the outcome of every check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg

from assets.automation.graph import Wave, join_wave, upstream_of
from assets.partitions import Key, contiguous_ranges, range_tags


@dataclass(frozen=True)
class Step:
    keys: tuple[dg.AssetKey, ...]
    partitions_def: dg.PartitionsDefinition | None


@dataclass(frozen=True)
class Run:
    """One run of a step: some of its assets over one partition range (None: unpartitioned)."""

    keys: tuple[dg.AssetKey, ...]
    partition_range: tuple[str, str] | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        names = ", ".join(key.to_user_string() for key in self.keys)
        if self.partition_range is None:
            return names
        first, last = self.partition_range
        return f"{names} [{first}]" if first == last else f"{names} [{first} … {last}]"


def build_order(
    asset_graph, keys: Iterable[dg.AssetKey] | None = None, *, last: Iterable[dg.AssetKey] = ()
) -> list[Step]:
    """The steps building `keys` (default: every materializable asset) in dependency order."""
    wanted = set(keys) if keys is not None else set(asset_graph.materializable_asset_keys)
    final = set(last) & wanted
    order = [key for key in asset_graph.toposorted_asset_keys if key in wanted]
    reads = {key: upstream_of(asset_graph, key) & wanted for key in order}
    for key in final:
        reads[key] |= wanted - final
    done: set[dg.AssetKey] = set()
    steps: list[Step] = []
    while len(done) < len(order):
        wave: Wave = []
        for key in order:
            if key not in done:
                join_wave(wave, key, asset_graph.get(key).partitions_def, reads[key] - done)
        if not wave:
            raise ValueError(
                f"no buildable asset among {sorted(k.to_user_string() for k in set(order) - done)}"
            )
        for partitions_def, members in wave:
            steps.append(Step(tuple(members), partitions_def))
            done |= set(members)
    return _merge_late(asset_graph, steps, reads)


def _merge_late(asset_graph, steps: list[Step], reads: Mapping[dg.AssetKey, set[dg.AssetKey]]) -> list[Step]:
    """Fewer steps: an asset moves to the last later step of its partitioning that comes before everything
    reading it (a summary built with the final tail instead of in a step of its own); emptied steps go."""
    members = [list(step.keys) for step in steps]
    readers = {key: {other for other, theirs in reads.items() if key in theirs} for key in reads}
    for index in range(len(steps) - 1, -1, -1):
        for key in list(members[index]):
            first_reader = min(
                (i for i, keys in enumerate(members) if readers[key] & set(keys)), default=len(steps)
            )
            later = [
                i
                for i in range(index + 1, first_reader)
                if steps[i].partitions_def == steps[index].partitions_def and members[i]
            ]
            if later:
                members[index].remove(key)
                members[later[-1]].insert(0, key)
    order = {key: position for position, key in enumerate(asset_graph.toposorted_asset_keys)}
    return [
        Step(tuple(sorted(keys, key=order.__getitem__)), step.partitions_def)
        for step, keys in zip(steps, members, strict=True)
        if keys
    ]


def runs_for(step: Step, partitions: Mapping[dg.AssetKey, Iterable[str]]) -> list[Run]:
    """The runs of a step over the partitions each asset has (`partitions`; an asset absent from it has none
    and is left out). Assets whose partitions form the same ranges share runs; one run per range."""
    if step.partitions_def is None:
        return [Run(step.keys)]
    by_ranges: dict[tuple[tuple[str, str], ...], list[dg.AssetKey]] = {}
    for key in step.keys:
        ranges = tuple(contiguous_ranges(step.partitions_def, partitions.get(key, ())))
        if ranges:
            by_ranges.setdefault(ranges, []).append(key)
    return [
        Run(tuple(keys), partition_range, range_tags(partition_range))
        for ranges, keys in by_ranges.items()
        for partition_range in ranges
    ]


def plan_runs(
    asset_graph,
    data: Mapping[dg.AssetKey, Iterable[str]],
    keys: Iterable[dg.AssetKey] | None = None,
    *,
    last: Iterable[dg.AssetKey] = (),
) -> list[Run]:
    """Every run of a full build: the assets with data (`data`: bronze's partitions with files) over those
    partitions, every other partitioned asset over each of its partitions on the days with data."""
    partitions = {key: set(map(str, value)) for key, value in data.items()}
    days = sorted({Key.parse(p).day for value in partitions.values() for p in value})
    runs: list[Run] = []
    for step in build_order(asset_graph, keys, last=last):
        if step.partitions_def is not None and days:
            on_days = {
                str(k) for k in step.partitions_def.get_partition_keys() if days[0] <= str(k)[:10] <= days[-1]
            }
            for key in step.keys:
                partitions.setdefault(key, on_days)
        runs += runs_for(step, partitions)
    return runs


def materialize_runs(
    runs: Sequence[Run],
    definitions: Sequence,
    resources: Mapping[str, object],
    *,
    instance: dg.DagsterInstance | None = None,
    tags: Mapping[str, str] | None = None,
    execute: Callable[[Callable[[], dg.ExecuteInProcessResult]], dg.ExecuteInProcessResult] = lambda work: (
        work()
    ),
    raise_on_error: bool = True,
) -> list[tuple[Run, dg.ExecuteInProcessResult]]:
    """Execute `runs` in order, in this process; `execute` wraps each (the demo runs them in a worker thread).
    Each run gets the definitions of its assets and their checks, so `resources` need only cover those."""
    results = []
    for run in runs:
        selected = set(run.keys)
        needed = [
            definition
            for definition in definitions
            if (set(definition.keys) | {check.asset_key for check in definition.check_keys}) & selected
        ]
        result = execute(
            lambda run=run, needed=needed: dg.materialize(
                needed,
                selection=dg.AssetSelection.assets(*run.keys),
                tags={**run.tags, **(tags or {})},
                instance=instance,
                resources=resources,
                raise_on_error=raise_on_error,
            )
        )
        results.append((run, result))
    return results
