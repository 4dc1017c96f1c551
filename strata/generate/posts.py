"""social_posts: JSON lines per (network, date) partition, with the scraper faults the loader must survive.

Everything the manifest states is counted while writing, never by holding keys: a post's duplicates are
decided when the post is made, so the latest version of every post is known by construction. Duplicate
lines go later in the same file or into the partition's next file; nothing crosses a partition.
"""

from __future__ import annotations

import heapq
import shutil
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from random import Random
from typing import IO, NamedTuple

import orjson

from strata.generate import accounts, text
from strata.generate.core import Run, assign, gzip_bytes, mix, open_out, rng_for, write_bytes
from strata.generate.faults import count_string, malformed_line, truncate_gzip
from strata.generate.manifest import Partition, SourceReport
from strata.generate.networks import MEASURES, NETWORKS, Network

SOURCE = "social_posts"
PART_ROWS = 50_000  # posts per part file before the partition is split further
TRUNCATED_FILE_POSTS = 40
MAX_DUPLICATE_DELAY = 20  # a within-file duplicate lands at most this many lines after its original

_CAMEL = {
    "like_count": "likeCount",
    "comment_count": "commentCount",
    "share_count": "shareCount",
    "view_count": "viewCount",
    "play_count": "playCount",
    "retweet_count": "retweetCount",
    "media_count": "mediaCount",
    "created_at": "createdAt",
}
_MEDIA_KEY_VARIANTS = {
    "media_type": ("mediaType", "Media_Type", "MEDIA_TYPE", "MediaType"),
    "thumbnail_url": ("thumbnailUrl", "Thumbnail_URL", "ThumbnailUrl"),
    "content_url": ("contentUrl", "Content_Url", "contentURL"),
}
_SOUNDS = ("original sound", "Espresso remix", "lofi study beats", "viral dance loop", "sped up chorus")


# What silver counts as a post's interactions (likes + comments + shares).
INTERACTIONS = ("likes", "comments", "shares")


class Media(NamedTuple):
    """A post as deduplication keeps it, for the sources that refer to its media (image_labels)."""

    network: str
    post_id: str
    day: date
    items: int
    topic: str
    interactions: int


class _Post:
    __slots__ = ("post_id", "topic", "record", "values", "scraped", "media_rows", "mismatch", "missing_type")

    def __init__(self, post_id: str, topic: str, record: dict, values: dict, scraped: datetime) -> None:
        self.post_id, self.topic, self.record, self.values, self.scraped = (
            post_id,
            topic,
            record,
            values,
            scraped,
        )
        self.media_rows = len(record["media"])
        self.mismatch = record["media_count"] != self.media_rows
        self.missing_type = sum(1 for item in record["media"] if item.get("media_type") is None)


