"""image_labels: what a vision service saw in the posts' media, as the Influential pipeline's image_recognition
table kept it: per media item (network, post_id, media_index) a few labels with a confidence and a bounding-box
count, from one model version, landed by labelling day as `social/image_labels/date=<day>/labels-<model>.jsonl`.

A share of the drop's media is labelled on the day it was posted by model `OLD_MODEL`; some of those are labelled
again two days later by `NEW_MODEL` (other labels: only the newer model's count); a few labels name media no
post of the drop carries (posts not scraped yet). The version numbers compare as numbers, not as text: 2.10.0
is newer than 2.9.1.

The manifest states the labels silver keeps (the latest model's, per media), how many name unknown media, and per
network and day of posting the label with the most engagement (interactions of the posts showing it).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import orjson

from strata.generate.core import Run, rng_for, write_bytes
from strata.generate.manifest import SourceReport
from strata.generate.posts import Media

SOURCE = "image_labels"
OLD_MODEL = "2.9.1"
NEW_MODEL = "2.10.0"
LABELLED_SHARE = 0.3
RELABELLED_SHARE = 0.2
UNKNOWN_SHARE = 0.03
# What the vision service may see, by the post's topic, and anywhere.
_SEEN = {
    "pets": ("dog", "cat", "leash", "park"),
    "cooking": ("pasta", "kitchen", "plate", "knife"),
    "fitness": ("dumbbell", "running shoe", "gym", "yoga mat"),
    "travel": ("beach", "mountain", "suitcase", "airplane"),
    "gaming": ("controller", "monitor", "headset", "keyboard"),
    "beauty": ("lipstick", "mirror", "brush", "face"),
    "music": ("guitar", "microphone", "stage", "piano"),
    "tech": ("laptop", "phone", "circuit board", "monitor"),
    "finance": ("chart", "coins", "calculator", "laptop"),
    "fashion": ("dress", "sneaker", "handbag", "jacket"),
    "sports": ("ball", "stadium", "jersey", "bicycle"),
    "parenting": ("baby", "stroller", "toy", "dog"),
}
_ANYWHERE = ("person", "text", "outdoor", "indoor")


def _labels(
    rng, topic: str, model: str, labelled_at: datetime, network: str, post_id: str, index: int
) -> list:
    seen = rng.sample(_SEEN[topic], rng.randint(1, 3)) + rng.sample(_ANYWHERE, rng.randint(0, 1))
    return [
        {
            "network": network,
            "post_id": post_id,
            "media_index": index,
            "label": label,
            "confidence": round(rng.uniform(0.5, 0.99), 3),
            "bounding_boxes": rng.randint(0, 5),
            "model_version": model,
            "labeled_at": labelled_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        for label in seen
    ]


def generate(run: Run, posts: SourceReport) -> SourceReport:
    report = SourceReport(run)
    rng = rng_for(run.seed, SOURCE)
    files: dict[tuple[str, str], list[dict]] = defaultdict(list)  # (day, model) → labels
    latest: dict[tuple[str, str, int], list[dict]] = {}  # media → the newest model's labels
    known: dict[tuple[str, str], Media] = {}
    last_day = run.dates[-1]
    for media in posts.shared["media"]:
        known[(media.network, media.post_id)] = media
        for index in range(media.items):
            if rng.random() >= LABELLED_SHARE:
                continue
            at = datetime.combine(media.day, datetime.min.time(), UTC) + timedelta(
                hours=23, minutes=rng.randrange(59)
            )
            labels = _labels(rng, media.topic, OLD_MODEL, at, media.network, media.post_id, index)
            files[(media.day.isoformat(), OLD_MODEL)] += labels
            latest[(media.network, media.post_id, index)] = labels
            if rng.random() < RELABELLED_SHARE:
                again = min(media.day + timedelta(days=2), last_day)
                at = datetime.combine(again, datetime.min.time(), UTC) + timedelta(hours=23, minutes=30)
                labels = _labels(rng, media.topic, NEW_MODEL, at, media.network, media.post_id, index)
                files[(again.isoformat(), NEW_MODEL)] += labels
                latest[(media.network, media.post_id, index)] = labels
                report.partition(again.isoformat()).faults["relabelled_media"] += 1
            if rng.random() < UNKNOWN_SHARE:
                # A post the scraper has not brought in yet: its media are unknown to silver.
                ghost = f"{media.post_id}_later{index}"
                at = datetime.combine(media.day, datetime.min.time(), UTC) + timedelta(hours=23, minutes=59)
                labels = _labels(rng, media.topic, OLD_MODEL, at, media.network, ghost, 0)
                files[(media.day.isoformat(), OLD_MODEL)] += labels
                latest[(media.network, ghost, 0)] = labels
                report.partition(media.day.isoformat()).faults["labels_for_unknown_media"] += 1
    for (day, model), labels in sorted(files.items()):
        rel = f"social/image_labels/date={day}/labels-{model}.jsonl"
        write_bytes(run.out / rel, b"".join(orjson.dumps(label) + b"\n" for label in labels))
        part = report.partition(day)
        part.loaded(len(labels))
        part.distinct_keys += len(labels)
        report.add_file(rel, len(labels))

    engagement: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(lambda: [set(), 0]))
    unknown = 0
    for (network, post_id, _), labels in latest.items():
        media = known.get((network, post_id))
        if media is None:
            unknown += len(labels)
            continue
        for label in labels:
            posts_seen, _ = entry = engagement[f"{media.day.isoformat()}|{network}"][label["label"]]
            if post_id not in posts_seen:
                posts_seen.add(post_id)
                entry[1] += media.interactions
    report.expect = {
        "latest_labels": sum(len(labels) for labels in latest.values()),
        "labels_for_unknown_media": unknown,
        "relabelled_media": sum(part.faults["relabelled_media"] for part in report.partitions.values()),
        # Per day of posting and network: the label whose posts have the most interactions (ties: by name).
        "top_label": {
            key: min(by_label.items(), key=lambda item: (-item[1][1], item[0]))[0]
            for key, by_label in sorted(engagement.items())
        },
        "posts_by_label": {
            label: len({p for by_label in engagement.values() for p in by_label.get(label, [set()])[0]})
            for label in sorted({label for by_label in engagement.values() for label in by_label})
        },
    }
    return report
