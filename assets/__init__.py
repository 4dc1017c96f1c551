"""Software-defined assets of Strata: bronze loads, dbt silver/gold, the vector index, and their checks."""
