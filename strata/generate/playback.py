"""video_playback: player events of the video service as a stream consumer dumps them.

The consumer flushes a dump every `DUMP_RECORDS` records or `DUMP_HOURS` of event time (10,000 records or an
hour in production, scaled down to the sample's volume) to `stream/playback/<uuid>.json` (a JSON array) or
`.jsonl` (JSON lines), some gzipped; a window open at midnight spans two days. Delivery is at least once: after
some flushes the consumer restarts from an older offset, so the next dump repeats the previous dump's last
records; one dump is written twice under two names. A few records lose their event time.

The manifest states what the splitter and bronze must end with: the dumps' records (partition `all`, with the
records set aside for no event time), each day's part records, rows and `duplicate_record`s, and per day the
distinct events, starts, completions and viewers for silver and gold.
"""

from __future__ import annotations

import gzip
import hashlib
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import orjson

from strata.generate.core import Run, mix, rng_for, write_bytes
from strata.generate.manifest import SourceReport
from strata.generate.video import CONTENT, USERS, content_duration, content_id

SOURCE = "video_playback"
FOLDER = "stream/playback"
SESSIONS_PER_DAY = 120  # at scale 1
DUMP_RECORDS = 400
DUMP_HOURS = 6
REPLAY_EVERY = 3  # every third flush is followed by a restart from an older offset
REPLAY_RECORDS = 5
# Positions (shares of the content's duration) a player reports progress at.
PROGRESS_AT = (0.25, 0.5, 0.75)
COMPLETE_SHARE = 0.9
_DEVICES = ("tv", "mobile", "web", "tablet")


