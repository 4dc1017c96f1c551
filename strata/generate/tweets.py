"""tweets: brand-listening search responses, one JSON document per file, some of them broken."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from random import Random

from strata.generate import people, text
from strata.generate.cdc import brand_name
from strata.generate.core import Run, assign, rng_for, split_scale, write_bytes
from strata.generate.faults import JSON_FILE_FAULTS, render_json_file
from strata.generate.manifest import SourceReport, account_json_file

SOURCE = "tweets"
FILES_PER_DAY = 3  # at scale 1
STATUSES_PER_FILE = 100  # at scale 1
FILE_GROWTH_CAP = 50  # files grow to 50x before there are more of them
STATUSES_PER_LINE = 25  # pages per line when a response arrives as JSON lines
_LANGS = ("en", "en", "en", "en", "es", "fr", "de", "pt")
# Twitter's created_at uses English names whatever the locale, so no strftime for them.
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _twitter_time(moment: datetime) -> str:
    return (
        f"{_WEEKDAYS[moment.weekday()]} {_MONTHS[moment.month - 1]} {moment:%d %H:%M:%S} +0000 {moment.year}"
    )


def status(rng: Random, status_id: int, midnight: datetime) -> dict:
    """One API v1.1 status posted on the day starting at `midnight`, with its user."""
    topic = rng.choice(text.TOPIC_NAMES)
    brand = brand_name(rng.randrange(50))
    tag = brand.split()[0].lower().strip(",.&'")
    hashtags = [tag, *rng.sample(text.TOPICS[topic][3], rng.randint(0, 2))]
    retweeted = rng.random() < 0.2
    name = people.full_name(rng)
    user_number = rng.randrange(10**6)
    screen_name = people.handle(rng, name, user_number)
    body = f"{text.sentence(rng, topic)} Loving it with @{tag}. " + " ".join("#" + h for h in hashtags)
    return {
        "id_str": str(status_id),
        "full_text": f"RT @{screen_name}: {body}" if retweeted else body,
        "created_at": _twitter_time(midnight + timedelta(seconds=rng.randrange(86400))),
        "lang": rng.choice(_LANGS),
        "user": {
            "id_str": str(10**9 + user_number),
            "screen_name": screen_name,
            "name": name,
            "followers_count": int(rng.paretovariate(1.1) * 80),
            "verified": rng.random() < 0.03,
        },
        "entities": {"hashtags": [{"text": h} for h in hashtags]},
        "retweeted": retweeted,
        "retweet_count": int(rng.lognormvariate(2.0, 1.8)),
        "favorite_count": int(rng.lognormvariate(3.0, 1.8)),
    }


def _response(statuses: Sequence[dict]) -> dict:
    # statuses goes last: a trailing-comma fault is injected before the document's final "]".
    return {
        "search_metadata": {
            "count": len(statuses),
            "max_id_str": statuses[-1]["id_str"] if statuses else "0",
            "since_id_str": statuses[0]["id_str"] if statuses else "0",
            "query": "brand mentions",
        },
        "statuses": list(statuses),
    }


def generate(run: Run) -> SourceReport:
    report = SourceReport(run)
    grow, more = split_scale(run.scale, FILE_GROWTH_CAP)
    per_day, per_file = FILES_PER_DAY * more, STATUSES_PER_FILE * grow
    rates = {kind: getattr(run.rates, kind) for kind in JSON_FILE_FAULTS}
    broken = assign(rng_for(run.seed, SOURCE, "plan"), run.days * per_day, rates)
    retweeted = 0
    for day_index, day in enumerate(run.dates):
        part = report.partition(day.isoformat())
        midnight = datetime(day.year, day.month, day.day)
        for f in range(per_day):
            rng = rng_for(run.seed, SOURCE, day.isoformat(), f)
            first_id = 1_850_000_000_000_000_000 + (day_index * per_day + f) * per_file
            statuses = [status(rng, first_id + j, midnight) for j in range(per_file)]
            kind = broken.get(day_index * per_day + f)
            rel = f"x/tweets/date={day.isoformat()}/search-{f:04d}.json"
            write_bytes(run.out / rel, render_json_file(rng, kind, statuses, _response, STATUSES_PER_LINE))
            if account_json_file(report, part, rel, kind, len(statuses)):
                retweeted += sum(status["retweeted"] for status in statuses)
    report.expect = {"retweeted": retweeted}
    return report
