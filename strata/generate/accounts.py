"""social_accounts: one full snapshot CSV per day; accounts change and some disappear for good.

An account's whole history derives from (seed, network, index), so any day's snapshot, and the posts
that reference accounts, can be produced without holding the account list in memory.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import timedelta

from strata.generate import people
from strata.generate.core import Run, assign, mix, rng_for
from strata.generate.manifest import SourceReport
from strata.generate.networks import NETWORKS
from strata.generate.text import TOPIC_NAMES

SOURCE = "social_accounts"
ACCOUNTS_PER_NETWORK = 40
HEADER = (
    "account_id",
    "network",
    "handle",
    "display_name",
    "category",
    "followers",
    "following",
    "created_at",
)
GONE_PER_MILLE = 15


def account_count(run: Run) -> int:
    return ACCOUNTS_PER_NETWORK * run.scale


def account_id(network: str, index: int) -> str:
    return f"{NETWORKS[network].prefix}_acc{index:06d}"


def gone_on(run: Run, network: str, index: int) -> int | None:
    """Index of the first day the account is missing from snapshots, or None if it never vanishes.
    A bare hash (no Random) because posts call this for every post."""
    if run.days < 2:
        return None
    h = mix(run.seed, SOURCE, "gone", network, index)
    if h % 1000 >= GONE_PER_MILLE:
        return None
    return 1 + (h >> 10) % (run.days - 1)


def alive(run: Run, network: str, index: int, day_index: int) -> bool:
    gone = gone_on(run, network, index)
    return gone is None or day_index < gone


@dataclass
class _Account:
    base: dict[str, str]
    changes: list[tuple[int, str, str]] = field(default_factory=list)  # (day index, column, new value)
    faults: tuple[str, ...] = ()

    def on(self, day_index: int) -> dict[str, str]:
        row = dict(self.base)
        for day, column, value in self.changes:
            if day <= day_index:
                row[column] = value
        return row


def _account(run: Run, network: str, index: int) -> _Account:
    rng = rng_for(run.seed, SOURCE, network, index)
    name = people.full_name(rng)
    category = rng.choice(TOPIC_NAMES)
    display, faults = name, []
    if rng.random() < run.rates.quoted_comma:
        display, faults = f"{name}, {category} creator", ["quoted_comma"]
    if rng.random() < run.rates.embedded_newline:
        display, faults = f"{display}\nOfficial", [*faults, "embedded_newline"]
    created = run.start - timedelta(days=rng.randrange(30, 3000), seconds=rng.randrange(86400))
    followers = int(rng.paretovariate(1.16) * 300)
    account = _Account(
        base={
            "account_id": account_id(network, index),
            "network": network,
            "handle": people.handle(rng, name, index),
            "display_name": display,
            "category": category,
            "followers": str(followers),
            "following": str(rng.randrange(10, 3000)),
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        faults=tuple(faults),
    )
    if run.days >= 2 and rng.random() < 0.08:
        for day in sorted(rng.sample(range(1, run.days), min(run.days - 1, rng.randint(1, 2)))):
            column = rng.choice(("followers", "handle", "category"))
            current = account.on(day)[column]
            if column == "followers":
                value = str(int(int(current) * rng.uniform(1.05, 1.6)))
            elif column == "handle":
                value = current.rstrip("0123456789") + "_official" + str(index)
            else:
                value = rng.choice([topic for topic in TOPIC_NAMES if topic != current])
            account.changes.append((day, column, value))
    return account


def generate(run: Run) -> SourceReport:
    report = SourceReport(run)
    latin1_days = set(
        assign(rng_for(run.seed, SOURCE, "plan"), run.days, {"latin1_encoding": run.rates.latin1_encoding})
    )
    counts = {}
    for day_index, day in enumerate(run.dates):
        rel = f"social/accounts/date={day}/accounts.csv"
        part = report.partition(day.isoformat())
        encoding = "latin-1" if day_index in latin1_days else "utf-8"
        path = run.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        # newline="" lets the csv module write its CRLF row endings and quote embedded newlines.
        with open(path, "w", encoding=encoding, newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(HEADER)
            for network in NETWORKS:
                for index in range(account_count(run)):
                    if not alive(run, network, index, day_index):
                        continue
                    account = _account(run, network, index)
                    row = account.on(day_index)
                    writer.writerow([row[column] for column in HEADER])
                    part.loaded()
                    part.faults.update(account.faults)
        part.distinct_keys = part.bronze_rows
        part.faults["latin1_encoding"] += encoding == "latin-1"
        counts[day.isoformat()] = part.bronze_rows
        report.add_file(rel, part.bronze_rows)
    report.expect = {"accounts_per_date": counts}
    if run.small:
        report.expect["changes"] = _changes(run)
    return report


def _changes(run: Run) -> dict[str, dict]:
    """Per changed or vanished account, its SCD2 versions as the daily snapshots show them."""
    changes = {}
    for network in NETWORKS:
        for index in range(account_count(run)):
            gone = gone_on(run, network, index)
            account = _account(run, network, index)
            if not account.changes and gone is None:
                continue
            versions = []
            for day_index in sorted({0, *(day for day, _, _ in account.changes)}):
                if gone is not None and day_index >= gone:
                    break
                row = account.on(day_index)
                versions.append(
                    {
                        "valid_from": run.dates[day_index].isoformat(),
                        "handle": row["handle"],
                        "category": row["category"],
                        "followers": int(row["followers"]),
                    }
                )
            entry: dict = {"versions": versions}
            if gone is not None:
                entry["disappeared_on"] = run.dates[gone].isoformat()
            changes[account_id(network, index)] = entry
    return changes
