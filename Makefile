# The two commands a new user needs: `make run` and `make test`.
# Everything is installed into .venv from pinned requirements on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CONFIG ?= config.yml
SERVICES := generator_service processor_service gateway

.PHONY: install migrate run test test-fast bench bench-smoke clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(BIN)/.installed

# Create the database if missing and apply every service's migrations.
migrate: install
	$(BIN)/python -W ignore -m order_pipeline.migrate --config $(CONFIG)

# Migrate, then run all three services in one process (Ctrl-C stops them).
# Without GATEWAY_TOKEN set, a random one is made for this run and printed.
run: migrate
	@GATEWAY_TOKEN="$${GATEWAY_TOKEN:-$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(18))')}"; \
	ADDRESS="$${WEB_SERVER_ADDRESS:-0.0.0.0:8000}"; \
	echo "Gateway on $$ADDRESS; control token for this run: $$GATEWAY_TOKEN"; \
	echo "  curl -X POST -H \"Authorization: Bearer $$GATEWAY_TOKEN\" http://localhost:$${ADDRESS##*:}/stop"; \
	export GATEWAY_TOKEN; \
	exec $(BIN)/nameko run --config $(CONFIG) $(SERVICES)

test: install
	$(BIN)/pytest

# Unit tests only: no broker or database needed.
test-fast: install
	$(BIN)/pytest tests/unit

# The benchmark against the local RabbitMQ and MariaDB, each scenario in a
# throwaway database and vhost; prints a table, writes bench-results/latest.json.
# Extra options: make bench BENCH_ARGS="--repeat 3" (or "--profile").
bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# The same at tiny sizes, to keep the script working (no thresholds).
bench-smoke: install
	$(BIN)/python -m bench --smoke $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
