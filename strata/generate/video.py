"""video_users, video_sessions, video_content: a streaming service's CSV exports and content catalogue."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import orjson

from strata.generate import people, text
from strata.generate.core import Run, assign, mix, open_out, rng_for
from strata.generate.manifest import SourceReport

USERS = 500  # at scale 1
SESSIONS_PER_DAY = 1000  # at scale 1
CONTENT = 150  # at scale 1
USERS_HEADER = ("user_id", "name", "email", "country", "signup_date", "subscription_tier")
SESSIONS_HEADER = (
    "session_id",
    "user_id",
    "content_id",
    "started_at",
    "watch_seconds",
    "content_duration_seconds",
    "completion_pct",
)
_COUNTRIES = ("US", "GB", "DE", "FR", "ES", "BR", "MX", "JP", "IN", "CA", "AU", "SE")
_TIERS = ("free", "free", "basic", "premium")
_ROLES = ("director", "host", "editor", "producer", "narrator")
_GENRE = {
    "pets": "lifestyle",
    "cooking": "food",
    "fitness": "health",
    "travel": "documentary",
    "gaming": "entertainment",
    "beauty": "lifestyle",
    "music": "music",
    "tech": "education",
    "finance": "education",
    "fashion": "lifestyle",
    "sports": "sports",
    "parenting": "family",
}


def content_id(index: int) -> str:
    return f"cnt_{index:06d}"


def content_duration(run: Run, index: int) -> int:
    # A bare hash so sessions can look durations up without loading the catalogue.
    return 60 + mix(run.seed, "video_content", "duration", index) % 3540


@contextmanager
def _csv_rows(run: Run, rel: str, header: tuple[str, ...]) -> Iterator[Any]:
    path = run.out / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    # newline="" keeps the csv module's CRLF row endings intact.
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        yield writer


def generate_users(run: Run) -> SourceReport:
    report = SourceReport(run)
    part = report.partition("all")
    rel = "video/users/users.csv"
    rng = rng_for(run.seed, "video_users", "all", 0)
    with _csv_rows(run, rel, USERS_HEADER) as writer:
        for index in range(USERS * run.scale):
            name = people.full_name(rng)
            signup = run.start - timedelta(days=rng.randrange(1, 1500))
            writer.writerow(
                [
                    f"usr_{index:07d}",
                    name,
                    people.email(rng, name, index),
                    rng.choice(_COUNTRIES),
                    signup.isoformat(),
                    rng.choice(_TIERS),
                ]
            )
            part.loaded()
    part.distinct_keys = part.bronze_rows
    report.add_file(rel, part.bronze_rows)
    report.expect = {"users": part.bronze_rows}
    return report


def generate_sessions(run: Run) -> SourceReport:
    report = SourceReport(run)
    header_only = set(
        assign(
            rng_for(run.seed, "video_sessions", "plan"),
            run.days,
            {"header_only_csv": run.rates.header_only_csv},
        )
    )
    users, content = USERS * run.scale, CONTENT * run.scale
    over_100 = 0
    for day_index, day in enumerate(run.dates):
        part = report.partition(day.isoformat())
        rng = rng_for(run.seed, "video_sessions", day.isoformat(), 0)
        rel = f"video/sessions/date={day.isoformat()}/sessions.csv"
        with _csv_rows(run, rel, SESSIONS_HEADER) as writer:
            for index in range(SESSIONS_PER_DAY * run.scale):
                item = rng.randrange(content)
                duration = content_duration(run, item)
                if rng.random() < run.rates.completion_over_100:
                    # Rewinds and replays count as watch time, so the player reports beyond 100%.
                    watched = int(duration * rng.uniform(1.05, 2.5))
                    part.faults["completion_over_100"] += 1
                else:
                    watched = int(duration * rng.betavariate(2, 1.3))
                started = f"{day.isoformat()}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"
                writer.writerow(
                    [
                        f"ses_{day:%Y%m%d}_{index:07d}",
                        f"usr_{rng.randrange(users):07d}",
                        content_id(item),
                        started,
                        watched,
                        duration,
                        f"{watched * 100 / duration:.1f}",
                    ]
                )
                part.loaded()
        part.distinct_keys = part.bronze_rows
        over_100 += part.faults["completion_over_100"]
        report.add_file(rel, part.bronze_rows)
        if day_index in header_only:
            # A re-export that found nothing new: just the header.
            retry = f"video/sessions/date={day.isoformat()}/sessions-retry.csv"
            with _csv_rows(run, retry, SESSIONS_HEADER):
                pass
            report.add_file(retry, 0)
            part.faults["header_only_csv"] += 1
    report.expect = {"completion_over_100": over_100}
    return report


def generate_content(run: Run) -> SourceReport:
    report = SourceReport(run)
    part = report.partition("all")
    rel = "video/content/content.json"
    rng = rng_for(run.seed, "video_content", "all", 0)
    credit_rows = 0
    with open_out(run.out / rel) as fh:
        fh.write(b"[")
        for index in range(CONTENT * run.scale):
            topic = rng.choice(text.TOPIC_NAMES)
            item = {
                "content_id": content_id(index),
                "title": text.title(rng, topic),
                "description": text.description(rng, topic),
                "published_at": f"{run.start - timedelta(days=rng.randrange(1, 700))}T{rng.randrange(24):02d}:00:00Z",
                "duration_seconds": content_duration(run, index),
                "metadata": {
                    "genre": _GENRE[topic],
                    "tags": rng.sample(text.TOPICS[topic][3], 3),
                    "language": rng.choice(("en", "en", "es", "fr")),
                },
                "credits": [
                    {"role": role, "name": people.full_name(rng)}
                    for role in rng.sample(_ROLES, rng.randint(1, 3))
                ],
            }
            credit_rows += len(item["credits"])
            fh.write((b"," if index else b"") + orjson.dumps(item))
            part.loaded()
        fh.write(b"]")
    part.distinct_keys = part.bronze_rows
    report.add_file(rel, part.bronze_rows)
    report.expect = {"content": part.bronze_rows, "credits": credit_rows}
    return report