def _sessions(run: Run) -> list[dict]:
    """Every event of the sample's playback sessions, in event-time order. The last day's sessions end by its
    midnight, so every event falls on one of the sample's days."""
    end = datetime.combine(run.dates[-1] + timedelta(days=1), datetime.min.time(), UTC)
    events = []
    for day in run.dates:
        rng = rng_for(run.seed, SOURCE, day.isoformat())
        midnight = datetime.combine(day, datetime.min.time(), UTC)
        for index in range(SESSIONS_PER_DAY * run.scale):
            session = f"pbs_{day:%Y%m%d}_{index:05d}"
            item = rng.randrange(CONTENT * run.scale)
            duration = content_duration(run, item)
            watched = max(1, int(duration * rng.betavariate(2, 1.3)))
            started = midnight + timedelta(seconds=rng.randrange(86_400))
            started = min(started, end - timedelta(seconds=watched + 1))
            common = {
                "session_id": session,
                "user_id": f"usr_{rng.randrange(USERS * run.scale):07d}",
                "content_id": content_id(item),
                "device": rng.choice(_DEVICES),
            }
            marks = [("start", 0)]
            marks += [
                ("progress", int(duration * share)) for share in PROGRESS_AT if duration * share <= watched
            ]
            marks.append(("complete" if watched >= COMPLETE_SHARE * duration else "stop", watched))
            for number, (kind, position) in enumerate(marks):
                moment = started + timedelta(seconds=position)
                events.append(
                    {
                        "event_id": f"{session}_{number}",
                        **common,
                        "event_type": kind,
                        "position_seconds": position,
                        "event_time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    }
                )
    events.sort(key=lambda event: (event["event_time"], event["event_id"]))
    rng = rng_for(run.seed, SOURCE, "no_event_time")
    for event in events:
        if rng.random() < run.rates.playback_no_event_time:
            event["event_time"] = None
    return events


def _dumps(run: Run, events: list[dict]) -> list[list[dict]]:
    """The consumer's flushes: a dump closes at DUMP_RECORDS records or DUMP_HOURS after its first record; after
    every REPLAY_EVERY-th flush the next dump starts again REPLAY_RECORDS records back."""
    dumps: list[list[dict]] = []
    current: list[dict] = []
    opened = None
    for event in events:
        moment = event["event_time"] or (current[-1]["event_time"] if current else None)
        if moment and opened is None:
            opened = datetime.fromisoformat(moment)
        if current and (
            len(current) >= DUMP_RECORDS
            or (moment and datetime.fromisoformat(moment) - opened >= timedelta(hours=DUMP_HOURS))
        ):
            dumps.append(current)
            current = dumps[-1][-REPLAY_RECORDS:] if len(dumps) % REPLAY_EVERY == 0 else []
            opened = datetime.fromisoformat(moment)
        current.append(event)
    if current:
        dumps.append(current)
    return dumps


def _uuid(run: Run, *parts: object) -> str:
    digest = f"{mix(run.seed, SOURCE, *parts):016x}{mix(run.seed, SOURCE, 'tail', *parts):016x}"
    return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def _encode(records: list[dict], *, lines: bool, gz: bool) -> bytes:
    if lines:
        data = b"".join(orjson.dumps(record) + b"\n" for record in records)
    else:
        data = orjson.dumps(records, option=orjson.OPT_INDENT_2)
    return gzip.compress(data, mtime=0) if gz else data


def _day(event: dict) -> str | None:
    return event["event_time"][:10] if event["event_time"] else None


def generate(run: Run) -> SourceReport:
    report = SourceReport(run)
    dumps = _dumps(run, _sessions(run))
    dump_part = report.partition("all")
    seen_events: set[str] = set()
    seen_parts: set[str] = set()
    per_day: dict[str, dict] = defaultdict(
        lambda: {"events": 0, "starts": 0, "completes": 0, "viewers": set()}
    )
    spanning = repeated = 0
    written: list[str] = []
    for index, records in enumerate(dumps):
        lines, gz = index % 3 == 2, index % 7 == 5
        rel = f"{FOLDER}/{_uuid(run, index)}.json{'l' if lines else ''}{'.gz' if gz else ''}"
        write_bytes(run.out / rel, _encode(records, lines=lines, gz=gz))
        report.add_file(rel, len(records))
        written.append(rel)
        dump_part.records_read += len(records)
        by_day: dict[str, list[dict]] = defaultdict(list)
        for record in records:
            day = _day(record)
            if day is None:
                dump_part.quarantined["no_event_time"] += 1
                dump_part.faults["playback_no_event_time"] += 1
                continue
            by_day[day].append(record)
            dump_part.split_into_days += 1
        spanning += len(by_day) > 1
        for day, kept in by_day.items():
            # The splitter writes each day's records as canonical JSON lines: a part with the same bytes as an
            # earlier part is a duplicate file, never read.
            part_bytes = b"".join(orjson.dumps(record) + b"\n" for record in kept)
            digest = hashlib.sha256(part_bytes).hexdigest()
            if digest in seen_parts:
                continue
            seen_parts.add(digest)
            part = report.partition(day)
            for record in kept:
                if record["event_id"] in seen_events:
                    part.quarantine("duplicate_record")
                    part.faults["repeated_delivery"] += 1
                    repeated += 1
                    continue
                seen_events.add(record["event_id"])
                part.loaded()
                part.distinct_keys += 1
                truth = per_day[day]
                truth["events"] += 1
                truth["starts"] += record["event_type"] == "start"
                truth["completes"] += record["event_type"] == "complete"
                truth["viewers"].add(record["user_id"])
    # The consumer wrote one flush twice, under a second name: the same bytes, ledgered as a duplicate.
    # Files are registered in path order, so the copy's name sorts after the original's.
    original = written[len(written) // 2]
    attempt = 0
    while (again := f"{FOLDER}/{_uuid(run, 'again', attempt)}{original[len(FOLDER) + 1 + 36 :]}") < original:
        attempt += 1
    write_bytes(run.out / again, (run.out / original).read_bytes())
    report.add_file(again, 0, duplicate_of=original)
    report.partition("all").faults["resent_dump"] += 1
    report.expect = {
        "dumps": len(dumps),
        "dumps_spanning_two_days": spanning,
        "repeated_records": repeated,
        "per_day": {
            day: {**truth, "viewers": len(truth["viewers"])} for day, truth in sorted(per_day.items())
        },
    }
    return report
