"""The landed sources, one configuration entry each. Every bronze asset, table, sensor and check is derived
from these entries by the factory; adding a source means adding an entry here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import dagster as dg

from assets.bronze.contracts import Contract
from assets.partitions import NETWORKS, PARTITIONS_DEFS, Key, Partitioning, key_for

Format = Literal["jsonl", "json", "csv"]


@dataclass(frozen=True)
class Field:
    """A column extracted from each record next to the raw JSONB. Extraction is lenient: a value that does
    not convert to `pg_type` is stored as NULL (the raw record keeps it), so drift never breaks a load."""

    column: str
    pg_type: Literal["text", "int8", "float8", "bool", "timestamptz", "date"]
    aliases: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.column, *self.aliases)


@dataclass(frozen=True)
class EventDumps:
    """Files a stream consumer writes with no date in their name (`stream/<topic>/<uuid>.json`, a JSON array, or
    `.jsonl`, JSON lines; gzip allowed), each holding records of any days. On arrival a dump is split by the
    event time of its records into one part per day, `<topic>/date=<day>/<dump name>.jsonl`, which the
    source's daily patterns then load like any landed file (assets.bronze.dumps)."""

    patterns: tuple[str, ...]
    event_time: Field

    def matches(self, relative_path: str) -> bool:
        return any(_compile(pattern).fullmatch(relative_path) for pattern in self.patterns)


@dataclass(frozen=True)
class Embedded:
    """Objects an API page carries once beside its records (X API v2's `includes.users`): each record gets the
    object it references embedded under `embed_as`, so a bronze row stands on its own. On such pages a page
    without `record_path` (an empty result) holds no records."""

    includes: tuple[str, ...]  # the path to the list of objects in the page
    key: str  # the objects' identifier
    reference: str  # the record's field naming one
    embed_as: str

    def embed(self, page: dict, records: list) -> list:
        objects = page
        for step in self.includes:
            objects = objects.get(step) if isinstance(objects, dict) else None
        by_key = (
            {o.get(self.key): o for o in objects if isinstance(o, dict)} if isinstance(objects, list) else {}
        )
        return [
            {**r, self.embed_as: by_key[r[self.reference]]}
            if isinstance(r, dict) and r.get(self.reference) in by_key
            else r
            for r in records
        ]


