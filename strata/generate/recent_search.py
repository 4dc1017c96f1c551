"""x_recent_search: brand-listening tweets as X's API v2 recent search returns them, served from a local HTTP
endpoint for the sample and the tests (the extraction of an HTTP API source reads it like the real one).

`GET /2/tweets/search/recent` takes `query` (required), `start_time`/`end_time` (ISO 8601, end exclusive),
`since_id`, `max_results` (10–100, default 10) and `next_token`, and answers newest first with `data`,
`includes.users` and `meta` (`result_count`, `newest_id`, `oldest_id`, `next_token` while pages remain); a
bearer token is required when the server has one. Faults are scripted per request, in order: a 429 with
`x-rate-limit-reset`, a 5xx, a slow answer, a page cut short.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import orjson

from strata.generate.core import Run, rng_for
from strata.generate.tweets import status

SOURCE = "x_recent_search"
TWEETS_PER_DAY = 300  # at scale 1
PATH = "/2/tweets/search/recent"
FIRST_ID = 1_850_000_000_000_000_000


def recent_tweets(run: Run) -> tuple[list[dict], dict[str, dict]]:
    """The sample's tweets in API v2 shape, newest first, and their authors by id."""
    tweets, users = [], {}
    for day_index, day in enumerate(run.dates):
        rng = rng_for(run.seed, SOURCE, day.isoformat())
        midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
        for n in range(TWEETS_PER_DAY * run.scale):
            v1 = status(rng, 0, midnight)
            created = datetime.strptime(v1["created_at"], "%a %b %d %H:%M:%S %z %Y")
            user = v1["user"]
            tweets.append(
                {
                    "id": str(FIRST_ID + (day_index << 32) + (int(created.timestamp()) % 86400 << 12) + n),
                    "text": v1["full_text"],
                    "author_id": user["id_str"],
                    "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                    "lang": v1["lang"],
                    "entities": {"hashtags": [{"tag": tag["text"]} for tag in v1["entities"]["hashtags"]]},
                    "public_metrics": {
                        "retweet_count": v1["retweet_count"],
                        "reply_count": 0,
                        "like_count": v1["favorite_count"],
                        "quote_count": 0,
                    },
                }
            )
            users[user["id_str"]] = {
                "id": user["id_str"],
                "username": user["screen_name"],
                "name": user["name"],
                "verified": user["verified"],
                "public_metrics": {"followers_count": user["followers_count"]},
            }
    tweets.sort(key=lambda tweet: int(tweet["id"]), reverse=True)
    return tweets, users


@dataclass(frozen=True)
class Fault:
    """How the server answers one request instead of (or before) the page."""

    status: int = 200  # 429: rate limited until `reset_in_s` from now; 5xx: a server error
    delay_s: float = 0.0  # answer this late
    reset_in_s: int = 1
    malformed: bool = False  # the page's body cut in half


class Request(NamedTuple):
    params: dict[str, str]
    status: int
    at: float  # epoch seconds when it arrived


class RecentSearchServer:
    def __init__(
        self,
        tweets: list[dict],
        users: dict[str, dict],
        *,
        token: str | None = None,
        faults: Iterable[Fault] = (),
    ) -> None:
        self.tweets, self.users, self.token = tweets, users, token
        # Each tweet's id and time, read once: every request filters all of them.
        self._keys = [(int(tweet["id"]), _instant(tweet["created_at"], None)) for tweet in tweets]
        self.faults = deque(faults)
        self.requests: list[
            Request
        ] = []  # each search request, recorded as it arrives (before a slow answer)
        self._lock = threading.Lock()

    @contextmanager
    def running(self, port: int = 0) -> Iterator[str]:
        """Serve on 127.0.0.1 (`port` 0: a free one) until the block ends; yields the base URL."""
        server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()

    def answer(self, path: str, params: dict[str, str], authorization: str | None) -> tuple[int, dict, bytes]:
        if path != PATH:
            return 404, {}, _error("Not Found", f"no endpoint {path}")
        if self.token and authorization != f"Bearer {self.token}":
            return 401, {}, _error("Unauthorized", "a valid bearer token is required")
        arrived = time.time()
        with self._lock:
            fault = self.faults.popleft() if self.faults else Fault()
        try:
            page = self._page(params)
        except ValueError as exc:
            self.requests.append(Request(params, 400, arrived))
            return 400, {}, _error("Invalid Request", str(exc))
        self.requests.append(Request(params, fault.status, arrived))
        time.sleep(fault.delay_s)
        if fault.status == 429:
            reset = int(datetime.now(UTC).timestamp()) + fault.reset_in_s
            return 429, {"x-rate-limit-reset": str(reset)}, _error("Too Many Requests", "rate limit exceeded")
        if fault.status >= 500:
            return fault.status, {}, _error("Server Error", "try again later")
        body = orjson.dumps(page)
        return 200, {}, body[: len(body) // 2] if fault.malformed else body

    def _page(self, params: dict[str, str]) -> dict:
        if not params.get("query"):
            raise ValueError("query is required")
        size = int(params.get("max_results", "10"))
        if not 10 <= size <= 100:
            raise ValueError("max_results must be between 10 and 100")
        start = _instant(params.get("start_time"), datetime.min.replace(tzinfo=UTC))
        end = _instant(params.get("end_time"), datetime.max.replace(tzinfo=UTC))
        since = int(params.get("since_id", "0"))
        token = params.get("next_token", "p0")
        if not token.startswith("p") or not token[1:].isdigit():
            raise ValueError(f"next_token {token!r} is not one this server gave")
        offset = int(token[1:])
        matching = [
            tweet
            for tweet, (tweet_id, created) in zip(self.tweets, self._keys, strict=True)
            if tweet_id > since and start <= created < end
        ]
        page = matching[offset : offset + size]
        meta: dict = {"result_count": len(page)}
        if not page:
            return {"meta": meta}
        meta |= {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
        if offset + size < len(matching):
            meta["next_token"] = f"p{offset + size}"
        authors = sorted({tweet["author_id"] for tweet in page})
        return {"data": page, "includes": {"users": [self.users[a] for a in authors]}, "meta": meta}


def _instant(value: str | None, default: datetime | None) -> datetime:
    if not value:
        return default
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an ISO 8601 time") from exc


def _error(title: str, detail: str) -> bytes:
    return orjson.dumps({"errors": [{"title": title, "detail": detail}]})


def _handler(api: RecentSearchServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            url = urlsplit(self.path)
            params = {name: values[-1] for name, values in parse_qs(url.query).items()}
            status_code, headers, body = api.answer(url.path, params, self.headers.get("Authorization"))
            self.send_response(status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                return  # the client gave up waiting (a slow answer past its timeout)

        def log_message(self, *args) -> None:  # requests are in `api.requests`, not on stderr
            return

    return Handler
