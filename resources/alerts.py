"""Alerts and notices: every alert or notice is logged and, when a webhook is configured for it, posted as a
Slack-compatible JSON message (`text` plus a `blocks` section). An alert about assets goes to their owners'
webhooks where routes name them, else to the default webhook."""

from __future__ import annotations

import os
from collections.abc import Iterable

import dagster as dg
import httpx


class AlertWebhookResource(dg.ConfigurableResource):
    # The URLs carry the webhooks' tokens: they never enter run config or a log line, and are read from these
    # variables when an alert is sent (unset or empty: alerts are only logged).
    url_env: str = "STRATA_ALERT_WEBHOOK_URL"
    # Routes per owner: `<owner>=<webhook URL>` entries separated by spaces (`team:video=https://…`).
    routes_env: str = "STRATA_ALERT_ROUTES"

    def send(self, log, text: str, owners: Iterable[str] = ()) -> bool:
        """Log the alert and post it to its owners' webhooks, or the default one. Returns whether it was posted."""
        log.warning(f"ALERT {text}")
        return self._post(log, text, owners)

    def notify(self, log, text: str, owners: Iterable[str] = ()) -> bool:
        """A notice (work done, not a problem): logged at info level, posted like an alert."""
        log.info(f"NOTICE {text}")
        return self._post(log, text, owners)

    def _post(self, log, text: str, owners: Iterable[str]) -> bool:
        urls = self._urls(log, owners)
        if not urls:
            return False
        message = {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
        posted = True
        for url in urls:
            try:
                httpx.post(url, json=message, timeout=10).raise_for_status()
            except httpx.HTTPError as exc:
                log.error(f"alert webhook failed: {type(exc).__name__}")
                posted = False
        return posted

    def _urls(self, log, owners: Iterable[str]) -> list[str]:
        """The webhooks of the owners that have a route, else the default webhook (if any)."""
        routes = {}
        for number, entry in enumerate(os.environ.get(self.routes_env, "").split(), start=1):
            owner, _, url = entry.partition("=")
            if not owner or not url:
                # The entry may hold a token: the log names its position only.
                log.error(f"{self.routes_env}: entry {number} is not <owner>=<webhook URL>; ignored")
                continue
            routes[owner] = url
        routed = list(dict.fromkeys(routes[owner] for owner in owners if owner in routes))
        default = os.environ.get(self.url_env)
        return routed or ([default] if default else [])
