"""Observability: freshness defaults, alerts and notices, pool watching, and the data-quality history and dashboard."""

import dagster as dg

from assets.observability.alerts import gold_refresh_notice, quality_alert_sensor, run_failure_alert
from assets.observability.freshness import with_default_freshness
from assets.observability.pools import pool_watch
from assets.observability.quality import check_history, data_quality_dashboard

defs = dg.Definitions(
    assets=[check_history, data_quality_dashboard],
    sensors=[run_failure_alert, quality_alert_sensor, gold_refresh_notice, pool_watch],
)

__all__ = ["defs", "with_default_freshness"]
