"""Partitioning, said once: the partitions definitions every partitioned asset shares, the networks, and one
codec for partition keys (`2026-11-03` or `2026-11-03|youtube`) and for the windows and ranges of runs.

Partitions begin on the configured start day (`Settings.partitions_start`, default 2026-11-01, the first day of
the sample data); files dated before it are refused at landing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

import dagster as dg

from strata.config import Settings

NETWORKS = ("youtube", "instagram", "tiktok", "facebook", "snapchat", "x")

Partitioning = Literal["date_network", "daily", "none"]
PARTITIONINGS: tuple[Partitioning, ...] = ("date_network", "daily", "none")


START = Settings.from_env().partitions_start
# end_offset=1: today's partition exists while today's files land.
DAILY = dg.DailyPartitionsDefinition(start_date=START.isoformat(), end_offset=1)
DATE_NETWORK = dg.MultiPartitionsDefinition(
    {"date": DAILY, "network": dg.StaticPartitionsDefinition(NETWORKS)}
)
PARTITIONS_DEFS: dict[Partitioning, dg.PartitionsDefinition | None] = {
    "date_network": DATE_NETWORK,
    "daily": DAILY,
    "none": None,
}

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


@dataclass(frozen=True)
class Key:
    """A partition key by dimension."""

    day: str
    network: str | None = None

    @classmethod
    def parse(cls, key: str) -> Key:
        day, _, network = str(key).partition("|")
        return cls(day, network or None)

    @property
    def date(self) -> date:
        return date.fromisoformat(self.day)

    def values(self) -> dict[str, str]:
        """The landing-path values of the key (`{date}`, `{network}`)."""
        return {"date": self.day, **({"network": self.network} if self.network else {})}


def key_for(partitioning: Partitioning, day: str, network: str | None = None) -> str | None:
    """The Dagster partition key of a day (and network) under a partitioning."""
    if partitioning == "none":
        return None
    if partitioning == "daily":
        return day
    return dg.MultiPartitionKey({"date": day, "network": network})


def in_range(day: str, *, today: date) -> bool:
    """Whether a day has a partition (from the start to tomorrow)."""
    try:
        value = date.fromisoformat(day)
    except ValueError:
        return False
    return START <= value <= today + timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """The days [start, end) and networks a run covers (networks None: every network, or not by network)."""

    start: date
    end: date
    networks: tuple[str, ...] | None = None


def window(keys: Iterable[str]) -> Window:
    """The bounding window of partition keys: re-computing a partition is idempotent, so a run over a
    non-rectangular set of keys only does a little more work."""
    parsed = [Key.parse(key) for key in keys]
    days = sorted({key.date for key in parsed})
    networks = {key.network for key in parsed if key.network}
    return Window(
        days[0],
        days[-1] + timedelta(days=1),
        tuple(n for n in NETWORKS if n in networks) if networks else None,
    )


def contiguous_ranges(partitions_def: dg.PartitionsDefinition, keys: Iterable[str]) -> list[tuple[str, str]]:
    """The fewest ranges (first, last) of `partitions_def`'s key order that cover exactly `keys`."""
    wanted = {str(key) for key in keys}
    ranges: list[tuple[str, str]] = []
    current: list[str] = []
    for key in map(str, partitions_def.get_partition_keys()):
        if key in wanted:
            current.append(key)
        elif current:
            ranges.append((current[0], current[-1]))
            current = []
    if current:
        ranges.append((current[0], current[-1]))
    return ranges


def bounding_range(partitions_def: dg.PartitionsDefinition, days: Sequence[str]) -> tuple[str, str] | None:
    """The range of every partition of `partitions_def` on the days from min(days) to max(days)."""
    if not days:
        return None
    first, last = min(days), max(days)
    keys = [str(k) for k in partitions_def.get_partition_keys() if first <= str(k)[:10] <= last]
    return (keys[0], keys[-1]) if keys else None


def range_tags(partition_range: tuple[str, str]) -> dict[str, str]:
    """Run tags making one run cover a range of partitions (a single-run backfill)."""
    return {RANGE_START_TAG: partition_range[0], RANGE_END_TAG: partition_range[1]}