@dataclass(frozen=True)
class Source:
    name: str
    domain: str
    description: str
    patterns: tuple[str, ...]
    format: Format
    partitioning: Partitioning
    natural_key: tuple[str, ...]
    fields: tuple[Field, ...]
    # JSON documents: the key holding the list of records ("" = the document is the list / the record).
    record_path: str = ""
    mirror_to_mongo: bool = False
    quarantine_warn_rate: float = 0.05
    # (warn, fail) hours without a materialization, for a source that delivers on its own cadence (a daily
    # snapshot); None keeps the default every asset gets (assets.observability.freshness).
    freshness_hours: tuple[float, float] | None = None
    # A stream's dumps, split into the daily files of `patterns` by the event time of their records.
    dumps: EventDumps | None = None
    # API pages (JSON documents, records under `record_path`): the objects they include once, embedded per record.
    embedded: Embedded | None = None
    # The extraction asset that lands this source's files (`landing/...`), None for files senders drop. A pulled
    # source delivers only where its extraction is configured: what is built from it does not wait for its data.
    pulled_by: str | None = None
    # What a record breaching the known schema does (assets.bronze.contracts): evolve, freeze, discard_row,
    # discard_value. The default keeps schema-on-read: new fields and types are recorded and reported, never refused.
    contract: Contract = "evolve"

    @property
    def configured_names(self) -> tuple[str, ...]:
        """The top-level names the entry declares (fields and their aliases): known to the contract from the start."""
        return tuple(name for f in self.fields for name in f.names)

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(["bronze", self.name])

    @property
    def has_snapshot_folders(self) -> bool:
        """Full loads land in folders named for their start (`{snapshot}`): a reload re-sends every unchanged
        row, and each must stay with its snapshot, so a record repeats another only within its folder."""
        return any("{snapshot}" in pattern for pattern in self.patterns)

    @property
    def folders(self) -> tuple[str, ...]:
        """The landing folders this source's files live under (the sensor scans only these)."""
        patterns = (*self.patterns, *self._dump_patterns)
        return _outermost({p.split("{")[0].split("*")[0].rsplit("/", 1)[0] for p in patterns})

    @property
    def _dump_patterns(self) -> tuple[str, ...]:
        return self.dumps.patterns if self.dumps else ()

    @property
    def partitions_def(self) -> dg.PartitionsDefinition | None:
        return PARTITIONS_DEFS[self.partitioning]

    @property
    def partition_columns(self) -> tuple[tuple[str, str], ...]:
        """Typed columns carrying the partition, taken from the file's path (the landing contract)."""
        if self.partitioning == "daily":
            return (("partition_date", "date"),)
        if self.partitioning == "date_network":
            return (("partition_date", "date"), ("partition_network", "text"))
        return ()

    def partition_folders(self, partition_key: str | None) -> tuple[str, ...]:
        """The landing folders one partition's files live under: a run of one partition scans only these, not
        the source's whole history. A stream's dumps may hold any day's records, so their folder is scanned too."""
        if self.partitioning == "none" or partition_key is None:
            return self.folders
        values = Key.parse(partition_key).values()
        folders = set()
        for pattern in (*self.patterns, *self._dump_patterns):
            head = pattern.rsplit("/", 1)[0]
            try:
                folder = head.format(**values)
            except KeyError:  # a partition value only in the file name: the whole folder
                folder = head.split("{")[0].rstrip("/")
            folders.add(folder.split("*")[0].rstrip("/"))
        return _outermost(folders)

    def match(self, relative_path: str) -> dict[str, str] | None:
        """The partition values encoded in a landed path, or None if the path is not one of this source's."""
        for pattern in self.patterns:
            found = _compile(pattern).fullmatch(relative_path)
            if found:
                values = found.groupdict()
                compact = values.pop("yyyymmdd", None)
                if compact:
                    values["date"] = f"{compact[:4]}-{compact[4:6]}-{compact[6:]}"
                return values
        return None

    def partition_key(self, values: dict[str, str]) -> str | None:
        return key_for(self.partitioning, values.get("date", ""), values.get("network"))

    def partition_values(self, partition_key: str | None) -> tuple[object, ...]:
        """The typed partition-column values of a Dagster partition key (same order as partition_columns)."""
        if self.partitioning == "none" or partition_key is None:
            return ()
        key = Key.parse(partition_key)
        return (key.date,) if self.partitioning == "daily" else (key.date, key.network)


def _outermost(folders: set[str]) -> tuple[str, ...]:
    """The folders not inside another of them (a scan of a folder covers its subfolders)."""
    return tuple(sorted(f for f in folders if not any(f != o and f.startswith(o + "/") for o in folders)))


def _compile(pattern: str) -> re.Pattern[str]:
    """`{date}` → a YYYY-MM-DD group, `{yyyymmdd}` → the same date written YYYYMMDD (a date in a file name),
    `{network}` → a known network, `{snapshot}` → the moment a CDC full load started (YYYYMMDD-HHMMSSmmm),
    `*` → one path segment's characters."""
    out = []
    for token in re.split(r"(\{date\}|\{yyyymmdd\}|\{network\}|\{snapshot\}|\*)", pattern):
        if token == "{date}":
            out.append(r"(?P<date>\d{4}-\d{2}-\d{2})")
        elif token == "{yyyymmdd}":
            out.append(r"(?P<yyyymmdd>\d{4}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01]))")
        elif token == "{snapshot}":
            out.append(r"(?P<snapshot>\d{8}-\d{9})")
        elif token == "{network}":
            out.append("(?P<network>" + "|".join(NETWORKS) + ")")
        elif token == "*":
            out.append(r"[^/]*")
        else:
            out.append(re.escape(token))
    return re.compile("".join(out))


