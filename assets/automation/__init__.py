"""How the platform refreshes itself: automation conditions by layer, the known refresh chain of a landed
partition, and the reconciliation that catches whatever eager automation missed."""

import dagster as dg

from assets.automation.conditions import automation_sensor, refresh_condition, scheduled
from assets.automation.graph import refresh_chain
from assets.automation.reconcile import reconciliation_sensor

defs = dg.Definitions(sensors=[automation_sensor, reconciliation_sensor])

__all__ = ["defs", "refresh_chain", "refresh_condition", "scheduled"]
