"""The local recent-search API (strata.generate.recent_search) answers as X's API v2 does, over real HTTP on
loopback: newest first, paged to the end by next_token, filtered by time window and since_id, behind a bearer
token, and with the faults a client must survive — a 429 with its reset time, a 5xx, a slow answer, a page cut
short — scripted per request."""

from __future__ import annotations

from datetime import date

import httpx
import orjson
import pytest

from strata.generate import FaultRates
from strata.generate.core import Run
from strata.generate.recent_search import PATH, TWEETS_PER_DAY, Fault, RecentSearchServer, recent_tweets

TOKEN = "test-token-5f2c"


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> tuple[list[dict], dict[str, dict]]:
    run = Run(
        tmp_path_factory.mktemp("drop"), seed=3, scale=1, days=2, start=date(2026, 11, 1), rates=FaultRates()
    )
    return recent_tweets(run)


def get(base: str, token: str | None = TOKEN, timeout: float = 10, **params) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(base + PATH, params={"query": "brands", **params}, headers=headers, timeout=timeout)


def test_a_day_pages_newest_first_to_its_end_and_since_id_keeps_only_newer_tweets(sample):
    tweets, users = sample
    server = RecentSearchServer(tweets, users, token=TOKEN)
    window = {"start_time": "2026-11-02T00:00:00Z", "end_time": "2026-11-03T00:00:00Z"}
    with server.running() as base:
        pages, token = [], None
        while True:
            page = get(base, max_results=10, **window, **({"next_token": token} if token else {})).json()
            pages.append(page)
            token = page["meta"].get("next_token")
            if token is None:
                break
        newest = pages[0]["meta"]["newest_id"]
        nothing_newer = get(base, since_id=newest, **window).json()
        unauthorized = get(base, token=None, **window)

    ids = [tweet["id"] for page in pages for tweet in page["data"]]
    day = [tweet["id"] for tweet in tweets if tweet["created_at"].startswith("2026-11-02")]
    assert len(pages) == TWEETS_PER_DAY // 10 >= 10
    assert ids == day and ids == sorted(ids, key=int, reverse=True)
    assert all(page["meta"]["result_count"] == len(page["data"]) == 10 for page in pages)
    # Every author of a page is in its includes.
    assert all(
        {t["author_id"] for t in p["data"]} == {u["id"] for u in p["includes"]["users"]} for p in pages
    )
    assert nothing_newer == {"meta": {"result_count": 0}}
    assert unauthorized.status_code == 401


def test_scripted_faults_answer_in_order_then_the_page(sample):
    tweets, users = sample
    faults = [Fault(429, reset_in_s=2), Fault(503), Fault(delay_s=1), Fault(malformed=True)]
    server = RecentSearchServer(tweets, users, token=TOKEN, faults=faults)
    with server.running() as base:
        limited, failed = get(base, max_results=100), get(base, max_results=100)
        # The slow answer outlasts a client that gives up after a fifth of a second.
        with pytest.raises(httpx.ReadTimeout):
            get(base, timeout=0.2, max_results=100)
        cut, whole = get(base, max_results=100), get(base, max_results=100)

    assert (limited.status_code, failed.status_code, cut.status_code) == (429, 503, 200)
    assert int(limited.headers["x-rate-limit-reset"]) > 0
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(cut.content)
    assert whole.json()["meta"]["result_count"] == 100
    assert [request.status for request in server.requests] == [429, 503, 200, 200, 200]
