-- The warehouse database is created by the image (POSTGRES_DB); Dagster's instance storage gets its own.
CREATE DATABASE dagster;
