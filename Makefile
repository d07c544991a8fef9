# cloudeye — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
export FLASK_APP := cloudeye.py

COMPOSE ?= docker compose
STAGING := $(COMPOSE) -f compose.yaml -f compose.staging.yaml
# Long-running services; `migrate` runs on its own before them (see `up`).
SERVICES := mysql redis api sync nginx
# Replicas `make up` and `make staging-up` start (a plain `docker compose up` returns to one of each):
# make up API_REPLICAS=3 SYNC_REPLICAS=2
API_REPLICAS ?= 1
SYNC_REPLICAS ?= 1
SCALE = --scale api=$(API_REPLICAS) --scale sync=$(SYNC_REPLICAS)

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

.PHONY: venv
venv: $(VENV)/.installed ## create the virtualenv with everything installed

.PHONY: lock
lock: ## after changing dependencies: install the newest allowed, then pin them in constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade -e '.[dev]'
	$(PY) scripts/lock-constraints.py
	touch $(VENV)/.installed

# --- development without Docker ---------------------------------------------------------------------------
.PHONY: run
run: venv ## run cloudeye on http://127.0.0.1:$(PORT) (SQLite under ./data, no Redis needed)
	PORT=$(PORT) VENV=$(VENV) scripts/run-local.sh

.PHONY: makemigrations
makemigrations: venv ## new migration from the models: make makemigrations m="what changed"
	@test -n "$(m)" || { echo 'usage: make makemigrations m="what changed"'; exit 2; }
	@# autogenerate compares the models with a database at head (Alembic refuses one that is behind)
	$(VENV)/bin/flask db upgrade
	$(VENV)/bin/flask db migrate -m "$(m)"

.PHONY: test
test: venv ## lint, then the whole test suite, stack and compose tests included (starts MariaDB, Redis, Docker when needed)
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/ruff format --check --quiet .
	scripts/ensure-services.sh
	scripts/ensure-browser.sh
	scripts/with-docker.sh $(VENV)/bin/pytest $(PYTEST_ARGS)
	@echo "=== API and service tests again on SQLite, the embedded default of make run"
	CLOUDEYE_TEST_BACKEND=sqlite $(VENV)/bin/pytest tests/api tests/services --deselect tests/api/test_fuzz.py $(PYTEST_ARGS)

.PHONY: test-fast
test-fast: ## the inner loop: unit and API tests on SQLite with the in-process cache (no MariaDB, Redis, nginx, stack or installs)
	@test -x $(VENV)/bin/pytest || { echo "no $(VENV): run make venv once"; exit 2; }
	CLOUDEYE_TEST_BACKEND=sqlite CLOUDEYE_TEST_REDIS= $(VENV)/bin/pytest tests/api tests/services \
		--deselect tests/api/test_fuzz.py $(PYTEST_ARGS)

.PHONY: e2e
e2e: venv ## the compose stack end to end on a Docker engine (tests/compose; installs and starts Docker when needed)
	scripts/with-docker.sh $(VENV)/bin/pytest tests/compose $(PYTEST_ARGS)

.PHONY: fuzz
fuzz: venv ## schemathesis over the whole OpenAPI document, 5,000+ requests: no 5xx, no schema violation
	scripts/ensure-services.sh
	CLOUDEYE_FUZZ_EXAMPLES=$${CLOUDEYE_FUZZ_EXAMPLES:-90} CLOUDEYE_FUZZ_MIN_REQUESTS=$${CLOUDEYE_FUZZ_MIN_REQUESTS:-5000} \
		$(VENV)/bin/pytest -s tests/api/test_fuzz.py $(PYTEST_ARGS)

