"""The X API v2 recent search as a client that survives what an HTTP API does: a 429 waits until the
`x-rate-limit-reset` it names (bounded), and a 5xx, a timeout, a dropped connection or a page cut short is tried
again with exponential back-off and jitter (tenacity). A page that keeps failing raises `PageFailed` naming the
URL, the last status and the attempts.

The endpoint and the bearer token are read from the environment when a search starts: the token never enters
run configuration, a log line or an error message.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import dagster as dg
import httpx
import orjson
import tenacity

from strata.config import Settings

SEARCH_PATH = "/2/tweets/search/recent"
# Answers worth asking again: rate limited, or the server's own trouble.
_RETRIED_STATUSES = {429, 500, 502, 503, 504}


class ApiFault(Exception):
    """One attempt that failed in a way another attempt may not."""

    def __init__(self, reason: str, status: int | None = None, wait_s: float | None = None):
        super().__init__(reason)
        self.status = status
        self.wait_s = wait_s  # the server named when to come back (a rate limit's reset)


class PageFailed(RuntimeError):
    """A page that could not be fetched: refused, or still failing after every attempt."""


@dataclass(frozen=True)
class Page:
    body: bytes  # as the server returned it
    document: dict
    attempts: int


class RecentSearchResource(dg.ConfigurableResource):
    """Where and how to search. Unset `url_env`: no endpoint is configured and extraction is skipped."""

    url_env: str = "STRATA_TWEETS_API_URL"
    token_env: str = "STRATA_TWEETS_API_TOKEN"
    query_env: str = "STRATA_TWEETS_API_QUERY"
    default_query: str = "brand mentions"
    max_results: int = 100  # the API's largest page
    timeout_s: float = 15.0
    max_attempts: int = 6
    # Back-off before attempt n: up to `backoff_s` × 2^(n-1) plus up to `backoff_s` of jitter, at most
    # `max_backoff_s`; both scale with STRATA_RETRY_DELAY_SCALE. A rate limit's reset is waited for as the
    # server names it, at most `max_rate_limit_wait_s`.
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    max_rate_limit_wait_s: float = 900.0

    @property
    def base_url(self) -> str | None:
        return os.environ.get(self.url_env) or None

    @property
    def query(self) -> str:
        return os.environ.get(self.query_env) or self.default_query

    @contextmanager
    def searching(self, log) -> Iterator[Callable[[dict[str, str], Callable[[bytes], None]], Page]]:
        """A function fetching one page of the search for the given parameters. Every 200 answer is handed
        to `land` as returned, before it is read (a page cut short lands too, for quarantine, and is asked for
        again)."""
        base = self.base_url
        if not base:
            raise PageFailed(f"{self.url_env} is not set: no recent-search endpoint to call")
        token = os.environ.get(self.token_env)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        scale = Settings.from_env().retry_delay_scale
        backoff = tenacity.wait_exponential_jitter(
            initial=self.backoff_s * scale, max=self.max_backoff_s * scale, jitter=self.backoff_s * scale
        )

        def wait(state: tenacity.RetryCallState) -> float:
            fault = state.outcome.exception() if state.outcome else None
            if isinstance(fault, ApiFault) and fault.wait_s is not None:
                return min(fault.wait_s, self.max_rate_limit_wait_s)
            return backoff(state)

        with httpx.Client(base_url=base, headers=headers, timeout=self.timeout_s) as client:

            def fetch(params: dict[str, str], land: Callable[[bytes], None]) -> Page:
                shown = _shown_url(base, params)

                def retrying(state: tenacity.RetryCallState) -> None:
                    log.warning(
                        f"GET {shown}: {state.outcome.exception()} (attempt {state.attempt_number} of "
                        f"{self.max_attempts}); next attempt in {state.upcoming_sleep:.1f} s"
                    )

                try:
                    for attempt in tenacity.Retrying(
                        retry=tenacity.retry_if_exception_type(ApiFault),
                        stop=tenacity.stop_after_attempt(self.max_attempts),
                        wait=wait,
                        before_sleep=retrying,
                    ):
                        with attempt:
                            document, body = _attempt(client, params, shown, land)
                            return Page(body, document, attempt.retry_state.attempt_number)
                except tenacity.RetryError as exc:
                    fault = exc.last_attempt.exception()
                    status = f"status {fault.status}" if getattr(fault, "status", None) else "no answer"
                    raise PageFailed(
                        f"GET {shown}: {fault} ({status}) after {exc.last_attempt.attempt_number} attempts"
                    ) from None
                raise AssertionError("unreachable: tenacity either returns or raises")

            yield fetch


def _attempt(
    client: httpx.Client, params: dict[str, str], shown: str, land: Callable[[bytes], None]
) -> tuple[dict, bytes]:
    try:
        response = client.get(SEARCH_PATH, params=params)
    except httpx.TimeoutException as exc:
        raise ApiFault(f"timed out ({type(exc).__name__})") from None
    except httpx.TransportError as exc:
        raise ApiFault(f"no answer ({type(exc).__name__})") from None
    if response.status_code == 429:
        raise ApiFault("rate limited", 429, _reset_wait(response.headers.get("x-rate-limit-reset")))
    if response.status_code in _RETRIED_STATUSES:
        raise ApiFault(f"server error {response.status_code}", response.status_code)
    if response.status_code != 200:
        raise PageFailed(
            f"GET {shown}: refused with status {response.status_code}: {_titles(response.content)}"
        )
    land(response.content)
    try:
        document = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise ApiFault(f"a page that is not JSON ({exc})", 200) from None
    if not isinstance(document, dict):
        raise ApiFault("a page that is not a JSON object", 200)
    return document, response.content


def _reset_wait(reset: str | None) -> float | None:
    """Seconds until an `x-rate-limit-reset` epoch time (and one more: clocks differ by fractions)."""
    try:
        return max(0.0, float(reset) - time.time()) + 1.0 if reset else None
    except ValueError:
        return None


def _titles(body: bytes) -> str:
    try:
        errors = orjson.loads(body).get("errors") or []
        return "; ".join(f"{e.get('title')}: {e.get('detail')}" for e in errors) or "no error detail"
    except (orjson.JSONDecodeError, AttributeError):
        return "no error detail"


def _shown_url(base: str, params: dict[str, str]) -> str:
    """The request's URL as logs may show it: without any user or password the base URL carries."""
    parts = urlsplit(base)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + SEARCH_PATH, urlencode(params), ""))
