"""Alerts and notices: every alert or notice is logged and, when a webhook is configured for it, posted as a
Slack-compatible JSON message (`text` plus a `blocks` section). An alert about assets goes to their owners'
receivers where routes name them, else to the default receiver. A storm is limited per receiver: within a
window, a receiver gets at most `max_per_window` alerts; the rest are logged and held, and once the window lets
alerts through again the receiver gets one summary of what was held back (`Storm` is that state, which the
sensors keep between ticks)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg
import httpx

DEFAULT_RECEIVER = "default"


@dataclass
class Storm:
    """Per receiver (an owner with a route, or `default`): when alerts were posted to it within the window, and
    the alerts held back since the window filled, counted by severity."""

    posted: dict[str, list[float]] = field(default_factory=dict)
    held: dict[str, dict[str, int]] = field(default_factory=dict)
    held_since: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict) -> Storm:
        return cls(data.get("posted", {}), data.get("held", {}), data.get("held_since", {}))

    def to_json(self) -> dict:
        return {"posted": self.posted, "held": self.held, "held_since": self.held_since}


class AlertWebhookResource(dg.ConfigurableResource):
    # The URLs carry the webhooks' tokens: they never enter run config or a log line, and are read from these
    # variables when an alert is sent (unset or empty: alerts are only logged).
    url_env: str = "STRATA_ALERT_WEBHOOK_URL"
    # Routes per owner: `<owner>=<webhook URL>` entries separated by spaces (`team:video=https://…`).
    routes_env: str = "STRATA_ALERT_ROUTES"
    # The storm limit of `send`: alerts one receiver gets within `window_seconds`.
    max_per_window: int = 20
    window_seconds: float = 600.0

    def notify(self, log, text: str, owners: Iterable[str] = ()) -> bool:
        """A notice (work done, not a problem): logged at info level, posted like an alert."""
        log.info(f"NOTICE {text}")
        return self._post_all(log, text, owners)

    def send(self, log, text: str, severity: str, owners: Iterable[str], storm: Storm, now: float) -> None:
        """Log the alert and post it to each of its receivers (its owners' routes, else the default one) whose
        window has room; hold it back from the others."""
        log.warning(f"ALERT {text}")
        routes = self._routes(log)
        for receiver in self._receivers(routes, owners):
            recent = [t for t in storm.posted.get(receiver, []) if t > now - self.window_seconds]
            if len(recent) < self.max_per_window:
                self._post(log, routes[receiver], text)
                storm.posted[receiver] = [*recent, now]
            else:
                held = storm.held.setdefault(receiver, {})
                held[severity] = held.get(severity, 0) + 1
                storm.held_since.setdefault(receiver, now)
                storm.posted[receiver] = recent

    def summarize_held(self, log, storm: Storm, now: float) -> None:
        """Post one summary to each receiver whose storm is over (its window has room again) of what it did not
        get, and forget it."""
        routes = self._routes(log)
        # Posts older than the window count no more: forget them (the state is kept between ticks).
        storm.posted = {
            receiver: recent
            for receiver, times in storm.posted.items()
            if (recent := [t for t in times if t > now - self.window_seconds])
        }
        for receiver in sorted(storm.held):
            recent = storm.posted.get(receiver, [])
            if len(recent) >= self.max_per_window:
                continue
            held = storm.held.pop(receiver)
            since = datetime.fromtimestamp(storm.held_since.pop(receiver), UTC)
            counts = ", ".join(f"{severity} {held[severity]}" for severity in sorted(held))
            text = (
                f":mute: Alerts held back since {since:%Y-%m-%d %H:%M:%S} UTC: {counts} (over "
                f"{self.max_per_window} per {self.window_seconds:g} s to this receiver); each one is in the sensor's log"
            )
            log.warning(f"ALERT {text}")
            if receiver in routes:
                self._post(log, routes[receiver], text)
            storm.posted[receiver] = [*recent, now]

    def _post_all(self, log, text: str, owners: Iterable[str]) -> bool:
        routes = self._routes(log)
        receivers = self._receivers(routes, owners)
        return bool(receivers) and all([self._post(log, routes[receiver], text) for receiver in receivers])

    def _post(self, log, url: str, text: str) -> bool:
        message = {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
        try:
            httpx.post(url, json=message, timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            log.error(f"alert webhook failed: {type(exc).__name__}")
            return False
        return True

    def _routes(self, log) -> dict[str, str]:
        """The webhook of every receiver: the owners' routes and the default one (if configured)."""
        routes = {}
        for number, entry in enumerate(os.environ.get(self.routes_env, "").split(), start=1):
            owner, _, url = entry.partition("=")
            if not owner or not url:
                # The entry may hold a token: the log names its position only.
                log.error(f"{self.routes_env}: entry {number} is not <owner>=<webhook URL>; ignored")
                continue
            routes[owner] = url
        if default := os.environ.get(self.url_env):
            routes[DEFAULT_RECEIVER] = default
        return routes

    @staticmethod
    def _receivers(routes: dict[str, str], owners: Iterable[str]) -> list[str]:
        """The receivers of an alert: its owners that have a route, else the default one (if any). Two owners
        routed to one webhook get it once."""
        routed = [owner for owner in dict.fromkeys(owners) if owner in routes and owner != DEFAULT_RECEIVER]
        by_url: dict[str, str] = {}
        for receiver in routed or ([DEFAULT_RECEIVER] if DEFAULT_RECEIVER in routes else []):
            by_url.setdefault(routes[receiver], receiver)
        return list(by_url.values())