.PHONY: lint
lint: venv ## ruff, and hadolint on the Dockerfiles
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint Dockerfile nginx/Dockerfile docker/base/*/Dockerfile

.PHONY: bench
bench: venv ## run every benchmark in bench/ (each prints its own ratios; installs wrk and mysqlclient)
	scripts/ensure-services.sh
	VENV=$(VENV) scripts/ensure-bench-tools.sh
	@set -e; for script in bench/bench_*.py; do \
		[ -f "$$script" ] || continue; \
		echo "=== $$script"; $(PY) "$$script"; \
	done

.PHONY: bench-import
bench-import: venv ## the import benchmark alone: in-process, through nginx + gunicorn + sync, /health during 200 MB
	scripts/ensure-services.sh
	$(PY) bench/bench_import.py --index-costs

.PHONY: bench-sync
bench-sync: venv ## the sync worker's figures of docs/benchmarks.md: before/after at 10,000 sites, 25,000 sites, 1 vs 3 replicas
	scripts/ensure-services.sh
	$(PY) bench/bench_probes.py --raw 0 --sites 10000 --versus a67e973 --duration 180
	$(PY) bench/bench_probes.py --raw 6000 --sites 25000 --saturate 60000 --slot-bound 5000 --duration 180

# --- Docker Compose -----------------------------------------------------------------------------------------
.PHONY: env
env: ## write .env from .env.example with generated secrets (never overwrites an existing .env)
	scripts/make-env.sh

.env:
	scripts/make-env.sh

.PHONY: base-images
base-images: .env ## no registry? build the base images from Debian's packages, name them in .env (installs/starts Docker)
	scripts/ensure-docker.sh
	scripts/base-images.sh

.PHONY: build
build: .env ## build the images (cloudeye, cloudeye-nginx)
	$(COMPOSE) build

.PHONY: up
up: .env ## build, migrate, then start everything and wait until every service is healthy
	$(COMPOSE) build
	$(COMPOSE) up -d --wait mysql redis
	$(COMPOSE) run --rm migrate
	$(COMPOSE) up -d --wait --no-deps $(SCALE) api sync nginx

.PHONY: migrate
migrate: .env ## run the migrate job (flask db upgrade + admin bootstrap) against the compose database
	$(COMPOSE) run --rm migrate

.PHONY: down
down: ## stop and remove the containers (volumes are kept)
	$(COMPOSE) down

.PHONY: logs
logs: ## follow the logs of every service (make logs s=api for one)
	$(COMPOSE) logs -f --tail=200 $(s)

.PHONY: ps
ps: ## list the services and their health
	$(COMPOSE) ps

.PHONY: shell
shell: ## a flask shell in the api container (the app, its config and the database)
	$(COMPOSE) exec api flask shell

.PHONY: nginx-reload
nginx-reload: ## re-read nginx's configuration (after editing nginx/access/deny.conf)
	$(COMPOSE) exec nginx nginx -s reload

# --- staging (compose.staging.yaml: released images by tag, TLS, limits) -------------------------------------
.PHONY: staging-pull
staging-pull: ## pull the images of CLOUDEYE_TAG
	$(STAGING) pull

.PHONY: staging-migrate
staging-migrate: ## run the migrate job of CLOUDEYE_TAG
	$(STAGING) up -d --wait mysql redis
	$(STAGING) run --rm migrate

.PHONY: staging-up
staging-up: staging-pull staging-migrate ## pull CLOUDEYE_TAG, migrate, start everything (no build) and wait until healthy
	$(STAGING) up -d --wait --no-build --no-deps $(SCALE) api sync nginx

.PHONY: staging-down
staging-down: ## stop staging (volumes are kept)
	$(STAGING) down

.PHONY: staging-ps
staging-ps: ## staging's services and their health
	$(STAGING) ps

.PHONY: staging-logs
staging-logs: ## follow staging's logs (make staging-logs s=api for one)
	$(STAGING) logs -f --tail=200 $(s)

# --- the production topology without Docker (supervisor) ---------------------------------------------------
.PHONY: stack
stack: venv ## supervisor: nginx on 127.0.0.1:$${STACK_PORT:-8080}, gunicorn, sync, on this host's MariaDB and Redis
	scripts/ensure-services.sh
	scripts/stack-up.sh

.PHONY: stack-down
stack-down: ## stop what `make stack` started
	scripts/stack-down.sh

.PHONY: stack-status
stack-status: ## the stack's programs
	scripts/stack-ctl.sh status

.PHONY: stack-reload-nginx
stack-reload-nginx: ## re-render and reload the stack's nginx (after editing nginx/access/deny.conf)
	scripts/stack-ctl.sh reload-nginx

.PHONY: stack-clean
stack-clean: stack-down ## stop the stack and delete .stack/ (logs, data, generated secrets)
	rm -rf .stack

# --- the console ------------------------------------------------------------------------------------------
.PHONY: translations
translations: venv ## after changing the console's texts: extract them, update the Chinese catalog, compile it
	$(VENV)/bin/pybabel extract -F console/babel.cfg -k _l --no-location --sort-output --omit-header \
		-o console/translations/messages.pot console
	$(VENV)/bin/pybabel update -i console/translations/messages.pot -d console/translations -D messages \
		--no-fuzzy-matching --ignore-obsolete -w 110
	$(VENV)/bin/pybabel compile -d console/translations -D messages --statistics

.PHONY: screenshots
screenshots: venv ## the README's screenshots of the console (docs/console-*.png), made by the browser tests
	scripts/ensure-services.sh
	scripts/ensure-browser.sh
	CLOUDEYE_SCREENSHOTS=1 $(VENV)/bin/pytest tests/console/test_browser.py -k screenshots -q
