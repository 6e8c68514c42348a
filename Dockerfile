# One image for every service of the order pipeline; compose.yaml chooses
# what a container runs with `command`. Checked by tests/unit/test_deployment.py,
# built and run by `make compose-check` (tests/compose/).
#
# BASE_IMAGE: any Debian-based image with Python 3.11, or a plain Debian
# bookworm one, on which Python 3.11 comes from Debian's packages (the
# compose check builds on one made here, where no registry is reachable).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

# Python 3.11 from Debian when the base image has none (bookworm's python3
# is 3.11); the upstream python image has its own and installs nothing. The
# packages are left unpinned: the base image's release pins them.
# hadolint ignore=DL3008
RUN if ! command -v python3.11 >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi

# The services run as this user; the code below stays owned by root, so
# they cannot change it.
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app

# Runtime dependencies only, pinned (requirements-dev.txt stays out), in a
# virtual environment (Debian's python3 refuses a system-wide pip install).
# Copied on its own so this layer is rebuilt only when requirements.txt
# changes.
COPY requirements.txt ./
RUN python3.11 -m venv /opt/venv \
    && pip install --no-cache-dir -r requirements.txt

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
