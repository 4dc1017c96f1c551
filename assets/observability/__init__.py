"""Observability: freshness defaults, alerts, and the data-quality history and dashboard."""
