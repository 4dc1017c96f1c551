"""Bench scenarios: each is `(BenchContext) -> ScenarioResult`, registered in `strata.bench.SCENARIOS`."""