class _Lines:
    """Writes lines to one file, releasing delayed duplicates once enough lines have gone by."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh, self.count, self.delayed, self.pushed = fh, 0, [], 0

    def emit(self, line: bytes) -> None:
        self.fh.write(line)
        self.count += 1
        while self.delayed and self.delayed[0][0] <= self.count:
            self.fh.write(heapq.heappop(self.delayed)[2])
            self.count += 1

    def later(self, line: bytes, after: int) -> None:
        self.pushed += 1
        heapq.heappush(self.delayed, (self.count + after, self.pushed, line))

    def flush(self) -> None:
        while self.delayed:
            self.fh.write(heapq.heappop(self.delayed)[2])
            self.count += 1


class _PartitionWriter:
    def __init__(self, run: Run, report: SourceReport, net: Network, day_index: int) -> None:
        self.run, self.net, self.day_index = run, net, day_index
        self.day = run.dates[day_index]
        self.key = f"{self.day.isoformat()}|{net.name}"
        self.dir = f"social/posts/network={net.name}/date={self.day.isoformat()}"
        self.part: Partition = report.partition(self.key)
        self.report = report
        self.midnight = datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC)
        self.id_stem = f"{net.prefix}_{self.day:%y%m%d}"
        self.next_id = 0
        self.expect: Counter[str] = Counter()
        self.topics: dict[str, list[str]] = {}

    # -- making and rendering posts ------------------------------------------------------------------

    def _account(self, rng: Random) -> str:
        n = accounts.account_count(self.run)
        index = rng.randrange(n)
        while not accounts.alive(self.run, self.net.name, index, self.day_index):
            index = (index + 1) % n
        return accounts.account_id(self.net.name, index)

    def _media(self, rng: Random, post_id: str) -> list[dict]:
        name = self.net.name
        if name in ("youtube", "tiktok"):
            kinds = ["video"]
        elif name == "instagram":
            kinds = ["image"] if rng.random() < 0.5 else ["carousel_item"] * rng.randint(2, 6)
        elif name == "facebook":
            kinds = ["video"] if rng.random() < 0.2 else ["image"] * rng.randint(0, 3)
        elif name == "snapchat":
            kinds = [rng.choice(("image", "video"))]
        else:
            kinds = ["image"] * (rng.randint(1, 4) if rng.random() < 0.4 else 0)
        cdn = f"https://cdn.{name}.example/{post_id}"
        media = []
        for k, kind in enumerate(kinds):
            ext = (
                "mp4"
                if kind == "video" or (kind == "carousel_item" and rng.random() < 0.3)
                else rng.choice(("jpg", "png"))
            )
            media.append(
                {
                    "media_type": kind,
                    "thumbnail_url": f"{cdn}/{k}_thumb.jpg",
                    "content_url": f"{cdn}/{k}.{ext}",
                }
            )
        return media

    def _make(self, rng: Random) -> _Post:
        rates, net = self.run.rates, self.net
        post_id = f"{self.id_stem}{self.next_id:07d}"
        self.next_id += 1
        topic = rng.choice(text.TOPIC_NAMES)
        created = self.midnight + timedelta(seconds=rng.randrange(86400))
        caption, hashtags = text.caption(rng, topic)
        views = int(rng.lognormvariate(net.view_mu, 1.6))
        likes = int(views * rng.uniform(0.01, 0.12))
        values = {
            "likes": likes,
            "comments": int(likes * rng.uniform(0.01, 0.1)),
            "shares": int(likes * rng.uniform(0.005, 0.2)),
            "views": views,
        }
        media = self._media(rng, post_id)
        if media and rng.random() < rates.media_missing_type:
            item = rng.choice(media)
            if rng.random() < 0.5:
                del item["media_type"]
            else:
                item["media_type"] = None
        media_count = len(media)
        if rng.random() < rates.media_count_mismatch:
            # The network's own count: carousels cut short by the scraper, or removed items.
            media_count = len(media) + (rng.randint(1, 3) if not media or rng.random() < 0.6 else -1)
        record = {
            "post_id": post_id,
            "network": net.name,
            "account_id": self._account(rng),
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            net.text_key: caption,
            "hashtags": hashtags,
            "topic": topic,
            "media_count": media_count,
            "media": media,
        }
        record.update(self._extras(rng, topic, values, media))
        return _Post(
            post_id, topic, record, values, created + timedelta(seconds=rng.randrange(600, 2 * 86400))
        )

    def _extras(self, rng: Random, topic: str, values: dict, media: list[dict]) -> dict:
        name = self.net.name
        if name == "youtube":
            return {
                "title": text.title(rng, topic),
                "description": text.description(rng, topic, 2),
                "duration_seconds": rng.randint(30, 3600),
            }
        if name == "tiktok":
            return {"sound": f"{rng.choice(_SOUNDS)} - {rng.choice(text.TOPICS[topic][3])}"}
        if name == "instagram":
            return {"is_reel": any(item.get("content_url", "").endswith(".mp4") for item in media)}
        if name == "facebook":
            likes = values["likes"]
            love, haha, wow = (int(likes * rng.uniform(0.0, 0.15)) for _ in range(3))
            return {
                "reactions": {
                    "like": likes,
                    "love": love,
                    "haha": haha,
                    "wow": wow,
                    "sad": rng.randint(0, 5),
                    "angry": rng.randint(0, 3),
                }
            }
        if name == "snapchat":
            return {"story_views": int(values["views"] * rng.uniform(0.3, 1.2))}
        return {}

    def _render(
        self, rng: Random, post: _Post, values: dict, scraped: datetime
    ) -> tuple[bytes, dict, list[str]]:
        """One scrape of a post as a JSON line; returns the line, the true counts it states, its faults."""
        rates, keys = self.run.rates, self.net.count_keys
        record = dict(post.record)
        record["scraped_at"] = scraped.strftime("%Y-%m-%dT%H:%M:%SZ")
        values = dict(values)
        kinds = []
        for measure in MEASURES:
            record[keys[measure]] = values[measure]
        if rng.random() < rates.count_as_string:
            for measure in rng.sample(MEASURES, rng.randint(1, 2)):
                record[keys[measure]], values[measure] = count_string(rng, values[measure])
            kinds.append("count_as_string")
        if rng.random() < rates.key_case_variant:
            record = {_CAMEL.get(key, key): value for key, value in record.items()}
            record["media"] = [
                {rng.choice(_MEDIA_KEY_VARIANTS[key]): value for key, value in item.items()}
                for item in record["media"]
            ]
            kinds.append("key_case_variant")
        if rng.random() < rates.unknown_field:
            record.update(
                rng.choice(
                    (
                        {
                            "geo": {
                                "lat": round(rng.uniform(-60, 70), 4),
                                "lon": round(rng.uniform(-180, 180), 4),
                            }
                        },
                        {"is_sponsored": rng.random() < 0.5},
                        {"scraper_version": f"4.{rng.randint(0, 9)}.{rng.randint(0, 20)}"},
                        {"collab_account_ids": [f"{self.net.prefix}_acc{rng.randrange(10**6):06d}"]},
                    )
                )
            )
            kinds.append("unknown_field")
        return orjson.dumps(record) + b"\n", values, kinds

    # -- bookkeeping --------------------------------------------------------------------------------

    def _loaded(self, kinds: list[str]) -> None:
        self.part.loaded()
        self.part.faults.update(kinds)

    def _account_latest(self, post: _Post, values: dict) -> None:
        """Count a post once, by the version that wins deduplication."""
        self.part.distinct_keys += 1
        for measure in MEASURES:
            self.expect[measure] += values[measure]
        self.expect["media_rows"] += post.media_rows
        self.expect["media_count_mismatches"] += post.mismatch
        self.expect["media_missing_type"] += post.missing_type
        self.part.faults["media_count_mismatch"] += post.mismatch
        self.part.faults["media_missing_type"] += post.missing_type
        self.report.shared["media"].append(
            Media(
                self.net.name,
                post.post_id,
                self.day,
                post.media_rows,
                post.topic,
                sum(values[m] for m in INTERACTIONS),
            )
        )
        if self.run.small:
            self.topics.setdefault(post.topic, []).append(post.post_id)

    # -- files --------------------------------------------------------------------------------------

    def write(self, *, gz: bool, truncated: bool, empty: bool, resend: bool) -> None:
        ext = ".jsonl.gz" if gz else ".jsonl"
        total = self.net.posts_per_day * self.run.scale
        n_parts = max(2, -(-total // PART_ROWS))
        carry: list[bytes] = []
        for p in range(n_parts):
            rel = f"{self.dir}/part-{p:04d}{ext}"
            carry = self._write_part(
                rel,
                rng_for(self.run.seed, SOURCE, self.key, p),
                carry,
                gz=gz,
                size=total // n_parts + (p < total % n_parts),
                last=p == n_parts - 1,
            )
        if truncated:
            self._write_truncated(f"{self.dir}/part-{n_parts:04d}.jsonl.gz")
        if empty:
            rel = f"{self.dir}/part-{n_parts + 1:04d}.jsonl"
            write_bytes(self.run.out / rel, b"")
            self.report.add_file(rel, 0)
            self.part.faults["empty_file"] += 1
        if resend:
            # Sorts after the original, so the first-seen copy by path order is the original.
            original, copy = f"{self.dir}/part-0000{ext}", f"{self.dir}/resend-part-0000{ext}"
            shutil.copyfile(self.run.out / original, self.run.out / copy)
            self.report.add_file(copy, 0, duplicate_of=original)
            self.part.faults["duplicate_file"] += 1

    def _write_part(
        self, rel: str, rng: Random, carry: list[bytes], *, gz: bool, size: int, last: bool
    ) -> list[bytes]:
        rates = self.run.rates
        next_carry: list[bytes] = []
        with open_out(self.run.out / rel, gz=gz) as fh:
            lines = _Lines(fh)
            for line in carry:
                lines.emit(line)
            for _ in range(size):
                post = self._make(rng)
                line, latest, kinds = self._render(rng, post, post.values, post.scraped)
                if rng.random() < rates.malformed_json:
                    lines.emit(malformed_line(rng, line))
                    self.part.quarantine("malformed_json")
                    self.part.faults["malformed_json"] += 1
                lines.emit(line)
                self._loaded(kinds)
                duplicates = []
                if rng.random() < rates.rescrape_duplicate:
                    bumped = {
                        m: v + int(v * rng.uniform(0.05, 0.5)) + rng.randint(1, 50) for m, v in latest.items()
                    }
                    rescraped = post.scraped + timedelta(seconds=rng.randrange(3600, 2 * 86400))
                    rescrape_line, latest, rescrape_kinds = self._render(rng, post, bumped, rescraped)
                    duplicates.append((rescrape_line, [*rescrape_kinds, "rescrape_duplicate"]))
                if rng.random() < rates.exact_duplicate:
                    duplicates.append((line, [*kinds, "exact_duplicate"]))
                for duplicate, duplicate_kinds in duplicates:
                    if duplicate == line:
                        # Byte-identical within the partition: bronze keeps the first, quarantines the rest.
                        self.part.quarantine("duplicate_record")
                        self.part.faults.update(duplicate_kinds)
                    else:
                        self._loaded(duplicate_kinds)
                    if not last and rng.random() < 0.5:
                        next_carry.append(duplicate)
                    else:
                        lines.later(duplicate, rng.randint(1, MAX_DUPLICATE_DELAY))
                self._account_latest(post, latest)
            lines.flush()
        self.report.add_file(rel, lines.count)
        return next_carry

    def _write_truncated(self, rel: str) -> None:
        """A gzip part cut short in transit. Held in memory: it has a fixed, small number of posts, none
        of which is duplicated elsewhere, so exactly the posts before the cut survive."""
        rng = rng_for(self.run.seed, SOURCE, self.key, "truncated")
        entries: list[tuple[bytes, _Post | None, dict, list[str]]] = []
        for _ in range(TRUNCATED_FILE_POSTS):
            post = self._make(rng)
            line, values, kinds = self._render(rng, post, post.values, post.scraped)
            # Boosted so that the readable head of a truncated file usually has malformed lines too.
            if rng.random() < self.run.rates.malformed_json * 5:
                entries.append((malformed_line(rng, line), None, {}, []))
            entries.append((line, post, values, kinds))
        data, complete = truncate_gzip(rng, gzip_bytes(b"".join(entry[0] for entry in entries)))
        write_bytes(self.run.out / rel, data)
        for _, post, values, kinds in entries[:complete]:
            if post is None:
                self.part.quarantine("malformed_json")
                self.part.faults["malformed_json"] += 1
            else:
                self._loaded(kinds)
                self._account_latest(post, values)
        self.part.quarantine("truncated_gzip")
        self.part.faults["truncated_gzip"] += 1
        self.report.add_file(rel, complete + 1)


def generate(run: Run) -> SourceReport:
    report = SourceReport(run)
    report.shared["media"] = []
    cells = [(day_index, net) for day_index in range(run.days) for net in NETWORKS]
    plan = rng_for(run.seed, SOURCE, "plan")
    picked = {
        kind: set(assign(plan, len(cells), {kind: getattr(run.rates, kind)}))
        for kind in ("truncated_gzip", "empty_file", "duplicate_file")
    }
    expect: dict[str, dict] = {}
    topics: dict[str, list[str]] = {}
    for i, (day_index, net) in enumerate(cells):
        writer = _PartitionWriter(run, report, NETWORKS[net], day_index)
        writer.write(
            gz=mix(run.seed, SOURCE, writer.key, "gzip") % 3 == 0,
            truncated=i in picked["truncated_gzip"],
            empty=i in picked["empty_file"],
            resend=i in picked["duplicate_file"],
        )
        expect[writer.key] = {
            measure: writer.expect[measure]
            for measure in (*MEASURES, "media_rows", "media_count_mismatches", "media_missing_type")
        }
        for topic, ids in writer.topics.items():
            topics.setdefault(topic, []).extend(ids)
    report.expect = {"partitions": expect}
    if run.small:
        report.expect["topics"] = {topic: sorted(ids) for topic, ids in sorted(topics.items())}
    return report
