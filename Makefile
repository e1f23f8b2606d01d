# fusion: the two commands are `make run` and `make test`; everything else is a convenience.
SHELL := /bin/bash
.DEFAULT_GOAL := help
# Kedro's and MLflow's telemetry reach for the network, and kedro-telemetry rewrites pyproject.toml: keep them off.
export DO_NOT_TRACK := true
export MPLBACKEND := Agg
VENV ?= .venv
BIN := $(VENV)/bin
# The install stamp names pyproject.toml's content, not its mtime: nbdev-export rewrites the file unchanged.
STAMP := $(VENV)/.fusion-installed-$(shell sha256sum pyproject.toml | cut -c1-16)
PYTHON ?= python3
SYNC_FILES = find fusion nbs -type f -not -path '*/__pycache__/*' -not -path '*/.ipynb_checkpoints/*' | LC_ALL=C sort | xargs sha256sum

.PHONY: help install run test lint sync-check nbtest pytest test-image lab mlflow-ui viz bench papermill export verify image docs docs-serve test-docs clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: $(STAMP) ## create .venv and install fusion (CPU torch pinned), its test and docs tools

# torch first, pinned to the CPU wheel, so nothing later can pull a CUDA build.
$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev,docs]"
	$(BIN)/python -m ipykernel install --sys-prefix --name fusion --display-name "fusion (.venv)" >/dev/null
	@rm -f $(VENV)/.fusion-installed*
	@touch $@

run: install ## run the default Kedro pipeline on the embedded sample data
	$(BIN)/kedro run
	@echo
	@echo "Results:"
	@echo "  metrics            data/08_reporting/metrics.json"
	@echo "  confusion matrix   data/08_reporting/confusion_matrix.png"
	@echo "  data profile       data/08_reporting/profile.md, profile.png (quarantine: data/02_intermediate/quarantine.parquet)"
	@echo "  model              data/06_models/model.safetensors (and in MLflow: sqlite:///$(CURDIR)/mlflow.db, make mlflow-ui)"
	@echo "  serving bundle     exported/fusion-classifier/<version>/ (make verify, make image)"
	@echo "  events             $(BIN)/fusion events"
	@cat data/08_reporting/metrics.json; echo

test: install lint sync-check nbtest pytest ## the whole suite: ruff, notebook/package sync, notebooks, pytest

lint: install
	$(BIN)/ruff check fusion tests benchmarks docs

sync-check: install ## nbdev-export + nbdev-clean must change nothing
	@before="$$($(SYNC_FILES))"; \
	$(BIN)/nbdev-export && $(BIN)/nbdev-clean; \
	after="$$($(SYNC_FILES))"; \
	if [ "$$before" != "$$after" ]; then \
	  echo "notebooks and package disagree: nbdev-export/nbdev-clean changed these files (edit nbs/, export, commit both):"; \
	  diff <(echo "$$before") <(echo "$$after") | grep '^[<>]' | awk '{print "  " $$3}' | sort -u; exit 1; \
	else echo "sync-check: notebooks and package agree"; fi

nbtest: install ## run every notebook in nbs/ top to bottom
	$(BIN)/nbdev-test --n-workers 2

pytest: install
	$(BIN)/pytest -q -m "not image and not browser"

test-image: install ## build the serving image with podman and verify it (root; .ci/run installs podman)
	$(BIN)/pytest -q -m image tests/bundle

# Root (containers) must say --allow-root or JupyterLab refuses to start; notebooks open on the registered kernel "fusion".
lab: install ## JupyterLab on nbs/ with the project's kernel "fusion" (as root too)
	$(BIN)/jupyter lab --notebook-dir=nbs --MappingKernelManager.default_kernel_name=fusion $(if $(filter 0,$(shell id -u)),--allow-root)

mlflow-ui: install ## the MLflow UI on the project's store
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db --host 127.0.0.1 --port 5000

viz: install ## kedro-viz of the pipelines
	$(BIN)/kedro viz run --host 127.0.0.1

papermill: install ## a parameterised research run (override: make papermill P="-p window 64")
	$(BIN)/papermill nbs/experiments/train_experiment.ipynb data/08_reporting/train_experiment.out.ipynb --cwd nbs/experiments $(P)

LATEST_BUNDLE = $$(ls -d exported/fusion-classifier/* | sort -V | tail -1)

export: install ## write the bundle of the latest registered model version
	$(BIN)/fusion export --overwrite

verify: install ## prove the newest bundle stands alone (fresh venv, golden cases, 401, 413)
	$(BIN)/fusion verify $(LATEST_BUNDLE)

image: install ## build and check the serving image (root, podman)
	podman image exists localhost/fusion-base:bookworm || $(BIN)/fusion image base
	$(BIN)/fusion image verify $(LATEST_BUNDLE) --base-image localhost/fusion-base:bookworm

bench: install ## benchmarks (writes docs/benchmarks.md); installs the peers they compare with (tsfresh)
	$(BIN)/python -m pip install -q --disable-pip-version-check -e ".[dev,bench]"
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/features.py --quick
	$(BIN)/python benchmarks/serving.py --quick
	$(BIN)/python benchmarks/events.py --quick
	$(BIN)/python benchmarks/docs.py

DOCS_PORT ?= 8008
# MkDocs (Material theme, mkdocstrings): installs from PyPI and builds offline; nbdev-docs needs Quarto, downloaded at build.
docs: install ## build the docs site into _docs/: executes the notebooks (a copy), MkDocs --strict, checks every link
	$(BIN)/python docs/build.py

docs-serve: ## serve _docs/ on http://127.0.0.1:8008 (DOCS_PORT=...; loopback only; builds it first if missing)
	@test -f _docs/index.html || $(MAKE) docs
	@echo "docs: http://127.0.0.1:$(DOCS_PORT)/index.html"
	$(BIN)/python -m http.server $(DOCS_PORT) --bind 127.0.0.1 --directory _docs

test-docs: docs ## build the docs site, then open it in headless Chromium (Debian's chromium + chromium-driver)
	FUSION_DOCS_SITE=_docs $(BIN)/pytest -q -m browser tests/docs

clean: ## remove generated data, stores and the venv
	rm -rf $(VENV) mlflow.db mlruns data/events.db* .viz _docs _proc
	find data -mindepth 2 -not -path 'data/01_raw/*' -not -name .gitkeep -type f -delete
