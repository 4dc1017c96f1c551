"""Alerts and notices: every alert or notice is logged and, when a webhook is configured, posted to it as a
Slack-compatible JSON message (`text` plus a `blocks` section)."""

from __future__ import annotations

import os

import dagster as dg
import httpx


class AlertWebhookResource(dg.ConfigurableResource):
    # The URL carries the webhook's token: it never enters run config or a log line, and is read from this
    # variable when an alert is sent (unset or empty: alerts are only logged).
    url_env: str = "STRATA_ALERT_WEBHOOK_URL"

    def send(self, log, text: str) -> bool:
        """Log the alert and post it to the webhook if one is configured. Returns whether it was posted."""
        log.warning(f"ALERT {text}")
        return self._post(log, text)

    def notify(self, log, text: str) -> bool:
        """A notice (work done, not a problem): logged at info level, posted like an alert."""
        log.info(f"NOTICE {text}")
        return self._post(log, text)

    def _post(self, log, text: str) -> bool:
        url = os.environ.get(self.url_env)
        if not url:
            return False
        message = {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
        try:
            httpx.post(url, json=message, timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            log.error(f"alert webhook failed: {type(exc).__name__}")
            return False
        return True
