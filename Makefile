# The two commands a new user needs: `make run` and `make test`.
# Everything is installed into .venv from pinned requirements on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# checkov in a virtual environment of its own: its pins clash with the
# project's (deploy/checkov/requirements.txt).
CHECKOV_VENV ?= $(VENV)/checkov
CONFIG ?= config.yml
SERVICES := generator_service processor_service gateway

.PHONY: compose-check compose-cluster-check dockerfile-lint install migrate migration provision run shell recreate-queues test test-fast partitions lint checkov audit format prometheus-check bench bench-smoke clean

# The pinned requirements, then this project as an editable package (so
# `import order_contract` works from any shell in the venv), then a .pth
# file that silences, by name, the two deprecation warnings nameko 2.14's
# stack prints on every start (pkg_resources and eventlet): they would stand
# in front of the one useful line. Other warnings stay visible.
$(BIN)/.installed: requirements.txt requirements-dev.txt pyproject.toml order_pipeline/quiet_warnings.pth
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	cp order_pipeline/quiet_warnings.pth "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/"
	touch $@

install: $(BIN)/.installed

# Create the database if missing and apply every service's migrations.
migrate: install
	$(BIN)/python -m order_pipeline.commands.migrate --config $(CONFIG)

# A new migration for one service, from its models against the database:
#   make migration SERVICE=generator_service MESSAGE="add orders.note"
migration: install
	@test -n "$(SERVICE)" -a -n "$(MESSAGE)" || \
		{ echo 'usage: make migration SERVICE=generator_service|processor_service MESSAGE="..."'; exit 2; }
	$(BIN)/python -m order_pipeline.commands.migrate --config $(CONFIG) revision $(SERVICE) "$(MESSAGE)"
	$(BIN)/ruff check --fix --quiet $(SERVICE)/migrations/versions
	$(BIN)/ruff format --quiet $(SERVICE)/migrations/versions

# One broker and one database user per service, an operator and a
# migration user, each with only what it needs; migrates the schema as the
# migration user in between. Admin credentials and passwords come from the
# environment (order_pipeline/commands/provision.py, docs/security.md);
# LOCAL_DEV=1 on this machine's servers makes up what is not set.
provision: install
	$(BIN)/python -m order_pipeline.commands.provision --migrate $(if $(LOCAL_DEV),--local-dev)

# Migrate, then run the services in one process (Ctrl-C stops them).
# The first line it prints is the console's address: open it in a browser.
# Without GATEWAY_TOKEN set, a random one is made for this run and printed
# (type it into the console to start and stop generation, replay dead letters).
# With GATEWAY_TLS_CERT_FILE set the gateway speaks HTTPS, and says so here.
run: migrate
	@ADDRESS="$${WEB_SERVER_ADDRESS:-0.0.0.0:8000}"; PORT="$${ADDRESS##*:}"; \
	SCHEME=http; [ -z "$$GATEWAY_TLS_CERT_FILE" ] || SCHEME=https; \
	echo "Console: $$SCHEME://localhost:$$PORT/  (open it in a browser; WEB_SERVER_ADDRESS=$$ADDRESS)"; \
	if [ -z "$$GATEWAY_TOKEN" ]; then \
		GATEWAY_TOKEN="$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(18))')"; \
		echo "Control token for this run: $$GATEWAY_TOKEN"; \
		SHOWN_TOKEN="$$GATEWAY_TOKEN"; \
	else \
		SHOWN_TOKEN='$$GATEWAY_TOKEN'; \
	fi; \
	echo "Gateway API on $$SCHEME://localhost:$$PORT (JSON; see /openapi.json)"; \
	echo "  curl -X POST -H \"Authorization: Bearer $$SHOWN_TOKEN\" $$SCHEME://localhost:$$PORT/start   (or /stop)"; \
	export GATEWAY_TOKEN; \
	exec $(BIN)/nameko run --config $(CONFIG) $(SERVICES)

# nameko shell on the configured broker: n.rpc.order_generator.get_order(1)
# (through a wrapper whose banner hides the broker's passwords).
shell: install
	$(BIN)/python -m order_pipeline.commands.shell --config $(CONFIG)

# After changing QUEUE_TYPE on an existing deployment, with the services
# stopped: re-declare the project's queues with that type, keeping their
# messages (order_pipeline/commands/recreate_queues.py).
recreate-queues: install
	$(BIN)/python -m order_pipeline.commands.recreate_queues --config $(CONFIG)

