# rnnbench: `make help` lists the targets. Every target creates .venv first when it is missing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= experiments/seed_simple_rnn.yaml
SWEEP ?= experiments/sweep.yaml
WORKERS ?= 2
TEST_WORKERS ?= 2
STORAGE ?=
ARGS ?=
EXPERIMENT ?=
UI_PORT ?= 5000
DASHBOARD_PORT ?= 8080
BENCH_SIZE ?= full
BENCH_OUT ?= reports/bench
QUICK := $(if $(filter quick,$(BENCH_SIZE)),--quick)

.DEFAULT_GOAL := help
.PHONY: help install lock run sweep sweep-plan report ui dashboard test test-fast lint docs docs-serve bench bench-backends \
	bench-overhead bench-budget clean-venv

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-11s %s\n", $$1, $$2}'
	@echo "  variables: CONFIG=experiments/seed_lstm.yaml SWEEP=experiments/sweep.yaml WORKERS=2 STORAGE=URL ARGS=\"key=value ...\" EXPERIMENT=name UI_PORT=5000 DASHBOARD_PORT=8080"
	@echo "    BENCH_SIZE=quick (every make bench* target at a tiny size, seconds: checks it runs) BENCH_OUT=reports/bench TEST_WORKERS=2"
	@echo "  docs: docs/ (make docs builds the site into site/); the layers: [tool.importlinter] in pyproject.toml"

install: $(STAMP) ## create .venv and install rnnbench and its dev tools from requirements.lock (quick when done)

# Every package from the lock file, each checked against its hashes; then rnnbench itself, editable, adding nothing.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

lock: $(STAMP) ## refresh requirements.lock: the newest releases pyproject.toml's bounds allow, with their hashes
	$(BIN)/pip-compile --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras --all-extras \
		--no-emit-index-url --no-emit-find-links --output-file requirements.lock pyproject.toml

run: $(STAMP) ## train one configuration: make run CONFIG=experiments/seed_lstm.yaml ARGS="model.hidden_units=128"
	$(BIN)/rnnbench run $(CONFIG) $(ARGS)

sweep: $(STAMP) ## tune and compare the grid (resumable), then write its HTML report: make sweep SWEEP=experiments/sweep_tiny.yaml
	$(BIN)/rnnbench sweep $(SWEEP) $(ARGS) --workers $(WORKERS) $(if $(STORAGE),--storage $(STORAGE)) --report

sweep-plan: $(STAMP) ## print the sweep's plan and estimated cost without running it
	$(BIN)/rnnbench sweep $(SWEEP) $(ARGS) --workers $(WORKERS) --dry-run

report: $(STAMP) ## write the HTML report of the latest sweep (or EXPERIMENT=name) to reports/<experiment>/index.html
	$(BIN)/rnnbench report $(if $(EXPERIMENT),--experiment "$(EXPERIMENT)")

# MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false: MLflow's job runner (GenAI scorer jobs; rnnbench has none) stays off, rather
# than starting seven background processes beside the UI. --workers 1: one person's UI over a local store needs one
# server process, not MLflow's default four (each a Python that imports MLflow, and SQLite takes one writer at a time).
ui: $(STAMP) ## open the MLflow UI over the local store at http://127.0.0.1:$(UI_PORT)
	$(BIN)/python -c "from rnnbench import tracking; tracking.make_local_store()"  # a new store's tables made as a sweep makes them
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///mlruns/mlflow.db}" \
		--default-artifact-root ./mlruns --host 127.0.0.1 --port $(UI_PORT) --workers 1

dashboard: $(STAMP) ## Optuna's view of the sweeps' studies (optuna-dashboard) at http://127.0.0.1:$(DASHBOARD_PORT); another storage: STORAGE=PATH, or RNNBENCH_STORAGE=URL in the environment
	RNNBENCH_STORAGE="$(or $(STORAGE),$${RNNBENCH_STORAGE:-mlruns/optuna.journal})" $(BIN)/python -c "import os, optuna_dashboard; \
		from rnnbench.sweep.studies import open_storage; \
		optuna_dashboard.run_server(open_storage(os.environ['RNNBENCH_STORAGE'], create=False), host='127.0.0.1', port=$(DASHBOARD_PORT))"

test: $(STAMP) ## the whole test suite (unit, component and end-to-end), in parallel: what CI runs
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15

test-fast: $(STAMP) ## the fast tier, for every change: no servers, no subprocess sweeps, training of a few steps at most
	$(BIN)/python -m pytest -m "not slow" -n 2 -q --durations=5

lint: $(STAMP) ## ruff (lint and format check), mypy on the package, and the import contract of the layers
	$(BIN)/ruff check rnnbench tests docs/hooks
	$(BIN)/ruff format --check rnnbench tests docs/hooks
	$(BIN)/mypy
	$(BIN)/lint-imports

docs: $(STAMP) ## build the docs site into site/ (mkdocs build --strict: a broken link or a missing page fails)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

docs-serve: $(STAMP) ## serve the docs site at http://127.0.0.1:8000 while you edit it
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8000

bench: $(STAMP) ## speed of every cell x size x unroll (rnnbench.bench.grid), how far the unroll settings drift apart (rnnbench.bench.unroll_check), then rnnbench against plain Keras, 1 vs 2 workers, peers (rnnbench.bench.baselines; tens of minutes)
	$(BIN)/python -m rnnbench.bench.grid $(QUICK) --out $(BENCH_OUT)/speed.json
	$(BIN)/python -m rnnbench.bench.unroll_check $(QUICK) --out $(BENCH_OUT)/unroll_check.json
	$(BIN)/python -m rnnbench.bench.baselines $(QUICK) --out $(BENCH_OUT)/baselines.json

bench-backends: $(STAMP) ## rnnbench runs on TensorFlow against JAX: accuracy and speed, 3 seeds (minutes)
	$(BIN)/python -m rnnbench.bench.baselines --parts backends $(QUICK) --out $(BENCH_OUT)/backends.json

bench-overhead: $(STAMP) ## time the seed SimpleRNN with and without tracking (minutes)
	$(BIN)/python -m rnnbench.bench.overhead --repeats 5 $(QUICK) --out $(BENCH_OUT)/overhead.json

bench-budget: $(STAMP) ## where a finished sweep's worker-seconds went, and its training against the machine's peak (EXPERIMENT=name, default the latest sweep; seconds)
	$(BIN)/python -m rnnbench.bench.budget $(if $(EXPERIMENT),--experiment "$(EXPERIMENT)") --out $(BENCH_OUT)/budget

clean-venv: ## remove .venv (the tracking store in mlruns/ is kept)
	rm -rf $(VENV)