# A source delivered once a day is late after a day and a couple of hours, failed after two.
DAILY_DELIVERY = (26.0, 50.0)

SOURCES: tuple[Source, ...] = (
    Source(
        name="social_posts",
        domain="social",
        description="Posts scraped from six networks, one JSON object per line; fields drift by network.",
        patterns=(
            "social/posts/network={network}/date={date}/*.jsonl",
            "social/posts/network={network}/date={date}/*.jsonl.gz",
        ),
        format="jsonl",
        partitioning="date_network",
        natural_key=("network", "post_id"),
        fields=(
            Field("post_id", "text", ("postId", "id")),
            Field("network", "text"),
            Field("account_id", "text", ("accountId",)),
            Field("created_at", "timestamptz", ("createdAt",)),
            Field("scraped_at", "timestamptz", ("scrapedAt",)),
        ),
        mirror_to_mongo=True,
    ),
    Source(
        name="image_labels",
        domain="social",
        description="Labels a vision service returned per post media item (label, confidence, bounding boxes, model "
        "version), one JSON object per line, by labelling day; media are labelled again when the model changes.",
        patterns=("social/image_labels/date={date}/*.jsonl",),
        format="jsonl",
        partitioning="daily",
        natural_key=("network", "post_id", "media_index", "label", "model_version"),
        fields=(
            Field("network", "text"),
            Field("post_id", "text", ("postId",)),
            Field("media_index", "int8", ("mediaIndex",)),
            Field("label", "text"),
            Field("model_version", "text", ("modelVersion",)),
            Field("labeled_at", "timestamptz", ("labeledAt",)),
        ),
    ),
    Source(
        name="social_accounts",
        domain="social",
        description="Creator accounts: a full snapshot each day (history becomes SCD2 in silver).",
        patterns=("social/accounts/date={date}/*.csv",),
        format="csv",
        partitioning="daily",
        natural_key=("account_id",),
        fields=(Field("account_id", "text"), Field("network", "text"), Field("handle", "text")),
        freshness_hours=DAILY_DELIVERY,
    ),
    Source(
        name="tweets",
        domain="brand_listening",
        description="Brand-listening tweets as API search responses (`statuses` with user objects).",
        patterns=("x/tweets/date={date}/*.json",),
        format="json",
        partitioning="daily",
        record_path="statuses",
        natural_key=("tweet_id",),
        fields=(Field("tweet_id", "text", ("id_str",)), Field("created_at", "timestamptz")),
        mirror_to_mongo=True,
    ),
    Source(
        name="x_recent_search",
        domain="brand_listening",
        description="Brand-listening tweets pulled from the X API v2 recent search by landing/x_recent_search: one "
        "page a file as returned (tweets under `data`), each tweet stored with its author from `includes.users`.",
        patterns=("x/recent_search/date={date}/*.json",),
        format="json",
        partitioning="daily",
        record_path="data",
        natural_key=("tweet_id",),
        fields=(
            Field("tweet_id", "text", ("id",)),
            Field("created_at", "timestamptz"),
            Field("author_id", "text"),
        ),
        embedded=Embedded(includes=("includes", "users"), key="id", reference="author_id", embed_as="author"),
        pulled_by="landing/x_recent_search",
    ),
    Source(
        name="ambassadors",
        domain="ambassadors",
        description="Brand-ambassador programs: nested ambassador → programs → tasks JSON; names and emails are PII.",
        patterns=("ambassadors/*.json",),
        format="json",
        partitioning="none",
        natural_key=("user_id",),
        fields=(Field("user_id", "text"), Field("joined_at", "timestamptz")),
        mirror_to_mongo=True,
    ),
    Source(
        name="video_users",
        domain="video",
        description="Viewers of the video service (CSV; names and emails are PII).",
        patterns=("video/users/*.csv",),
        format="csv",
        partitioning="none",
        natural_key=("user_id",),
        fields=(Field("user_id", "text"),),
    ),
    Source(
        name="video_sessions",
        domain="video",
        description="Video viewing sessions, one CSV per day.",
        patterns=("video/sessions/date={date}/*.csv",),
        format="csv",
        partitioning="daily",
        natural_key=("session_id",),
        fields=(
            Field("session_id", "text"),
            Field("user_id", "text"),
            Field("content_id", "text"),
            Field("started_at", "timestamptz"),
        ),
    ),
    Source(
        name="video_content",
        domain="video",
        description="Video catalogue metadata (nested JSON).",
        patterns=("video/content/*.json",),
        format="json",
        partitioning="none",
        natural_key=("content_id",),
        fields=(Field("content_id", "text"), Field("published_at", "timestamptz")),
        mirror_to_mongo=True,
    ),
    Source(
        name="cdc_brands",
        domain="operational",
        description="CDC of the operational `brands` table, Qlik Replicate style: full loads (LOAD files: the "
        "first at cdc/brands/, each reload in a folder named for its start) and __ct change files, every row "
        "kept with its header columns.",
        patterns=(
            "cdc/brands/LOAD*.csv.gz",
            "cdc/brands/LOAD*.csv",
            "cdc/brands/{snapshot}/LOAD*.csv.gz",
            "cdc/brands/{snapshot}/LOAD*.csv",
            "cdc/brands__ct/*.csv.gz",
            "cdc/brands__ct/*.csv",
        ),
        format="csv",
        partitioning="none",
        natural_key=("brand_id",),
        fields=(
            Field("header__change_seq", "text"),
            Field("header__change_oper", "text"),
            Field("header__timestamp", "timestamptz"),
            Field("brand_id", "text"),
        ),
        # The operational table's columns change only by a migration, and Qlik reloads the table after one: a
        # renamed column would silently empty silver's column from then on, so a new column stops the load for a
        # look (declare it in `fields`, or run once with the contract `evolve`). CSV values are all strings: only
        # columns can breach.
        contract="freeze",
    ),
    Source(
        name="dmap_ad_spend",
        domain="paid_media",
        description="Paid-media spend per campaign, network and day from a vendor's daily fetch: one CSV a day, "
        "the date in the file name (DMAP style); a day re-sent with new bytes replaces the first version.",
        patterns=("dmap/ad_spend/{yyyymmdd}.csv",),
        format="csv",
        partitioning="daily",
        natural_key=("campaign_id", "network"),
        fields=(Field("report_date", "date"), Field("campaign_id", "text"), Field("network", "text")),
        freshness_hours=DAILY_DELIVERY,
        # Money: a vendor changing its report's layout (a currency column beside spend_usd, a split of a figure)
        # changes what gold sums, so a new column stops that day's file for review instead of loading beside it.
        contract="freeze",
    ),
    Source(
        name="video_playback",
        domain="video",
        description="Player events of the video service from a stream: the consumer's dumps (a file every "
        "10,000 records or hour, named by a UUID, records of any day, delivered at least once) are split by "
        "event time into daily parts; a record repeated by a later dump is set aside as a duplicate.",
        patterns=("stream/playback/date={date}/*.jsonl",),
        format="jsonl",
        partitioning="daily",
        natural_key=("event_id",),
        fields=(
            Field("event_id", "text", ("eventId",)),
            Field("session_id", "text", ("sessionId",)),
            Field("content_id", "text", ("contentId",)),
            Field("event_type", "text", ("eventType",)),
            Field("event_time", "timestamptz", ("eventTime",)),
        ),
        dumps=EventDumps(
            patterns=(
                "stream/playback/*.json",
                "stream/playback/*.jsonl",
                "stream/playback/*.json.gz",
                "stream/playback/*.jsonl.gz",
            ),
            event_time=Field("event_time", "timestamptz", ("eventTime",)),
        ),
    ),
)

SOURCES_BY_NAME = {source.name: source for source in SOURCES}