# Lint, format check, the import contract, checkov on the deployment files,
# `docker compose up --build` run for real (compose-check, below),
# then every test suite, in three pytest processes side by side: most of a
# test's time goes to waiting on services and nodes, not to this machine's
# CPU. Each process makes its own database and vhost; the partition suite
# (each nemesis once, short: tests/partitions) its own network namespaces
# and clusters, and needs root (it is skipped otherwise). The slow suites'
# output follows the other's, with their slowest tests.
SUITES_ALONGSIDE := tests/cluster tests/faults tests/e2e
SUITES_IN_FRONT := tests/integration tests/browser tests/unit
SUITE_PARTITIONS := tests/partitions
test: lint checkov compose-check
	@log="$$(mktemp)"; partitions_log="$$(mktemp)"; \
	$(BIN)/pytest --durations=10 $(SUITES_ALONGSIDE) >"$$log" 2>&1 & alongside=$$!; \
	$(BIN)/pytest --durations=10 $(SUITE_PARTITIONS) >"$$partitions_log" 2>&1 & partitions=$$!; \
	$(BIN)/pytest $(SUITES_IN_FRONT); in_front=$$?; \
	wait $$alongside; alongside_status=$$?; \
	wait $$partitions; partitions_status=$$?; \
	echo; echo "==== $(SUITES_ALONGSIDE) (ran alongside) ===="; \
	cat "$$log"; \
	echo; echo "==== $(SUITE_PARTITIONS) (ran alongside) ===="; \
	cat "$$partitions_log"; rm -f "$$log" "$$partitions_log"; \
	echo "==== exit status: $(SUITES_IN_FRONT): $$in_front; $(SUITES_ALONGSIDE): $$alongside_status; $(SUITE_PARTITIONS): $$partitions_status ===="; \
	[ $$in_front -eq 0 ] && [ $$alongside_status -eq 0 ] && [ $$partitions_status -eq 0 ]

# Unit tests only: no broker or database needed.
test-fast: install
	$(BIN)/pytest tests/unit

# The partition suite's full matrix (tests/partitions, docs/guarantees.md#partitions):
# each nemesis PARTITION_RUNS times with its fault held PARTITION_SECONDS,
# then its table written into docs/guarantees.md with the machine and date,
# even when a run failed (the table says how many were valid). Root only:
# network namespaces and nftables. About 7 x 5 x 3.5 minutes at the defaults.
# One nemesis, briefly: make partitions PARTITION_RUNS=1 PARTITION_SECONDS=30 PARTITION_NEMESES=halves
PARTITION_RUNS ?= 5
PARTITION_SECONDS ?= 120
PARTITION_NEMESES ?=
partitions: install
	@results="$$(mktemp)"; trap 'rm -f "$$results"' EXIT; \
	PARTITION_RUNS=$(PARTITION_RUNS) PARTITION_SECONDS=$(PARTITION_SECONDS) \
	PARTITION_NEMESES=$(PARTITION_NEMESES) PARTITION_RESULTS="$$results" \
		$(BIN)/pytest tests/partitions; status=$$?; \
	$(BIN)/python -m tests.partitions.results "$$results" && \
	echo "table written to docs/guarantees.md"; exit $$status

