# Strata's code in one image. The same image runs the code server (gRPC), the webserver, the daemon and,
# on Kubernetes, every run pod. Configuration comes only from STRATA_* variables at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

WORKDIR /opt/strata

# The CPU build of torch from its own index, by exact version, before anything can pull a CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

COPY pyproject.toml constraints.txt README.md ./
COPY strata strata
COPY assets assets
COPY resources resources
RUN pip install -c constraints.txt -e .

COPY dbt dbt
COPY platform platform
COPY workspace.yaml ./
# The dbt manifest is built into the image: code servers never parse the project at start-up.
RUN STRATA_DBT_DBNAME=strata dagster-dbt project prepare-and-package --file assets/transform/project.py \
    && mkdir -p "$DAGSTER_HOME" && cp platform/dagster.yaml "$DAGSTER_HOME/dagster.yaml"

RUN useradd --create-home --uid 10001 strata && chown -R strata "$DAGSTER_HOME" /opt/strata
USER strata

EXPOSE 3000 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "strata.definitions"]
