"""Strata's command-line tooling: embedded services, the sample-data generator, the demo and the bench."""