lint: install dockerfile-lint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# hadolint on every Dockerfile: the project's and the compose check's
# broker and database images (deploy/images/).
dockerfile-lint: install
	$(BIN)/hadolint Dockerfile deploy/images/*/Containerfile

# compose.yaml brought up for real, as `docker compose up --build` would
# be, with rootful podman and podman-compose (tests/compose/; needs root,
# podman, runc and debootstrap, which .ci/run installs): a Debian base
# image made here (deploy/podman/base-image.sh, reused once made), the
# pipeline's image from the Dockerfile on it, the broker and database from
# Debian's packages (deploy/images/), compose.check.yaml naming them. About
# 9 minutes the first time on a busy 2-core machine, 3 once the images are
# built (docs/deployment.md#compose-check). podman-compose lives in a virtual
# environment of its own (deploy/podman/requirements.txt); podman reads
# deploy/podman/containers.conf (runc, ulimits within this machine's).
PODMAN_COMPOSE_VENV ?= $(VENV)/podman-compose
$(PODMAN_COMPOSE_VENV)/bin/.installed: deploy/podman/requirements.txt
	$(PYTHON) -m venv $(PODMAN_COMPOSE_VENV)
	$(PODMAN_COMPOSE_VENV)/bin/pip install --quiet --disable-pip-version-check -r deploy/podman/requirements.txt
	touch $@

compose-check: export CONTAINERS_CONF = $(CURDIR)/deploy/podman/containers.conf
compose-check: export PODMAN_COMPOSE = $(CURDIR)/$(PODMAN_COMPOSE_VENV)/bin/podman-compose
compose-check: export COMPOSE_CHECK = 1
compose-check: install $(PODMAN_COMPOSE_VENV)/bin/.installed
	@started=$$(date +%s); \
	deploy/podman/base-image.sh && $(BIN)/pytest tests/compose; status=$$?; \
	echo "compose-check: $$(( $$(date +%s) - started )) s"; \
	exit $$status

# compose.cluster.yaml brought up for real the same way (tests/compose/
# test_cluster.py): three RabbitMQ nodes, three Galera nodes behind
# HAProxy, a broker node stopped while orders flow. Not part of `make test`:
# too long for CI's time (docs/deployment.md#compose-cluster-check). Galera
# and HAProxy come from Debian's packages too (deploy/images/galera, on the
# MariaDB image; deploy/images/haproxy); compose.cluster.check.yaml names
# the images, built here in order, each reused once made.
compose-cluster-check: export CONTAINERS_CONF = $(CURDIR)/deploy/podman/containers.conf
compose-cluster-check: export PODMAN_COMPOSE = $(CURDIR)/$(PODMAN_COMPOSE_VENV)/bin/podman-compose
compose-cluster-check: export COMPOSE_CLUSTER_CHECK = 1
compose-cluster-check: install $(PODMAN_COMPOSE_VENV)/bin/.installed
	@started=$$(date +%s); \
	base=localhost/debian:bookworm-slim; \
	deploy/podman/base-image.sh \
	&& podman build -q --build-arg BASE_IMAGE=$$base -t localhost/order-pipeline:check . \
	&& podman build -q --build-arg BASE_IMAGE=$$base -t localhost/order-pipeline-rabbitmq:check deploy/images/rabbitmq \
	&& podman build -q --build-arg BASE_IMAGE=$$base -t localhost/order-pipeline-mariadb:check deploy/images/mariadb \
	&& podman build -q -t localhost/order-pipeline-galera:check deploy/images/galera \
	&& podman build -q --build-arg BASE_IMAGE=$$base -t localhost/order-pipeline-haproxy:check deploy/images/haproxy \
	&& $(BIN)/pytest -s tests/compose/test_cluster.py; status=$$?; \
	echo "compose-cluster-check: $$(( $$(date +%s) - started )) s"; \
	exit $$status

# checkov, a policy scanner for deployment files: the Kubernetes manifests
# as `kubectl apply -k deploy/k8s` renders them (with the example secrets
# and new certificates: deploy/k8s/render-example.sh), against its
# Kubernetes checks, the skipped ones listed with their reasons in
# deploy/checkov/config.yaml; then every committed file under deploy/ and
# the compose files against its checks for committed secrets (checkov has
# no checks for compose files as such). Only committed files: your own
# secrets/*.env and certificates are not read.
$(CHECKOV_VENV)/bin/.installed: deploy/checkov/requirements.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r deploy/checkov/requirements.txt
	touch $@

checkov: $(CHECKOV_VENV)/bin/.installed
	@rendered="$$(mktemp --suffix=.yaml)"; trap 'rm -f "$$rendered"' EXIT; \
	deploy/k8s/render-example.sh >"$$rendered" && \
	echo "checkov: deploy/k8s, rendered" && \
	$(CHECKOV_VENV)/bin/checkov --config-file deploy/checkov/config.yaml \
		--framework kubernetes -f "$$rendered" && \
	echo "checkov: deploy/ and the compose files, for secrets" && \
	$(CHECKOV_VENV)/bin/checkov --config-file deploy/checkov/config.yaml --framework secrets \
		$$(git ls-files deploy compose.yaml compose.cluster.yaml compose.check.yaml | sed 's/^/-f /')

# Known vulnerabilities in every pinned requirement (the services', the
# tests' and tools', checkov's), by pip-audit from PyPI's advisory data (its
# JSON API). It needs the network, so `make test` does not run it. --strict:
# a package it could not look up fails the audit, rather than pass unseen.
# Two runs, since checkov's pins differ from the project's; both always run.
AUDIT := $(BIN)/pip-audit --strict --disable-pip --no-deps --progress-spinner off
audit: install
	@echo "pip-audit: requirements-dev.txt (with requirements.txt)"; \
	$(AUDIT) -r requirements-dev.txt; project=$$?; \
	echo "pip-audit: deploy/checkov/requirements.txt"; \
	$(AUDIT) -r deploy/checkov/requirements.txt; checkov=$$?; \
	[ $$project -eq 0 ] && [ $$checkov -eq 0 ]

# deploy/prometheus/ as CI checks it (promtool is in Debian's prometheus package).
prometheus-check:
	cd deploy/prometheus && promtool check config prometheus.yml && \
		promtool check rules alerts.yml && promtool test rules alerts_test.yml

# Fix what ruff can fix, and format.
format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The benchmark against the local RabbitMQ and MariaDB, each scenario in a
# throwaway database and vhost; prints a table, writes bench-results/latest.json.
# Extra options: make bench BENCH_ARGS="--repeat 3" (or "--profile").
# make bench CLUSTER=1: drain and latency on the machine's servers and on a
# 3-node RabbitMQ (quorum queues) + 3-node Galera cluster, side by side.
# make bench TLS=1: drain and latency in clear and with TLS on every hop.
bench: install
	$(BIN)/python -m bench $(if $(CLUSTER),--cluster) $(if $(TLS),--tls) $(BENCH_ARGS)

# The same at tiny sizes, to keep the script working (no thresholds).
bench-smoke: install
	$(BIN)/python -m bench --smoke $(if $(CLUSTER),--cluster) $(if $(TLS),--tls) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
