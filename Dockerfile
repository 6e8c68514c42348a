# One image for every service of the order pipeline; compose.yaml chooses
# what a container runs with `command`. Checked by tests/unit/test_deployment.py.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The services run as this user; the code below stays owned by root, so
# they cannot change it.
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app

# Runtime dependencies only, pinned (requirements-dev.txt stays out). Copied
# on its own so this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY config.yml ./
COPY order_contract ./order_contract
COPY order_pipeline ./order_pipeline
COPY generator_service ./generator_service
COPY processor_service ./processor_service
COPY gateway ./gateway

# Numeric, so a runtime can see it is not root without reading /etc/passwd.
USER 10001:10001

# The gateway's HTTP port (WEB_SERVER_ADDRESS in config.yml).
EXPOSE 8000

# Exec form, so nameko is PID 1 and gets SIGTERM from `docker stop`.
# Without compose this runs all three services in one process (like
# `make run`); the database schema must exist first:
#   docker run ... order-pipeline python -m order_pipeline.commands.migrate --config config.yml
CMD ["nameko", "run", "--config", "config.yml", "generator_service", "processor_service", "gateway"]
